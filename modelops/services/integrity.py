"""Checks of stored artifacts against what was recorded, and the integrity events they leave."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from .. import artifact_store
from ..ml.artifact import ArtifactError, ModelBundle
from ..models import ModelEvent, ModelVersion

log = logging.getLogger(__name__)


# One event per version per window: every worker finds a bad artifact on every request.
INTEGRITY_EVENT_EVERY = timedelta(minutes=10)


def record_integrity_failure(*, version_id: int, reason: str, actor: str) -> ModelEvent | None:
    """The integrity event for a version's failed artifact, or None if one is recent. The version keeps
    its status: nothing better is known to serve until an operator restores it or rolls back."""
    log.error("model version id %s: %s", version_id, reason)
    recent = ModelEvent.objects.filter(
        kind=ModelEvent.Kind.INTEGRITY,
        to_version_id=version_id,
        created_at__gte=timezone.now() - INTEGRITY_EVENT_EVERY,
    )
    if recent.exists():
        return None
    return ModelEvent.objects.create(
        kind=ModelEvent.Kind.INTEGRITY,
        from_version_id=version_id,
        to_version_id=version_id,
        actor=actor,
        reason=reason,
    )


def load_checked(
    *, version_id: int, name: str, sha256: str, actor: str, purpose: str, walk: bool = False
) -> ModelBundle:
    """Load an active version's artifact; a failed verification is recorded (ArtifactError), an outage
    is not (ArtifactUnavailable). ``walk``: also lay the trees out for the numpy walk."""
    try:
        bundle = artifact_store.load(name, sha256)
        if walk:
            bundle.walker  # noqa: B018
        return bundle
    except artifact_store.ArtifactUnavailable:
        raise
    except ArtifactError as exc:
        record_integrity_failure(
            version_id=version_id,
            reason=f"the active artifact failed verification, loaded for {purpose}: {exc}",
            actor=actor,
        )
        raise


def verify_active_artifact(*, actor: str) -> str:
    """Check the active artifact as a new worker would (running ones serve from memory); what was found."""
    active = ModelVersion.objects.primary().first()
    if active is None:
        return "no active version"
    try:
        load_checked(version_id=active.pk, name=active.artifact, sha256=active.sha256, actor=actor, purpose="a check")
    except artifact_store.ArtifactUnavailable as exc:
        return f"active v{active.version} not checked: {exc}"
    except ArtifactError as exc:
        return f"active v{active.version} FAILED verification: {exc}"
    return f"active v{active.version} verified"
