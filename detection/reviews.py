"""Analysts' decisions: recording them, and the review queue they work from."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from .models import Prediction, Review, Transaction

# More than a queue page holds; a bulk decision is one transaction of at most this many rows.
MAX_BULK = 500


class ReviewError(ValueError):
    """A decision that cannot be recorded; nothing was written."""


def decide(*, transaction_ids: Iterable[int], label: str, note: str = "", user) -> int:
    """Record ``user``'s decision on each transaction, all or none, and make it the current label;
    returns how many were recorded. Restating the same user's latest decision and note (a double
    click) records nothing. ReviewError for a bad label, selection size or id."""
    if label not in Transaction.Label.values:
        raise ReviewError(f"unknown decision {label!r}; expected one of {', '.join(Transaction.Label.values)}")
    ids = sorted(set(transaction_ids))
    if not ids:
        raise ReviewError("select at least one transaction")
    if len(ids) > MAX_BULK:
        raise ReviewError(f"at most {MAX_BULK} transactions at once")
    note = note.strip()
    # No row has an id beyond a 64-bit integer, and SQLite refuses to compare with one.
    if impossible := [pk for pk in ids if not 0 < pk < 2**63]:
        raise ReviewError(f"no transaction with id {', '.join(map(str, impossible[:10]))}")
    with transaction.atomic():
        # Locked in id order, so two bulk decisions over overlapping rows cannot deadlock.
        rows = list(Transaction.objects.select_for_update().filter(pk__in=ids).order_by("pk").only("pk"))
        if len(rows) != len(ids):
            missing = sorted(set(ids) - {row.pk for row in rows})
            raise ReviewError(f"no transaction with id {', '.join(map(str, missing[:10]))}")
        # Read once the rows are locked, so a decision that waited is dated after the one it waited for.
        now = timezone.now()
        latest: dict[int, Review] = {}
        for review in Review.objects.filter(transaction_id__in=ids).order_by("created_at", "id"):
            latest[review.transaction_id] = review
        new = [
            Review(
                transaction_id=pk,
                label=label,
                note=note,
                reviewer=user,
                reviewer_name=user.get_username(),
                created_at=now,
            )
            for pk in ids
            if not _restates(latest.get(pk), label=label, note=note, user=user)
        ]
        Review.objects.bulk_create(new)
        Transaction.objects.filter(pk__in=[review.transaction_id for review in new]).update(
            label=label, reviewed_by=user, reviewed_at=now
        )
    return len(new)


def _restates(previous: Review | None, *, label: str, note: str, user) -> bool:
    return (
        previous is not None and previous.label == label and previous.note == note and previous.reviewer_id == user.pk
    )


def counts() -> dict[str, int]:
    """How many transactions are in each review state, reading only the small, indexed subsets."""
    labelled = dict(
        Transaction.objects.filter(label__isnull=False).order_by().values_list("label").annotate(n=Count("id"))
    )
    return {
        "awaiting": Prediction.objects.primary().flagged().filter(transaction__label__isnull=True).count(),
        "fraud": labelled.get(Transaction.Label.FRAUD, 0),
        "legitimate": labelled.get(Transaction.Label.LEGITIMATE, 0),
    }
