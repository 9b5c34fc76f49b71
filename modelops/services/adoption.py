"""Bring models from the models storage into the registry: adopt one, sign those stored unsigned."""

from __future__ import annotations

from django.db import transaction

from .. import artifact_store
from ..ml import artifact, training
from ..ml.artifact import ArtifactError
from ..models import ModelEvent, ModelVersion
from . import deployments, versions

# Artifacts written before versions had these columns carry them among their params.
RECORDED_BESIDE_PARAMS = ("kind", "training_run", "data_files_sha256", "adopted_from")


def _learned_contents(meta: dict) -> list[str]:
    """The sha256 of each content the artifact says it learned (strings only)."""
    hashes = meta.get("data_files_sha256") or meta.get("params", {}).get("data_files_sha256")
    return [h for h in hashes if isinstance(h, str)] if isinstance(hashes, list) else []


def adopt_from_storage(*, actor: str, allow_unsigned: bool = False) -> tuple[ModelVersion | None, list[str]]:
    """Record and activate the artifact that was active last (else the newest) that verifies; return
    (version or None, what was skipped). Names are content hashes, so a mismatch means altered."""
    storage = artifact_store.models_storage()
    try:
        _, names = storage.listdir("")
    except FileNotFoundError:  # a local folder not created yet: nothing stored
        names = []
    names = sorted((n for n in names if n.endswith(".json")), key=storage.get_modified_time, reverse=True)
    active = artifact_store.pointed_at()
    names.sort(key=lambda name: name != active)  # stable: the rest stay newest first
    skipped = []
    for name in names:
        data = artifact_store.read(name)
        sha256 = artifact.sha256_hex(data)
        if name != f"{sha256}.json":
            skipped.append(f"{name}: content does not match its checksum name")
            continue
        try:
            bundle = artifact.loads(
                data, sha256=sha256, keys=artifact_store.verifying_keys(), allow_unsigned=allow_unsigned
            )
        except ArtifactError as exc:
            skipped.append(f"{name}: {exc}")
            ModelEvent.objects.create(
                kind=ModelEvent.Kind.INTEGRITY, actor=actor, reason=f"not adopted: {name!r}: {exc}"
            )
            continue
        version = ModelVersion.objects.filter(sha256=sha256).first()
        reason = f"adopted from the models storage ({name})"
        if version is None:
            meta = bundle.metadata
            result = training.TrainResult(
                bundle=bundle,
                metrics=meta.get("metrics", {}),
                params={k: v for k, v in meta.get("params", {}).items() if k not in RECORDED_BESIDE_PARAMS},
                rows=meta.get("training_rows", 0),
                frauds=meta.get("training_frauds", 0),
            )
            version = versions.record_version(
                result=result,
                kind=ModelVersion.Kind.ADOPTED,
                data_files_sha256=_learned_contents(meta),
            )  # stored signed, under a new name if it was not
            if not bundle.signed_by:
                reason += f", unsigned, signed anew as {version.artifact} (--allow-unsigned)"
        return deployments.activate_version(version_id=version.pk, actor=actor, reason=reason), skipped
    return None, skipped


def sign_unsigned_versions(*, actor: str) -> list[str]:
    """Sign the artifacts of versions stored unsigned, each checked against its sha256, with `sign` events."""
    done = []
    for version in ModelVersion.objects.filter(signing_key="").order_by("version"):
        try:
            bundle = artifact.loads(
                artifact_store.read(version.artifact),
                sha256=version.sha256,
                keys=artifact_store.verifying_keys(),
                allow_unsigned=True,
            )
        except ArtifactError as exc:
            done.append(f"v{version.version} not signed: {exc}")
            continue
        old = version.artifact
        if not bundle.signed_by:
            version.artifact, version.sha256 = artifact_store.store(bundle)
        version.signing_key = bundle.signed_by or artifact_store.signing_key().id
        with transaction.atomic():
            version.save(update_fields=["artifact", "sha256", "signing_key"])
            if old != version.artifact:
                ModelEvent.objects.create(
                    kind=ModelEvent.Kind.SIGN,
                    from_version=version,
                    to_version=version,
                    actor=actor,
                    reason=f"unsigned artifact {old} signed as {version.artifact} (--allow-unsigned)",
                )
                done.append(f"v{version.version}: {old} signed as {version.artifact}")
    if done and ModelVersion.objects.primary().exists():
        transaction.on_commit(deployments.point_at_primary)
    return done
