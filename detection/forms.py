"""Forms of the review pages: the queue's filters, and a decision."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django import forms
from django.db import connection
from django.db.models import F, Max
from django.utils import timezone

from modelops.ml.schema import BOUNDS

from .models import Prediction, Transaction


class QueueFilter(forms.Form):
    """The review queue's filters, read from the query string; each narrows the queue."""

    STATES = [("unreviewed", "Unreviewed"), ("fraud", "Confirmed fraud"), ("legitimate", "Legitimate"), ("all", "All")]
    PAGE_SIZES = [(25, "25"), (50, "50"), (100, "100"), (200, "200")]

    state = forms.ChoiceField(choices=STATES, required=False)
    flagged = forms.ChoiceField(choices=[("yes", "Flagged only"), ("all", "Flagged and not flagged")], required=False)
    version = forms.IntegerField(min_value=1, required=False, label="Model version")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    amount_min = forms.FloatField(min_value=0, required=False, label="Amount from")
    amount_max = forms.FloatField(min_value=0, required=False, label="Amount to")
    per_page = forms.TypedChoiceField(choices=PAGE_SIZES, coerce=int, required=False, label="Per page")
    after = forms.RegexField(regex=r"^[01]:[0-9.eE+-]+:\d+$", required=False, widget=forms.HiddenInput)

    def clean_after(self) -> str:
        after = self.cleaned_data.get("after") or ""
        if after:
            try:
                score = float(after.split(":")[1])
            except ValueError:
                raise forms.ValidationError("not a page cursor") from None
            if not 0.0 <= score <= 1.0:
                raise forms.ValidationError("not a page cursor")
        return after

    def clean(self):
        data = super().clean()
        data["state"] = data.get("state") or "unreviewed"
        data["flagged"] = data.get("flagged") or "yes"
        data["per_page"] = data.get("per_page") or 25  # the first choice, which the form shows
        return data

    LISTED = (
        "score",
        "is_fraud",
        "created_at",
        "transaction__amount",
        "transaction__time",
        "transaction__label",
    )

    def queryset(self):
        """The queue's predictions in queue order, with what the list shows, every filter but
        the cursor applied."""
        data = self.cleaned_data
        # Only what the list shows: a version's metrics (its curves) and a transaction's
        # features would be read and decoded for every row otherwise.
        rows = (
            Prediction.objects.select_related("transaction")
            .only(*self.LISTED)
            .annotate(version_number=F("model_version__version"))
            .queue_order()
        )
        flagged_only = data["flagged"] == "yes"
        if flagged_only:
            rows = rows.flagged()
        if data["state"] == "unreviewed":
            rows = rows.filter(transaction__label__isnull=True)
        elif data["state"] in Transaction.Label.values:
            rows = rows.filter(transaction__label=data["state"])
        if data.get("version"):
            rows = rows.filter(model_version__version=data["version"])
        return self._ranges(rows, flagged_only=flagged_only)

    def _ranges(self, rows, *, flagged_only: bool):
        """The date and amount filters, written for the plan that serves them best.

        A page is the first rows in queue order that match. Either the queue's index is walked
        in order and each row checked, which reads about (page size / share of rows in range)
        rows: cheap for a wide range. Or a range is read through the transaction's date or
        amount index and sorted, which reads every row in it: cheap for a narrow one. SQLite's
        planner has no statistics to choose, so on SQLite the choice is made here: over all rows
        each range's size is counted, up to a share of the table (_narrow), and the first narrow
        one goes through its index. Flagged rows are few (well under 1 % of transactions): they
        are always walked. PostgreSQL's planner has statistics: every range is offered to it
        through its index.

        Through the index, a range goes on the transaction's column with both bounds set, which
        SQLite's planner always takes. Otherwise it goes on a column without an index (the
        prediction's own time, the amount through "+ 0"), so that the planner cannot start
        from it.
        """
        data = self.cleaned_data
        since, until, low, high = data.get("since"), data.get("until"), data.get("amount_min"), data.get("amount_max")
        ranges: list[tuple[dict, dict]] = []  # each as (lookups on the transaction's index, without)
        if since or until:
            # A transaction and its prediction are stored in the same instant.
            start = _start_of(since or date(1970, 1, 1))
            end = _end_of(until) if until else timezone.now() + timedelta(days=1)
            dates = {"created_at__gte": start, "created_at__lt": end}  # the prediction's has no index
            ranges.append((dates, dates))
        if low is not None or high is not None:
            low, high = low or 0.0, BOUNDS["Amount"][1] if high is None else high
            ranges.append(
                ({"amount__gte": low, "amount__lte": high}, {"listed_amount__gte": low, "listed_amount__lte": high})
            )
        if not ranges:
            return rows
        if flagged_only:
            indexed = []
        elif connection.vendor != "sqlite":
            indexed = ranges
        else:
            limit = _sort_limit()
            indexed = next(([r] for r in ranges if _narrow(r[0], limit)), [])
        rows = rows.alias(listed_amount=F("transaction__amount") + 0.0)
        for through_index, without in ranges:
            if (through_index, without) in indexed:
                rows = rows.filter(**{f"transaction__{lookup}": value for lookup, value in through_index.items()})
            else:
                rows = rows.filter(**without)
        return rows

    def page(self) -> tuple[list[Prediction], str | None]:
        """One page of the queue from the cursor on, and the next page's cursor (None at the end).

        Keyset pagination: a page deep in the queue costs what the first one does, where OFFSET
        would read every row before it. Flagged and other rows are read as two index ranges
        (an OR over the whole sort key would make the database scan instead).
        """
        size = self.cleaned_data["per_page"]
        rows = self.queryset()
        after = self.cleaned_data.get("after")
        if after:
            flag, score, pk = after.split(":")
            score, pk = float(score), int(pk)
            parts = [
                rows.filter(is_fraud__in=[flag == "1"], score__lte=score).exclude(score=score, id__gte=pk),
            ]
            if flag == "1" and self.cleaned_data["flagged"] != "yes":
                parts.append(rows.filter(is_fraud__in=[False]))
        else:
            parts = [rows]
        found: list[Prediction] = []
        for part in parts:
            found += part[: size + 1 - len(found)]
            if len(found) > size:
                return found[:size], cursor_of(found[size - 1])
        return found, None


