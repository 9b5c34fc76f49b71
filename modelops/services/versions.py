"""The version registry: record trained versions, reject candidates."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Max

from .. import artifact_store
from ..ml import reference, training
from ..models import DataFile, ModelEvent, ModelVersion, TrainingRun

log = logging.getLogger(__name__)


def record_version(
    *,
    result: training.TrainResult,
    data_files: list[DataFile] | tuple = (),
    parent: ModelVersion | None = None,
    status: str = ModelVersion.Status.CANDIDATE,
    kind: str = ModelVersion.Kind.FILE,
    training_run: TrainingRun | None = None,
    data_files_sha256: list[str] | tuple = (),
) -> ModelVersion:
    """Store a trained model as the next version; the upload comes first, so no row names a missing file."""
    name, sha256 = artifact_store.store(result.bundle)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                number = (ModelVersion.objects.aggregate(top=Max("version"))["top"] or 0) + 1
                version = ModelVersion.objects.create(
                    version=number,
                    artifact=name,
                    sha256=sha256,
                    signing_key=artifact_store.signing_key().id,
                    status=status,
                    threshold=result.bundle.threshold,
                    kind=kind,
                    training_run=training_run,
                    params=result.params,
                    data_files_sha256=sorted(data_files_sha256),
                    metrics=result.metrics,
                    training_rows=result.rows,
                    training_frauds=result.frauds,
                    parent=parent,
                    library_versions=result.bundle.metadata.get("library_versions", {}),
                    reference=reference.checked(result.bundle.metadata.get("reference")),
                )
                version.data_files.set(data_files)
            return version
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a model version number")


def reject_version(version: ModelVersion, *, actor: str, reason: str, active: ModelVersion | None) -> bool:
    """Reject a candidate with its event; False if another worker decided it first."""
    with transaction.atomic():
        if not ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.CANDIDATE).update(
            status=ModelVersion.Status.REJECTED
        ):
            return False
        ModelEvent.objects.create(
            kind=ModelEvent.Kind.REJECT, from_version=active, to_version=version, actor=actor, reason=reason
        )
    return True


def reject_candidates_of(*, run_id: int, actor: str, reason: str) -> list[ModelVersion]:
    """Reject and return the candidates a failed or dead run left undecided."""
    active = ModelVersion.objects.primary().first()
    candidates = ModelVersion.objects.filter(status=ModelVersion.Status.CANDIDATE, training_run_id=run_id)
    return [v for v in candidates if reject_version(v, actor=actor, reason=reason, active=active)]
