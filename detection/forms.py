"""Forms of the review pages: the queue's filters, and a decision."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.db.models import F
from django.utils import timezone

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

    def clean(self):
        data = super().clean()
        data["state"] = data.get("state") or "unreviewed"
        data["flagged"] = data.get("flagged") or "yes"
        data["per_page"] = data.get("per_page") or 50
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
        if data["flagged"] == "yes":
            rows = rows.flagged()
        if data["state"] == "unreviewed":
            rows = rows.filter(transaction__label__isnull=True)
        elif data["state"] in Transaction.Label.values:
            rows = rows.filter(transaction__label=data["state"])
        if data.get("version"):
            rows = rows.filter(model_version__version=data["version"])
        # A transaction and its prediction are stored in the same instant; the transaction's
        # time is the indexed one.
        if data.get("since"):
            rows = rows.filter(transaction__created_at__gte=_start_of(data["since"]))
        if data.get("until"):
            rows = rows.filter(transaction__created_at__lt=_start_of(data["until"]) + timedelta(days=1))
        if data.get("amount_min") is not None:
            rows = rows.filter(transaction__amount__gte=data["amount_min"])
        if data.get("amount_max") is not None:
            rows = rows.filter(transaction__amount__lte=data["amount_max"])
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


def cursor_of(prediction: Prediction) -> str:
    """Where the next page starts: the last row's place in queue order."""
    return f"{int(prediction.is_fraud)}:{prediction.score!r}:{prediction.pk}"


def _start_of(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


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
