"""The active model, as each process serves it.

Scoring uses serving_model() without a query; the write that stores a score checks in the same
statement that its version is still active (detection.storage), else the request rescores with
active_model(). Models are cached under (version id, sha256), so a stale entry is never served."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .ml.artifact import ArtifactError, ModelBundle
from .models import ModelVersion
from .services import integrity

# Two entries: the active model and the one before it, so a rollback does not reload.
_KEEP = 2
_cache: dict[tuple[int, str], ModelBundle] = {}
# A failed load is not retried sooner, or every request would fetch the bad file again.
RETRY_FAILED_LOAD_SECONDS = 30.0
_failed: dict[tuple[int, str], tuple[float, ArtifactError]] = {}
_lock = threading.Lock()
_serving: ActiveModel | None = None  # what active_model() last found, for serving_model()


class NoActiveModel(Exception):
    pass


@dataclass(frozen=True)
class ActiveModel:
    id: int
    version: int
    threshold: float
    sha256: str
    bundle: ModelBundle


def _active_row() -> tuple | None:
    return ModelVersion.objects.active().values_list("id", "version", "threshold", "sha256", "artifact").first()


def serving_model() -> ActiveModel:
    """The version this process last found active, unasked; who stores its score must check it still is."""
    serving = _serving
    return active_model() if serving is None else serving


def active_model() -> ActiveModel:
    """The active version now, loaded; NoActiveModel if none, ArtifactError if its artifact is bad."""
    global _serving
    _serving = None  # until a version is found active and loaded
    row = _active_row()
    if row is None:
        raise NoActiveModel("no model version is active")
    pk, version, threshold, sha256, name = row
    key = (pk, sha256)
    bundle = _cache.get(key)
    if bundle is None:
        with _lock:
            bundle = _cache.get(key)
            if bundle is None:
                bundle = _load(key, name)
    _serving = ActiveModel(id=pk, version=version, threshold=threshold, sha256=sha256, bundle=bundle)
    return _serving


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
