"""The active model, as each process serves it.

Which version is active is read from the database on every call (one indexed query), so after
an activation or a rollback every worker serves the new version on its next request. The loaded
model itself is cached per process under (version id, sha256): a key that changes whenever the
active model does, so a stale entry can never be served.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass

from django.db import connection

from . import services
from .ml.artifact import ArtifactError, ModelBundle
from .models import ModelVersion

# Two entries: the active model and the one before it, so a rollback does not reload.
_KEEP = 2
_cache: dict[tuple[int, str], ModelBundle] = {}
# After a failed load the artifact is not fetched again for this long: under load, every request
# would otherwise download and hash it anew only to fail the same way. Then it is tried again,
# so a restored file (or a storage back from an outage) is served without a restart.
RETRY_FAILED_LOAD_SECONDS = 30.0
_failed: dict[tuple[int, str], tuple[float, ArtifactError]] = {}
_lock = threading.Lock()


class NoActiveModel(Exception):
    pass


@dataclass(frozen=True)
class ActiveModel:
    id: int
    version: int
    threshold: float
    bundle: ModelBundle


@functools.cache
def _active_sql() -> str:
    meta = ModelVersion._meta
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(meta.get_field(name).column) for name in ("id", "version", "threshold", "sha256", "artifact")
    )
    return f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {quote(meta.get_field('status').column)} = %s"


def _active_row() -> tuple | None:
    """(id, version, threshold, sha256, artifact) of the active version.

    Plain SQL, built once, because it runs on every request and the ORM would build the query
    anew each time. The partial unique index on status = 'active' serves it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_active_sql(), [ModelVersion.Status.ACTIVE.value])
        return cursor.fetchone()


def active_model() -> ActiveModel:
    """The active version and its loaded model. Raises NoActiveModel if none is active, and
    ArtifactError if its artifact fails its checksum or does not load."""
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
    return ActiveModel(id=pk, version=version, threshold=threshold, bundle=bundle)


def _load(key: tuple[int, str], name: str) -> ModelBundle:
    """Load into the cache (the caller holds _lock). An artifact that fails verification is
    recorded as an integrity event; a storage outage is not, as nothing says the file is bad."""
    failed = _failed.get(key)
    if failed is not None and time.monotonic() - failed[0] < RETRY_FAILED_LOAD_SECONDS:
        error = failed[1]
        raise type(error)(str(error))
    try:
        bundle = services.load_checked(
            version_id=key[0], name=name, sha256=key[1], actor="serving", when=" when loaded"
        )
    except ArtifactError as exc:
        _failed[key] = (time.monotonic(), exc)
        raise
    _failed.pop(key, None)
    # Laid out for the tree walk now, while loading, rather than in the first request; only
    # the serving cache needs it, not the loads that only verify an artifact.
    bundle.walker  # noqa: B018
    while len(_cache) >= _KEEP:
        _cache.pop(next(iter(_cache)))
    _cache[key] = bundle
    return bundle


def clear() -> None:
    with _lock:
        _cache.clear()
        _failed.clear()
