"""The version registry: record, activate or roll back (one activation at a time), reject."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import Max
from django.utils import timezone

from .. import artifact_store
from ..ml import training
from ..ml.artifact import ArtifactError
from ..models import DataFile, ModelEvent, ModelVersion, TrainingRun

log = logging.getLogger(__name__)


class ActivationError(Exception):
    """A version that must not become active; the active one is left as it was."""


class ActivationUnavailable(ActivationError):
    """The artifact store could not be read: nothing is known against the version, try later."""


class ActiveVersionChanged(ActivationError):
    """Another version became active since the caller compared with it: nothing was activated."""


ANY = object()  # activate_version(replacing=ANY): whatever version is active
# pg_advisory_xact_lock's key; no other lock of this database may use it.
ACTIVATION_LOCK = 7_240_101


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
                )
                version.data_files.set(data_files)
            return version
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a model version number")


def activate_version(
    *, version_id: int, actor: str, user=None, reason: str = "", replacing: ModelVersion | object | None = ANY
) -> ModelVersion:
    """Make a version active (a rollback if older), its artifact verified first: ActivationError with a
    `reject` event if it fails, ActivationUnavailable if the store is down. Activations take turns.
    ``replacing``: the version expected active; ActiveVersionChanged if another is by then."""
    target = ModelVersion.objects.get(pk=version_id)
    try:
        artifact_store.load(target.artifact, target.sha256)
    except artifact_store.ArtifactUnavailable as exc:
        raise ActivationUnavailable(f"v{target.version} cannot be activated now: {exc}") from exc
    except ArtifactError as exc:
        ModelEvent.objects.create(
            kind=ModelEvent.Kind.REJECT,
            from_version=ModelVersion.objects.active().first(),
            to_version=target,
            actor=actor,
            user=user,
            reason=f"activation refused: {exc}",
        )
        raise ActivationError(f"v{target.version} cannot be activated: {exc}") from exc

    with transaction.atomic():
        _one_activation_at_a_time()
        current = ModelVersion.objects.select_for_update().active().first()
        target = ModelVersion.objects.select_for_update().get(pk=version_id)
        if replacing is not ANY and getattr(current, "pk", None) != getattr(replacing, "pk", None):
            now_active = f"v{current.version}" if current is not None else "no version"
            raise ActiveVersionChanged(f"v{target.version} not activated: {now_active} is active since it was compared")
        if current is not None and current.pk == target.pk:
            return target
        kind = ModelEvent.Kind.ROLLBACK if current and target.version < current.version else ModelEvent.Kind.ACTIVATE
        if current is not None:
            current.status = ModelVersion.Status.RETIRED
            current.save(update_fields=["status"])
        target.status = ModelVersion.Status.ACTIVE
        target.activated_at = timezone.now()
        target.save(update_fields=["status", "activated_at"])
        ModelEvent.objects.create(
            kind=kind, from_version=current, to_version=target, actor=actor, user=user, reason=reason
        )
    log.info("model v%s %s by %s", target.version, kind, actor)
    transaction.on_commit(point_at_active)
    return target


def point_at_active() -> None:
    """Point the bucket at the version active now, read at write time: of two close activations, the
    last callback may belong to the first commit."""
    current = ModelVersion.objects.active().first()
    if current is not None:
        artifact_store.point_at(current.artifact)


def _one_activation_at_a_time() -> None:
    """Serialise activations until commit on PostgreSQL (SQLite's BEGIN IMMEDIATE already does). Locking
    the active row is not enough: a waiter finds it retired, sees no active version, breaks the constraint."""
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ACTIVATION_LOCK])


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
    active = ModelVersion.objects.active().first()
    candidates = ModelVersion.objects.filter(status=ModelVersion.Status.CANDIDATE, training_run_id=run_id)
    return [v for v in candidates if reject_version(v, actor=actor, reason=reason, active=active)]
