"""Scoring: the one path used by the API, the form, CSV upload and batch scoring."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from modelops.model_cache import active_model

from .models import Prediction, Transaction
from .parsing import TransactionInput


@dataclass(frozen=True)
class ScoreResult:
    transaction_id: int
    external_id: str | None
    is_fraud: bool
    fraud_probability: float
    threshold: float
    model_version: int
    contributions: list[dict]
    repeated: bool = False  # the external_id was seen before: this is the stored result

    def as_json(self, *, explain: bool) -> dict:
        body = {
            "is_fraud": self.is_fraud,
            "fraud_probability": self.fraud_probability,
            "threshold": self.threshold,
            "model_version": self.model_version,
            "transaction_id": self.transaction_id,
        }
        if self.external_id is not None:
            body["external_id"] = self.external_id
            body["repeated"] = self.repeated
        if explain:
            body["contributions"] = self.contributions
        return body


def _stored_results(external_ids: list[str]) -> dict[str, ScoreResult]:
    """The latest stored prediction of each already-known external id, in one query."""
    found: dict[str, ScoreResult] = {}
    predictions = (
        Prediction.objects.filter(transaction__external_id__in=external_ids)
        .select_related("transaction", "model_version")
        .order_by("-created_at", "-id")
    )
    for p in predictions:
        external_id = p.transaction.external_id
        if external_id not in found:
            found[external_id] = ScoreResult(
                transaction_id=p.transaction_id,
                external_id=external_id,
                is_fraud=p.is_fraud,
                fraud_probability=p.score,
                threshold=p.threshold,
                model_version=p.model_version.version,
                contributions=p.contributions,
                repeated=True,
            )
    return found


def score_transactions(*, items: list[TransactionInput], source: str) -> list[ScoreResult]:
    """Score transactions with the active model and store each with its prediction.

    All rows are stored in one transaction, or none. A transaction whose external_id is already
    stored is not scored again: its stored result comes back (``repeated``), also when two
    requests with the same id race. Raises NoActiveModel or ArtifactError when there is no
    usable active model.
    """
    model = active_model()
    try:
        return _score(items, source, model)
    except IntegrityError:
        # A concurrent request stored one of our external ids between our lookup and insert;
        # a second pass finds it stored and returns it.
        return _score(items, source, model)


def _score(items: list[TransactionInput], source: str, model) -> list[ScoreResult]:
    known_ids = [i.external_id for i in items if i.external_id is not None]
    stored = _stored_results(known_ids) if known_ids else {}

    # Rows to score: new ones, and only the first of a repeated id within this batch.
    to_score: list[int] = []
    claimed: set[str] = set()
    for index, item in enumerate(items):
        if item.external_id is None:
            to_score.append(index)
        elif item.external_id not in stored and item.external_id not in claimed:
            claimed.add(item.external_id)
            to_score.append(index)

    results: list[ScoreResult | None] = [None] * len(items)
    if to_score:
        rows = np.array([items[i].values for i in to_score], dtype=np.float64)
        scores, contributions = model.bundle.score(rows)
        now = timezone.now()
        with transaction.atomic():
            stored_tx = Transaction.objects.bulk_create(
                [
                    Transaction(
                        external_id=items[i].external_id,
                        time=items[i].values[0],
                        v=list(items[i].values[1:-1]),
                        amount=items[i].values[-1],
                        source=source,
                        created_at=now,
                    )
                    for i in to_score
                ]
            )
            Prediction.objects.bulk_create(
                [
                    Prediction(
                        transaction_id=tx.pk,
                        model_version_id=model.id,
                        score=float(score),
                        threshold=model.threshold,
                        is_fraud=bool(score >= model.threshold),
                        contributions=explanation,
                        created_at=now,
                    )
                    for tx, score, explanation in zip(stored_tx, scores, contributions, strict=True)
                ]
            )
        for i, tx, score, explanation in zip(to_score, stored_tx, scores, contributions, strict=True):
            results[i] = ScoreResult(
                transaction_id=tx.pk,
                external_id=tx.external_id,
                is_fraud=bool(score >= model.threshold),
                fraud_probability=float(score),
                threshold=model.threshold,
                model_version=model.version,
                contributions=explanation,
            )
            if tx.external_id is not None:
                stored[tx.external_id] = ScoreResult(**{**results[i].__dict__, "repeated": True})

    for index, item in enumerate(items):
        if results[index] is None:
            results[index] = stored[item.external_id]
    return results
