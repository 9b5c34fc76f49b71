"""The active model, as each process serves it.

active_model() reads which version is active from the database (one indexed query). Scoring
does not pay for that query on every request: it scores with serving_model(), the version this
process last found active, and the write that stores the score checks in the same statement that
this version is still the active one (detection.storage); if it is not, the request reads the
active version again and scores anew. So after an activation or a rollback every worker serves
the new version from its next request on, and no score is stored under a version that was no
longer active when it was stored. The loaded model itself is cached per process under
(version id, sha256): a key that changes whenever the active model does, so a stale entry can
never be served.
"""

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
# After a failed load the artifact is not fetched again for this long: under load, every request
# would otherwise download and hash it anew only to fail the same way. Then it is tried again,
# so a restored file (or a storage back from an outage) is served without a restart.
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
    """(id, version, threshold, sha256, artifact) of the active version; the partial unique
    index on status = 'active' serves the query."""
    return ModelVersion.objects.active().values_list("id", "version", "threshold", "sha256", "artifact").first()


def serving_model() -> ActiveModel:
    """The version this process last found active, without asking the database; the first time,
    the active one. Whoever stores a score made with it must check that it still is active."""
    serving = _serving
    return active_model() if serving is None else serving


def active_model() -> ActiveModel:
    """The active version and its loaded model, as the database says now. Raises NoActiveModel if
    none is active, and ArtifactError if its artifact fails its checksum or does not load."""
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
    """Load into the cache (the caller holds _lock). An artifact that fails verification is
    recorded as an integrity event; a storage outage is not, as nothing says the file is bad."""
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
