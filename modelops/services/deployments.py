"""Which version serves: make one primary (activate or roll back, one change at a time), put
versions into shadow and take them out, each change with its audit event."""

from __future__ import annotations

import logging

from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from .. import artifact_store
from ..ml.artifact import ArtifactError
from ..models import Deployment, ModelEvent, ModelVersion

log = logging.getLogger(__name__)


class ActivationError(Exception):
    """A version that must not become primary; the primary is left as it was."""


class ActivationUnavailable(ActivationError):
    """The artifact store could not be read: nothing is known against the version, try later."""


class PrimaryChanged(ActivationError):
    """Another version became primary since the caller compared with it: nothing was activated."""


class ShadowError(Exception):
    """The version cannot be put into shadow, or is not in shadow: nothing changed."""


ANY = object()  # activate_version(replacing=ANY): whatever version is primary
# pg_advisory_xact_lock's key; no other lock of this database may use it.
DEPLOYMENT_LOCK = 7_240_101


def primary_version() -> ModelVersion | None:
    return ModelVersion.objects.primary().first()


def activate_version(
    *, version_id: int, actor: str, user=None, reason: str = "", replacing: ModelVersion | object | None = ANY
) -> ModelVersion:
    """Make a version primary (a rollback if older; a promotion if it is a shadow), its artifact
    verified first: ActivationError with a `reject` event if it fails, ActivationUnavailable if the
    store is down. ``replacing``: the version expected primary; PrimaryChanged if another is by then.
    The old primary is no longer deployed and stays a rollback target."""
    target = ModelVersion.objects.get(pk=version_id)
    try:
        artifact_store.load(target.artifact, target.sha256)
    except artifact_store.ArtifactUnavailable as exc:
        raise ActivationUnavailable(f"v{target.version} cannot be activated now: {exc}") from exc
    except ArtifactError as exc:
        ModelEvent.objects.create(
            kind=ModelEvent.Kind.REJECT,
            from_version=primary_version(),
            to_version=target,
            actor=actor,
            user=user,
            reason=f"activation refused: {exc}",
        )
        raise ActivationError(f"v{target.version} cannot be activated: {exc}") from exc

    with transaction.atomic():
        _one_change_at_a_time()
        # FOR UPDATE: the storing statement's FOR KEY SHARE on the primary row waits for this commit.
        serving = Deployment.objects.select_for_update().primary().select_related("version").first()
        current = serving.version if serving is not None else None
        target = ModelVersion.objects.select_for_update().get(pk=version_id)
        if replacing is not ANY and getattr(current, "pk", None) != getattr(replacing, "pk", None):
            now_primary = f"v{current.version}" if current is not None else "no version"
            raise PrimaryChanged(f"v{target.version} not activated: {now_primary} is primary since it was compared")
        if current is not None and current.pk == target.pk:
            return target
        kind = ModelEvent.Kind.ROLLBACK if current and target.version < current.version else ModelEvent.Kind.ACTIVATE
        promoted = Deployment.objects.filter(version=target, role=Deployment.Role.SHADOW).delete()[0]
        if serving is not None:
            serving.delete()
        now = timezone.now()
        Deployment.objects.create(version=target, role=Deployment.Role.PRIMARY, since=now, reason=reason)
        target.status = ModelVersion.Status.ACCEPTED
        target.activated_at = now
        target.save(update_fields=["status", "activated_at"])
        if promoted:
            reason = f"promoted from shadow: {reason}" if reason else "promoted from shadow"
        ModelEvent.objects.create(
            kind=kind, from_version=current, to_version=target, actor=actor, user=user, reason=reason
        )
    log.info("model v%s %s by %s", target.version, kind, actor)
    transaction.on_commit(point_at_primary)
    return target


def point_at_primary() -> None:
    """Point the bucket at the version primary now, read at write time: of two close activations, the
    last callback may belong to the first commit."""
    current = primary_version()
    if current is not None:
        artifact_store.point_at(current.artifact)


def deploy_shadow(*, version_id: int, actor: str, user=None, reason: str = "") -> Deployment:
    """Score a version beside the primary on the traffic stored from now on; its artifact verified
    first. ShadowError if it is deployed already or its artifact is bad, ActivationUnavailable if the
    store is down."""
    target = ModelVersion.objects.get(pk=version_id)
    try:
        artifact_store.load(target.artifact, target.sha256)
    except artifact_store.ArtifactUnavailable as exc:
        raise ActivationUnavailable(f"v{target.version} cannot be put into shadow now: {exc}") from exc
    except ArtifactError as exc:
        raise ShadowError(f"v{target.version} cannot be put into shadow: {exc}") from exc
    with transaction.atomic():
        _one_change_at_a_time()
        if Deployment.objects.filter(version=target).exists():
            raise ShadowError(f"v{target.version} is deployed already, as {target.deployment.role}")
        deployment = Deployment.objects.create(version=target, role=Deployment.Role.SHADOW, reason=reason)
        if target.status == ModelVersion.Status.CANDIDATE:
            ModelVersion.objects.filter(pk=target.pk).update(status=ModelVersion.Status.ACCEPTED)
        ModelEvent.objects.create(
            kind=ModelEvent.Kind.SHADOW,
            from_version=primary_version(),
            to_version=target,
            actor=actor,
            user=user,
            reason=reason,
        )
    log.info("model v%s put into shadow by %s", target.version, actor)
    return deployment


def stop_shadow(*, version_id: int, actor: str, user=None, reason: str = "") -> None:
    """Stop scoring a shadow; the predictions it made stay. ShadowError if it is not in shadow."""
    with transaction.atomic():
        _one_change_at_a_time()
        deleted = Deployment.objects.shadows().filter(version_id=version_id).delete()[0]
        target = ModelVersion.objects.get(pk=version_id)
        if not deleted:
            raise ShadowError(f"v{target.version} is not in shadow")
        ModelEvent.objects.create(
            kind=ModelEvent.Kind.UNSHADOW,
            from_version=target,
            to_version=primary_version(),
            actor=actor,
            user=user,
            reason=reason,
        )


def _one_change_at_a_time() -> None:
    """Serialise deployment changes until commit on PostgreSQL (SQLite's BEGIN IMMEDIATE already does).
    Locking the primary row is not enough: a waiter finds it gone, sees no primary, breaks the constraint."""
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DEPLOYMENT_LOCK])