# A range over all rows is read and sorted when it holds at most this share of the transactions
# (and always when it holds fewer than SORT_AT_LEAST); above it, the queue's order is walked.
# Counting rows read, for rows spread evenly along the queue (an estimate, not a measurement), the
# two cost the same when the share is about the square root of (page size / transactions): 0.5 %
# for a page of 25 among a million. docs/BENCHMARKS.md times both sides of the choice.
SORT_AT_MOST_SHARE = 0.01
SORT_AT_LEAST = 1_000


def _sort_limit() -> int:
    """How many transactions a range may hold and still be read and sorted."""
    top = Transaction.objects.aggregate(top=Max("pk"))["top"] or 0  # about the table's size, at once
    return max(SORT_AT_LEAST, int(top * SORT_AT_MOST_SHARE))


def _narrow(lookups: dict, limit: int) -> bool:
    """Whether fewer than ``limit`` transactions fall in one range (``lookups`` on one indexed
    column of Transaction). Counting stops at the limit, so it reads at most that many entries
    of the column's index."""
    return Transaction.objects.filter(**lookups).order_by()[:limit].count() < limit  # unsorted: stops at the limit


def cursor_of(prediction: Prediction) -> str:
    """Where the next page starts: the last row's place in queue order."""
    return f"{int(prediction.is_fraud)}:{prediction.score!r}:{prediction.pk}"


def _start_of(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _end_of(day) -> datetime:
    """The start of the next day; the last day a date can hold (9999-12-31) ends at its last instant."""
    return _start_of(day + timedelta(days=1)) if day < date.max else timezone.make_aware(datetime.max)


class DecisionForm(forms.Form):
    label = forms.ChoiceField(choices=Transaction.Label.choices)
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class IdsField(forms.Field):
    """Transaction ids from checkboxes. Whether each exists is checked by the service, in the
    same database transaction that labels it."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        try:
            return [int(v) for v in value or []]
        except (TypeError, ValueError):
            raise forms.ValidationError("not a transaction id") from None


class BulkDecisionForm(DecisionForm):
    ids = IdsField(error_messages={"required": "select at least one transaction"})


class ScoreFileForm(forms.Form):
    file = forms.FileField(label="CSV file")
