"""The primary model, as each process serves it, and loaded versions for the shadows' scoring.

Scoring uses serving_model() without a query; the write that stores a score checks in the same
statement that its version is still primary (detection.storage), else the request rescores with
primary_model(). Models are cached under (version id, sha256), so a stale entry is never served."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from common import metrics

from .ml.artifact import ArtifactError, ModelBundle
from .models import Deployment
from .services import integrity

# The primary, the one before it (a rollback does not reload) and a few shadows in a task worker.
_KEEP = 5
_cache: dict[tuple[int, str], ModelBundle] = {}
# A failed load is not retried sooner, or every request would fetch the bad file again.
RETRY_FAILED_LOAD_SECONDS = 30.0
_failed: dict[tuple[int, str], tuple[float, ArtifactError]] = {}
_lock = threading.Lock()
_serving: PrimaryModel | None = None  # what primary_model() last found, for serving_model()


class NoPrimaryModel(Exception):
    pass


@dataclass(frozen=True)
class PrimaryModel:
    id: int
    version: int
    threshold: float
    sha256: str
    bundle: ModelBundle


def _primary_row() -> tuple | None:
    fields = ("version_id", "version__version", "version__threshold", "version__sha256", "version__artifact")
    return Deployment.objects.primary().values_list(*fields).first()


def serving_model() -> PrimaryModel:
    """The version this process last found primary, unasked; who stores its score must check it still is."""
    serving = _serving
    return primary_model() if serving is None else serving


def primary_model() -> PrimaryModel:
    """The primary version now, loaded; NoPrimaryModel if none, ArtifactError if its artifact is bad."""
    global _serving
    _serving = None  # until a version is found primary and loaded
    row = _primary_row()
    if row is None:
        raise NoPrimaryModel("no model version is active")
    pk, version, threshold, sha256, name = row
    bundle = loaded(version_id=pk, sha256=sha256, name=name)
    _serving = PrimaryModel(id=pk, version=version, threshold=threshold, sha256=sha256, bundle=bundle)
    return _serving


def loaded(*, version_id: int, sha256: str, name: str) -> ModelBundle:
    """A version's model from the cache, loaded and checked on a miss; ArtifactError if it is bad."""
    key = (version_id, sha256)
    bundle = _cache.get(key)
    if bundle is None:
        with _lock:
            bundle = _cache.get(key)
            if bundle is None:
                bundle = _load(key, name)
    return bundle


def _load(key: tuple[int, str], name: str) -> ModelBundle:
    """Load into the cache; the caller holds _lock."""
    failed = _failed.get(key)
    if failed is not None and time.monotonic() - failed[0] < RETRY_FAILED_LOAD_SECONDS:
        error = failed[1]
        raise type(error)(str(error))
    try:
        bundle = integrity.load_checked(
            version_id=key[0], name=name, sha256=key[1], actor="serving", purpose="serving", walk=True
        )
    except ArtifactError as exc:
        _failed[key] = (time.monotonic(), exc)
        metrics.ARTIFACT_FAILURES.inc()
        raise
    _failed.pop(key, None)
    while len(_cache) >= _KEEP:
        _cache.pop(next(iter(_cache)))
    _cache[key] = bundle
    return bundle


def clear() -> None:
    global _serving
    with _lock:
        _serving = None
        _cache.clear()
        _failed.clear()
