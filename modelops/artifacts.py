"""Model artifacts in the models storage (an S3 prefix or a local folder)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from .ml import artifact
from .ml.artifact import ModelBundle

# What a storage outage raises: local folders, or S3 through boto3.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)


def models_storage():
    return storages["models"]


def store(bundle: ModelBundle) -> tuple[str, str]:
    """Upload a bundle; return (name, sha256). Names are content addresses, so storing the same
    model twice is harmless and a name never points at different bytes."""
    data = artifact.dumps(bundle)
    sha256 = artifact.sha256_hex(data)
    name = f"{sha256}.json"
    storage = models_storage()
    if not storage.exists(name):
        name = storage.save(name, ContentFile(data))
    return name, sha256


def load(name: str, sha256: str) -> ModelBundle:
    """Download and load an artifact, verifying its sha256 first.

    Raises artifact.ArtifactError if the file is missing, altered or unreadable.
    """
    try:
        with models_storage().open(name, "rb") as handle:
            data = handle.read()
    except STORAGE_ERRORS as exc:
        raise artifact.ArtifactError(f"artifact {name} cannot be read: {exc}") from None
    return artifact.loads(data, sha256=sha256)
