"""Scoring: the one path used by the API, the form, CSV upload and batch scoring."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace

import numpy as np
from django.db import IntegrityError
from django.utils import timezone

from common import metrics
from modelops.ml import schema
from modelops.model_cache import PrimaryModel, primary_model, serving_model

from .models import Prediction, Transaction
from .parsing import Batch, InvalidInput, TooLarge
from .storage import VersionNotPrimary, store_scored

# Each retry follows a concurrent request storing one of the same external ids, or an activation.
SCORING_ATTEMPTS = 3
# The external ids of a large batch are looked up this many at a time, within any database's
# bound-parameter limit.
ID_LOOKUP_SIZE = 5_000


# Not frozen: a frozen dataclass's __init__ goes through object.__setattr__, slow for a large batch.
@dataclass(slots=True)
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


class ExternalIdConflict(InvalidInput):
    """An external_id the client sent before, now with other features: 409, nothing stored."""

    def __init__(self, conflicts: list[tuple[int, str]], *, is_list: bool):
        reason = "was scored before with other features; send a new id for a new transaction"
        ids = ", ".join(repr(external_id) for _, external_id in conflicts[:5])
        super().__init__(f"external_id {ids} {reason}")
        self.detail["code"] = "external_id_conflict"
        if is_list:
            self.detail["items"] = [
                {"index": index, "fields": {"external_id": f"{external_id!r} {reason}"}}
                for index, external_id in conflicts[:100]
            ]
        else:
            self.detail["fields"] = {"external_id": f"{conflicts[0][1]!r} {reason}"}


def _stored_results(client: str, external_ids: list[str]) -> dict[str, tuple[ScoreResult, list[float]]]:
    """The latest stored result of each of the client's known external ids, with its features."""
    found: dict[str, tuple[ScoreResult, list[float]]] = {}
    predictions = (
        Prediction.objects.primary()
        .filter(transaction__client=client, transaction__external_id__in=external_ids)
        .select_related("transaction", "model_version")
        .order_by("-created_at", "-id")
    )
    for p in predictions:
        external_id = p.transaction.external_id
        if external_id not in found:
            result = ScoreResult(
                transaction_id=p.transaction_id,
                external_id=external_id,
                is_fraud=p.is_fraud,
                fraud_probability=p.score,
                threshold=p.threshold,
                model_version=p.model_version.version,
                contributions=p.contributions,
                repeated=True,
            )
            found[external_id] = (result, p.transaction.feature_row())
    return found


def score_transactions(
    *, batch: Batch, source: str, client: str, is_list: bool = False, scored: Scored | None = None
) -> list[ScoreResult]:
    """Score transactions with the active model and store them with their predictions, all or none.
    An external_id this ``client`` already stored returns its stored result (``repeated``), even in
    a race; with other features, ExternalIdConflict. Raises NoPrimaryModel, ArtifactError, or
    VersionNotPrimary if the active version kept changing. ``scored``: the batch's scores already
    computed (score_ahead), used if their version is still the active one."""
    model = scored.model if scored is not None else serving_model()
    for _ in range(SCORING_ATTEMPTS - 1):
        try:
            return _score(batch, source, client, model, is_list, scored)
        except IntegrityError:
            pass  # a concurrent request stored one of our external ids first: found stored next pass
        except VersionNotPrimary:
            # Another version became active (or none is): rescore with the one active now.
            model, scored = primary_model(), None
    return _score(batch, source, client, model, is_list, scored)


@dataclass(frozen=True)
class Scored:
    """A batch's scores and contributions by ``model``, computed before its rows are stored."""

    model: PrimaryModel
    scores: np.ndarray
    contributions: list


def score_ahead(batch: Batch) -> Scored:
    """Score ``batch`` with the active model without storing it, for a caller that stores it later
    inside a transaction of its own: the model's work is then done before the write lock is taken."""
    model = serving_model()
    scores, contributions = model.bundle.score(batch.values)
    return Scored(model, scores, contributions)


def _plan(batch: Batch, first: dict[str, list[float]], *, has_ids: bool) -> tuple[list[int], list[tuple[int, str]]]:
    """The rows to score and the (index, external_id) conflicts: only the first of a repeated id is
    scored, and a repeat must have its first features. ``first`` holds the stored ids' features."""
    to_score: list[int] = []
    conflicts: list[tuple[int, str]] = []
    rows = batch.values.tolist() if has_ids else []
    for index, external_id in enumerate(batch.external_ids):
        if external_id is None:
            to_score.append(index)
            continue
        row = rows[index]
        if external_id not in first:
            first[external_id] = row
            to_score.append(index)
        elif first[external_id] != row:
            conflicts.append((index, external_id))
    return to_score, conflicts


