"""Labels from other systems (chargeback feeds): validated whole, then applied all or none as
decisions beside the analysts', each (transaction, source, label) once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Review, Transaction
from .parsing import InvalidInput

FIELDS = ("transaction_id", "external_id", "label", "source", "reported_at")
SOURCE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
# A report from the future is a clock or a typo: refused beyond this.
FUTURE_SLACK = timedelta(minutes=5)
ERRORS_LISTED = 100


@dataclass(frozen=True)
class ExternalLabel:
    index: int
    transaction_id: int | None
    external_id: str | None
    label: str
    source: str
    reported_at: datetime


def parse(data, *, max_items: int, now: datetime | None = None) -> tuple[list[ExternalLabel], bool]:
    """The labels of a body (one object or a list), and whether it was a list; InvalidInput naming
    each bad item and field, so that nothing of a bad body is applied."""
    now = now or timezone.now()
    is_list = isinstance(data, list)
    items = data if is_list else [data]
    if not items:
        raise InvalidInput("the list is empty: send at least one label")
    if len(items) > max_items:
        raise InvalidInput(f"{len(items)} labels; at most {max_items} at once")
    found, problems = [], []
    for index, item in enumerate(items):
        fields = _problems(item, now)
        if fields:
            problems.append({"index": index, "fields": fields})
            continue
        reported = _when(item.get("reported_at"), now)
        found.append(
            ExternalLabel(
                index=index,
                transaction_id=item.get("transaction_id"),
                external_id=item.get("external_id"),
                label=item["label"],
                source=item["source"],
                reported_at=reported,
            )
        )
    if problems:
        _refuse(problems, is_list)
    return found, is_list


def _problems(item, now: datetime) -> dict[str, str]:
    if not isinstance(item, dict):
        return {"": "each label is an object"}
    fields = {name: "unknown field" for name in item if name not in FIELDS}
    by_id, by_external = item.get("transaction_id"), item.get("external_id")
    if (by_id is None) == (by_external is None):
        fields["transaction_id"] = "give transaction_id or external_id, one of them"
    elif by_id is not None and (isinstance(by_id, bool) or not isinstance(by_id, int) or not 0 < by_id < 2**63):
        fields["transaction_id"] = "must be a positive integer"
    elif by_external is not None and (not isinstance(by_external, str) or not 0 < len(by_external) <= 100):
        fields["external_id"] = "must be a string of 1 to 100 characters"
    if item.get("label") not in Transaction.Label.values:
        fields["label"] = f"must be one of {', '.join(Transaction.Label.values)}"
    source = item.get("source")
    if not isinstance(source, str) or not SOURCE.fullmatch(source) or source == Review.ANALYST:
        fields["source"] = "required: lower-case letters, digits, '.', '_' or '-', at most 40 (e.g. chargeback)"
    reported = item.get("reported_at")
    if reported is not None:
        when = _when(reported, now)
        if when is None:
            fields["reported_at"] = "must be an ISO 8601 date and time, e.g. 2026-12-01T10:30:00Z"
        elif when > now + FUTURE_SLACK:
            fields["reported_at"] = "is in the future"
    return fields


def _when(value, now: datetime) -> datetime | None:
    if value is None:
        return now
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _refuse(problems: list[dict], is_list: bool):
    first = problems[0]
    name, reason = next(iter(first["fields"].items()))
    where = f"item {first['index']}: " if is_list else ""
    message = f"{where}{name + ' ' if name else ''}{reason}" + (
        f" (and {len(problems) - 1} more items)" if len(problems) > 1 else ""
    )
    if is_list:
        raise InvalidInput(message, items=problems[:ERRORS_LISTED])
    raise InvalidInput(message, fields=first["fields"])


def apply(labels: list[ExternalLabel], *, is_list: bool, recorded_by: str) -> dict[str, int]:
    """Record the labels all or none; an unknown id refuses the whole body. A label the same source
    already gave records nothing again. The transaction takes the label unless an analyst decided
    it after the report."""
    now = timezone.now()
    with transaction.atomic():
        targets = _resolve(labels, is_list)
        ids = sorted(set(targets.values()))
        list(Transaction.objects.select_for_update().filter(pk__in=ids).order_by("pk").only("pk"))
        known = set(Review.objects.filter(transaction_id__in=ids).values_list("transaction_id", "source", "label"))
        latest_analyst: dict[int, datetime] = {}
        for pk, created in Review.objects.filter(transaction_id__in=ids, source=Review.ANALYST).values_list(
            "transaction_id", "created_at"
        ):
            latest_analyst[pk] = max(created, latest_analyst.get(pk, created))
        new, current = [], {}
        for item in sorted(labels, key=lambda label: label.reported_at):
            pk = targets[item.index]
            if (pk, item.source, item.label) in known:
                continue
            known.add((pk, item.source, item.label))
            new.append(
                Review(
                    transaction_id=pk,
                    label=item.label,
                    reviewer=None,
                    reviewer_name=f"{item.source} via {recorded_by}",
                    source=item.source,
                    reported_at=item.reported_at,
                    created_at=now,
                )
            )
            if pk not in latest_analyst or latest_analyst[pk] <= item.reported_at:
                current[pk] = item.label
        Review.objects.bulk_create(new)
        for label in Transaction.Label.values:
            chosen = [pk for pk, value in current.items() if value == label]
            if chosen:
                # reviewed_at moves: the monitoring recomputes the windows of these transactions.
                Transaction.objects.filter(pk__in=chosen).update(label=label, reviewed_by=None, reviewed_at=now)
    return {"received": len(labels), "recorded": len(new), "repeated": len(labels) - len(new)}


def _resolve(labels: list[ExternalLabel], is_list: bool) -> dict[int, int]:
    """Each label's transaction id, by id or by external id (unique across clients to be usable)."""
    by_id = {label.transaction_id for label in labels if label.transaction_id is not None}
    existing = set(Transaction.objects.filter(pk__in=by_id).values_list("pk", flat=True))
    by_external: dict[str, list[int]] = {}
    wanted = {label.external_id for label in labels if label.external_id is not None}
    for pk, external in Transaction.objects.filter(external_id__in=wanted).values_list("pk", "external_id"):
        by_external.setdefault(external, []).append(pk)
    targets, problems = {}, []
    for label in labels:
        if label.transaction_id is not None:
            if label.transaction_id in existing:
                targets[label.index] = label.transaction_id
            else:
                problems.append({"index": label.index, "fields": {"transaction_id": "no transaction with this id"}})
            continue
        found = by_external.get(label.external_id, [])
        if len(found) == 1:
            targets[label.index] = found[0]
        else:
            why = (
                "no transaction with this external_id"
                if not found
                else "several clients sent this external_id: give transaction_id"
            )
            problems.append({"index": label.index, "fields": {"external_id": why}})
    if problems:
        _refuse(problems, is_list)
    return targets
