"""The review queue's reads: its rows under the queue's filters, and one page of them from a cursor."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, Max
from django.utils import timezone

from modelops.ml.schema import BOUNDS

from .models import Prediction, PredictionQuerySet, Transaction

LISTED = (
    "score",
    "is_fraud",
    "created_at",
    "transaction__amount",
    "transaction__time",
    "transaction__label",
)

# A range over all rows is read and sorted when it holds at most this share of the transactions
# (and always when it holds fewer than SORT_AT_LEAST); above it, the queue's order is walked.
# Counting rows read, for rows spread evenly along the queue (an estimate, not a measurement), the
# two cost the same when the share is about the square root of (page size / transactions): 0.5 %
# for a page of 25 among a million. docs/BENCHMARKS.md times both sides of the choice.
SORT_AT_MOST_SHARE = 0.01
SORT_AT_LEAST = 1_000


def queue_rows(*, filters: Mapping[str, Any]) -> PredictionQuerySet:
    """The queue's predictions in queue order, with what the list shows, every filter but
    the cursor applied. ``filters`` is a valid QueueFilter's cleaned data."""
    # Only what the list shows: a version's metrics (its curves) and a transaction's
    # features would be read and decoded for every row otherwise.
    rows = (
        Prediction.objects.select_related("transaction")
        .only(*LISTED)
        .annotate(version_number=F("model_version__version"))
        .queue_order()
    )
    flagged_only = filters["flagged"] == "yes"
    if flagged_only:
        rows = rows.flagged()
    if filters["state"] == "unreviewed":
        rows = rows.filter(transaction__label__isnull=True)
    elif filters["state"] in Transaction.Label.values:
        rows = rows.filter(transaction__label=filters["state"])
    if filters.get("version"):
        rows = rows.filter(model_version__version=filters["version"])
    return _ranges(rows, filters=filters, flagged_only=flagged_only)


def _ranges(rows: PredictionQuerySet, *, filters: Mapping[str, Any], flagged_only: bool) -> PredictionQuerySet:
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
    since, until = filters.get("since"), filters.get("until")
    low, high = filters.get("amount_min"), filters.get("amount_max")
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


def queue_page(*, filters: Mapping[str, Any], after: str | None, size: int) -> tuple[list[Prediction], str | None]:
    """One page of ``size`` rows of the queue from the cursor ``after`` on (empty for the first
    page), and the next page's cursor (None at the end).

    Keyset pagination: a page deep in the queue costs what the first one does, where OFFSET
    would read every row before it. Flagged and other rows are read as two index ranges
    (an OR over the whole sort key would make the database scan instead).
    """
    rows = queue_rows(filters=filters)
    if after:
        flag, score, pk = after.split(":")
        score, pk = float(score), int(pk)
        parts = [
            rows.filter(is_fraud__in=[flag == "1"], score__lte=score).exclude(score=score, id__gte=pk),
        ]
        if flag == "1" and filters["flagged"] != "yes":
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


def _sort_limit() -> int:
    """How many transactions a range may hold and still be read and sorted."""
    top = Transaction.objects.aggregate(top=Max("pk"))["top"] or 0  # about the table's size, at once
    return max(SORT_AT_LEAST, int(top * SORT_AT_MOST_SHARE))


def _narrow(lookups: dict, limit: int) -> bool:
    """Whether fewer than ``limit`` transactions fall in one range (``lookups`` on one indexed
    column of Transaction). Counting stops at the limit, so it reads at most that many entries
    of the column's index."""
    return Transaction.objects.filter(**lookups).order_by()[:limit].count() < limit  # unsorted: stops at the limit


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _end_of(day: date) -> datetime:
    """The start of the next day; the last day a date can hold (9999-12-31) ends at its last instant."""
    return _start_of(day + timedelta(days=1)) if day < date.max else timezone.make_aware(datetime.max)
