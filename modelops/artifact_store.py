"""Model artifacts in the models storage (an S3 prefix or a local folder)."""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from .ml import artifact
from .ml.artifact import ModelBundle
from .ml.signing import SigningKey

log = logging.getLogger(__name__)

# What a storage outage raises: local folders, or S3 through boto3.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)


class ArtifactUnavailable(artifact.ArtifactError):
    """The storage could not be read: no integrity failure, and a later attempt may succeed."""


def models_storage():
    return storages["models"]


def signing_key() -> SigningKey:
    return SigningKey(settings.ARTIFACT_SIGNING_KEY.encode())


def verifying_keys() -> list[SigningKey]:
    """The keys an artifact may be signed with: the current one, and those it replaced."""
    return [signing_key(), *(SigningKey(old.encode()) for old in settings.ARTIFACT_SIGNING_OLD_KEYS)]


def read(name: str) -> bytes:
    """An artifact's bytes, at most MAX_ARTIFACT_BYTES and one more, so a planted huge file is refused."""
    try:
        with models_storage().open(name, "rb") as handle:
            return handle.read(artifact.MAX_ARTIFACT_BYTES + 1)
    except FileNotFoundError:
        # The storage answered, and the file is gone: as bad as an altered one.
        raise artifact.ArtifactError(f"artifact {name} is missing from the models storage") from None
    except STORAGE_ERRORS as exc:
        raise ArtifactUnavailable(f"artifact {name} cannot be read: {exc}") from None


# Names the active artifact, so an empty database adopts the model that was serving, not the newest
# file, which is often a rejected candidate's.
ACTIVE_POINTER = "active.txt"


def point_at(name: str) -> None:
    """Record ``name`` as the active artifact; a failure is only logged, as the database is the truth."""
    storage = models_storage()
    try:
        if storage.exists(ACTIVE_POINTER):
            storage.delete(ACTIVE_POINTER)  # local folders never overwrite a file on save
        storage.save(ACTIVE_POINTER, ContentFile(name.encode()))
    except STORAGE_ERRORS as exc:
        log.warning("the models storage could not record %s as the active artifact: %s", name, exc)


def pointed_at() -> str | None:
    """The artifact name point_at last recorded, or None (none recorded, or unreadable)."""
    try:
        with models_storage().open(ACTIVE_POINTER, "rb") as handle:
            return handle.read(1000).decode("utf-8", "replace").strip() or None
    except STORAGE_ERRORS:
        return None


def store(bundle: ModelBundle) -> tuple[str, str]:
    """Upload a bundle under its content hash; return (name, sha256). A stored file is reused only if
    its bytes hash to the name, so an altered or half-written copy is replaced."""
    data = artifact.dumps(bundle, key=signing_key())
    sha256 = artifact.sha256_hex(data)
    name = f"{sha256}.json"
    storage = models_storage()
    if storage.exists(name):
        try:
            stored = read(name)
        except artifact.ArtifactError:
            stored = b""
        if artifact.sha256_hex(stored) == sha256:
            return name, sha256
        log.warning("artifact %s in the models storage does not match its checksum: uploading it again", name)
        storage.delete(name)
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        raise OSError(f"the models storage saved artifact {name} as {saved}")
    return name, sha256


def load(name: str, sha256: str) -> ModelBundle:
    """Download and verify an artifact; ArtifactUnavailable on an outage, ArtifactError if it is bad."""
    return artifact.loads(read(name), sha256=sha256, keys=verifying_keys())
