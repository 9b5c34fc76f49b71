"""Shadow versions scored on the stored traffic, off the request path: from each shadow's
watermark, in chunks, each chunk and its watermark committed together, each transaction once per
version (also enforced by a unique index), so a killed run resumes where it stopped."""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common import sqlite
from modelops import model_cache
from modelops.ml.artifact import ArtifactError
from modelops.models import Deployment

from . import stored_rows
from .models import Prediction, Transaction

log = logging.getLogger(__name__)


class _Overtaken(Exception):
    """Another run moved the watermark, or the shadow was stopped or promoted: this chunk is dropped."""


def score_shadows(*, max_seconds: float | None = None) -> dict[int, int]:
    """Catch every shadow up; how many transactions each version number scored. Bounded in time so
    that a scheduled run ends before the next one starts."""
    deadline = time.monotonic() + (max_seconds if max_seconds is not None else settings.SHADOW_MAX_SECONDS)
    done = {}
    for deployment in Deployment.objects.shadows().select_related("version").order_by("pk"):
        done[deployment.version.version] = catch_up(deployment.pk, deadline=deadline)
    return done


def catch_up(deployment_id: int, *, deadline: float, size: int | None = None) -> int:
    scored = 0
    while time.monotonic() < deadline:
        count = score_chunk(deployment_id, size=size or settings.SHADOW_CHUNK_ROWS)
        if not count:
            break
        scored += count
    return scored


def score_chunk(deployment_id: int, *, size: int) -> int:
    """Score the next settled transactions after the shadow's watermark; how many (0: caught up)."""
    deployment = Deployment.objects.shadows().select_related("version").filter(pk=deployment_id).first()
    if deployment is None:
        return 0
    version = deployment.version
    after = deployment.scored_through
    if after is None:
        after = _start_of(deployment)
    # Rows stored in the last moments may belong to a transaction not yet committed, with a lower id
    # than one already visible: only the settled prefix is scored.
    settle = timezone.now() - timedelta(seconds=settings.SHADOW_SETTLE_SECONDS)
    chunk = stored_rows.read_after(after, size=size, settled_before=settle)
    chunk = chunk.head(chunk.settled)
    if not len(chunk):
        if deployment.scored_through is None:
            Deployment.objects.filter(pk=deployment.pk, scored_through__isnull=True).update(scored_through=after)
        return 0
    try:
        bundle = model_cache.loaded(version_id=version.pk, sha256=version.sha256, name=version.artifact)
    except ArtifactError as exc:
        log.error("shadow v%s not scored: %s", version.version, exc)
        return 0
    scores = bundle.predict_proba(chunk.values)
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = [
        (
            int(pk),
            version.pk,
            Prediction.Role.SHADOW.value,
            score,
            version.threshold,
            score >= version.threshold,
            "[]",
            stamp,
        )
        for pk, score in zip(chunk.ids.tolist(), scores.tolist(), strict=True)
    ]
    try:
        with sqlite.write_queue(), transaction.atomic():
            moved = Deployment.objects.filter(
                pk=deployment.pk, role=Deployment.Role.SHADOW, scored_through=deployment.scored_through
            ).update(scored_through=int(chunk.ids[-1]))
            if not moved:
                raise _Overtaken
            with connection.cursor() as cursor:
                _insert(cursor, rows)
    except _Overtaken:
        return 0
    return len(rows)


def _start_of(deployment: Deployment) -> int:
    """The last transaction stored before the shadow was deployed: it scores what comes after."""
    before = Transaction.objects.filter(created_at__lt=deployment.since).order_by("-created_at", "-id")
    return before.values_list("pk", flat=True).first() or 0


def lag(deployment: Deployment) -> dict:
    """How far behind a shadow is: transactions stored after its watermark, and the oldest one's age."""
    after = deployment.scored_through if deployment.scored_through is not None else _start_of(deployment)
    waiting = Transaction.objects.filter(pk__gt=after)
    oldest = waiting.order_by("pk").values_list("created_at", flat=True).first()
    return {
        "waiting": waiting.order_by()[: settings.SHADOW_LAG_COUNT_UP_TO].count(),
        "up_to": settings.SHADOW_LAG_COUNT_UP_TO,
        "oldest_seconds": (timezone.now() - oldest).total_seconds() if oldest else 0.0,
        "scored_through": after,
    }


def _insert(cursor, rows: list[tuple]) -> None:
    """The chunk's predictions, any already stored skipped. executemany made a round trip per row
    on PostgreSQL and ran a statement per row on SQLite. PostgreSQL: one statement of the columns
    that vary as three arrays (a multi-row VALUES took longer to bind client-side than to run).
    SQLite: multi-row statements within the bound-parameter limit."""
    if connection.vendor == "postgresql":
        _, version, role, _, threshold, _, contributions, stamp = rows[0]
        ids, scores, alerts = ([row[i] for row in rows] for i in (0, 3, 5))
        cursor.execute(_unnest_sql(), [version, role, threshold, contributions, stamp, ids, scores, alerts])
        return
    per_statement = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(_FIELDS)
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        cursor.execute(_insert_sql(len(part)), [value for row in part for value in row])


_FIELDS = ("transaction", "model_version", "role", "score", "threshold", "is_fraud", "contributions", "created_at")


@functools.lru_cache(maxsize=8)  # SQLite: one per row count seen, a full statement and a chunk's last
def _insert_sql(rows: int) -> str:
    quote = connection.ops.quote_name
    meta = Prediction._meta
    columns = ", ".join(quote(meta.get_field(f).column) for f in _FIELDS)
    unique = ", ".join(quote(meta.get_field(f).column) for f in ("transaction", "model_version"))
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "
        f"{', '.join(['(' + ', '.join(['%s'] * len(_FIELDS)) + ')'] * rows)} "
        f"ON CONFLICT ({unique}) DO NOTHING"
    )


@functools.cache
def _unnest_sql() -> str:
    """PostgreSQL: the constant columns as parameters, the others unnested from arrays."""
    quote = connection.ops.quote_name
    meta = Prediction._meta
    columns = ", ".join(quote(meta.get_field(f).column) for f in _FIELDS)
    unique = ", ".join(quote(meta.get_field(f).column) for f in ("transaction", "model_version"))
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "
        "SELECT u.t, %s, %s, u.s, %s, u.f, %s::jsonb, %s "
        "FROM unnest(%s::bigint[], %s::double precision[], %s::boolean[]) AS u(t, s, f) "
        f"ON CONFLICT ({unique}) DO NOTHING"
    )
