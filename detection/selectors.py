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

# A range is read through its index and sorted when it holds at most this share of the
# transactions (or fewer than SORT_AT_LEAST); a wider one is cheaper to filter along the queue.
SORT_AT_MOST_SHARE = 0.01
SORT_AT_LEAST = 1_000


def queue_rows(*, filters: Mapping[str, Any]) -> PredictionQuerySet:
    """The queue's predictions in queue order, under every filter of a valid QueueFilter but the cursor."""
    # Only what the list shows: metrics and features would be decoded for every row otherwise.
    rows = (
        Prediction.objects.primary()
        .select_related("transaction")
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
    """The date and amount filters, written so that the planner walks the queue's index for a wide
    range and sorts a narrow one read through its index. SQLite has no statistics: there the first
    narrow range takes its index, the others go on unindexed columns, and flagged rows are walked."""
    since, until = filters.get("since"), filters.get("until")
    low, high = filters.get("amount_min"), filters.get("amount_max")
    ranges: list[tuple[dict, dict]] = []  # each as (lookups on the transaction's index, without)
    if since or until:
        # A transaction and its prediction are stored in the same instant, so either date serves.
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
    """One page of ``size`` rows from the cursor ``after`` (None: the first), and the next page's
    cursor (None at the end). Two index ranges, as an OR over the sort key would scan."""
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
    """Whether fewer than ``limit`` transactions match ``lookups`` (on one indexed column)."""
    return Transaction.objects.filter(**lookups).order_by()[:limit].count() < limit  # unsorted: stops at the limit


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _end_of(day: date) -> datetime:
    """The start of the next day; date.max ends at its last instant."""
    return _start_of(day + timedelta(days=1)) if day < date.max else timezone.make_aware(datetime.max)