def check_external_ids(*, batch: Batch, client: str) -> None:
    """ExternalIdConflict, as score_transactions would raise it, for each external_id of ``batch``
    repeated with other features, within it or against what ``client`` stored; nothing is stored."""
    known = list(dict.fromkeys(external_id for external_id in batch.external_ids if external_id is not None))
    if not known:
        return
    first: dict[str, list[float]] = {}
    for start in range(0, len(known), ID_LOOKUP_SIZE):
        found = _stored_results(client, known[start : start + ID_LOOKUP_SIZE])
        first.update((external_id, row) for external_id, (_, row) in found.items())
    _, conflicts = _plan(batch, first, has_ids=True)
    if conflicts:
        raise ExternalIdConflict(conflicts, is_list=True)


def _score(
    batch: Batch, source: str, client: str, model: PrimaryModel, is_list: bool, scored: Scored | None = None
) -> list[ScoreResult]:
    known = [external_id for external_id in batch.external_ids if external_id is not None]
    found = _stored_results(client, known) if known else {}
    stored = {external_id: result for external_id, (result, _) in found.items()}

    first = {external_id: row for external_id, (_, row) in found.items()}
    to_score, conflicts = _plan(batch, first, has_ids=bool(known))
    if conflicts:
        raise ExternalIdConflict(conflicts, is_list=is_list)

    results: list[ScoreResult | None] = [None] * len(batch)
    if to_score:
        everything = len(to_score) == len(batch)
        values = batch.values if everything else batch.values[to_score]
        external_ids = batch.external_ids if everything else [batch.external_ids[i] for i in to_score]
        if scored is None:
            scores, contributions = model.bundle.score(values)
        elif everything:
            scores, contributions = scored.scores, scored.contributions
        else:
            scores, contributions = scored.scores[to_score], [scored.contributions[i] for i in to_score]
        ids = store_scored(
            values=values,
            external_ids=external_ids,
            client=client,
            source=source,
            version_id=model.id,
            sha256=model.sha256,
            threshold=model.threshold,
            scores=scores,
            contributions=contributions,
            now=timezone.now(),
        )
        metrics.count_decisions(model.version, int((scores >= model.threshold).sum()), len(ids))
        for index, pk, external_id, score, explanation in zip(
            to_score, ids, external_ids, scores.tolist(), contributions, strict=True
        ):
            results[index] = ScoreResult(
                transaction_id=pk,
                external_id=external_id,
                is_fraud=score >= model.threshold,
                fraud_probability=score,
                threshold=model.threshold,
                model_version=model.version,
                contributions=explanation,
            )
            if external_id is not None:
                stored[external_id] = replace(results[index], repeated=True)

    for index, external_id in enumerate(batch.external_ids):
        if results[index] is None:
            results[index] = stored[external_id]
    return results


SCORED_CSV_COLUMNS = ("transaction_id", "is_fraud", "fraud_probability", "threshold", "model_version")


def read_csv(data: bytes, *, max_rows: int) -> np.ndarray:
    """The features of a CSV file's rows in schema order (``Class`` ignored), the file validated
    whole: InvalidInput naming the first bad line (also as ``line``), TooLarge past ``max_rows``."""
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    if lines - 1 > max_rows:  # counted before parsing, which costs many times the file's size
        raise TooLarge(
            f"the file has {lines - 1} lines after its header; at most {max_rows} rows can be scored at once"
        )
    try:
        frame = schema.read_training_csv(data, require_fraud=False, labelled=False)
    except schema.DataValidationError as exc:
        error = InvalidInput(f"the file cannot be scored: {exc}")
        if exc.line is not None:
            error.detail["line"] = exc.line
        raise error from None
    if len(frame) > max_rows:
        raise TooLarge(f"the file has {len(frame)} rows; at most {max_rows} can be scored at once")
    return frame.to_numpy(dtype="float64")


def score_csv(*, data: bytes, max_rows: int, client: str) -> str:
    """Score and store the transactions of a CSV file (``Class`` ignored); return the file with the
    scoring columns appended. A bad file raises InvalidInput naming its line, storing nothing."""
    values = read_csv(data, max_rows=max_rows)
    results = score_transactions(
        batch=Batch(values=values, external_ids=[None] * len(values)), source=Transaction.Source.UPLOAD, client=client
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*schema.FEATURES, *SCORED_CSV_COLUMNS])
    for row, result in zip(values.tolist(), results, strict=True):
        writer.writerow(
            [
                *(repr(v) for v in row),
                result.transaction_id,
                int(result.is_fraud),
                f"{result.fraud_probability:.6f}",
                f"{result.threshold:.6f}",
                result.model_version,
            ]
        )
    return out.getvalue()
