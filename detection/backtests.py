"""Backtests: a version scored on the stored transactions of a window, chunk by chunk, beside the
decisions stored for them; the scores kept for a CSV, the comparison for the page."""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common import sqlite
from modelops import model_cache
from modelops.models import ModelVersion

from . import stored_rows
from .comparison import Comparison
from .models import Backtest, BacktestScore, Prediction, Transaction

log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "transaction_id",
    "stored_model_version",
    "stored_is_fraud",
    "stored_probability",
    "backtest_probability",
    "backtest_is_fraud",
    "label",
)


class _Overtaken(Exception):
    """Another run of the same backtest committed this chunk first."""


def window(first: date, last: date) -> tuple[datetime, datetime]:
    """The instants from the start of ``first`` to the end of ``last``, both days included."""
    start = timezone.make_aware(datetime.combine(first, time.min))
    return start, timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min))


def create(*, version: ModelVersion, since: datetime, until: datetime, requested_by: str) -> Backtest:
    return Backtest.objects.create(
        version=version, since=since, until=until, threshold=version.threshold, requested_by=requested_by
    )


def run(backtest_id: int, *, progress: Callable[[Backtest], None] = lambda backtest: None) -> Backtest:
    """Score the window from where the last run stopped; a failure is recorded on the backtest."""
    backtest = Backtest.objects.select_related("version").get(pk=backtest_id)
    if backtest.status == Backtest.Status.DONE:
        return backtest
    try:
        _run(backtest, progress)
    except Exception as exc:
        log.exception("backtest %s failed", backtest.pk)
        Backtest.objects.filter(pk=backtest.pk).update(status=Backtest.Status.FAILED, error=str(exc)[:2000])
        raise
    backtest.refresh_from_db()
    return backtest


def _run(backtest: Backtest, progress: Callable[[Backtest], None]) -> None:
    if backtest.first_id is None:
        bounds = stored_rows.window_ids(backtest.since, backtest.until)
        backtest.first_id, backtest.last_id = bounds["first"] or 0, bounds["last"] or 0
        backtest.rows_total = bounds["rows"]
        backtest.done_through = backtest.first_id - 1 if bounds["first"] else 0
    backtest.status, backtest.error = Backtest.Status.RUNNING, ""
    backtest.save(update_fields=["first_id", "last_id", "rows_total", "done_through", "status", "error", "updated_at"])
    version = backtest.version
    bundle = model_cache.loaded(version_id=version.pk, sha256=version.sha256, name=version.artifact)
    comparison = Comparison(backtest.state)
    size = settings.BACKTEST_CHUNK_ROWS
    while backtest.done_through < backtest.last_id:
        chunk = stored_rows.read_after(
            backtest.done_through, size=size, through=backtest.last_id, since=backtest.since, until=backtest.until
        )
        if not len(chunk):
            break
        scores = bundle.predict_proba(chunk.values)
        decided = ~np.isnan(chunk.stored_score)
        comparison.add(
            days=[day for day, known in zip(chunk.days, decided, strict=True) if known],
            stored_score=chunk.stored_score[decided],
            stored_alert=chunk.stored_alert[decided],
            score=scores[decided],
            alert=scores[decided] >= backtest.threshold,
            label=chunk.label[decided],
            amount=chunk.amount[decided],
        )
        try:
            _commit_chunk(backtest, chunk.ids, scores, comparison)
        except _Overtaken:
            return  # the other run goes on from here
        progress(backtest)
    Backtest.objects.filter(pk=backtest.pk).update(
        status=Backtest.Status.DONE, figures=comparison.figures(), finished_at=timezone.now()
    )


def _commit_chunk(backtest: Backtest, ids: np.ndarray, scores: np.ndarray, comparison: Comparison) -> None:
    """The chunk's scores, the new watermark and the comparison so far, in one transaction."""
    last, done = int(ids[-1]), backtest.rows_done + len(ids)
    with sqlite.write_queue(), transaction.atomic():
        # First: a second run of this backtest waits here, then finds the watermark moved.
        moved = Backtest.objects.filter(pk=backtest.pk, done_through=backtest.done_through).update(
            done_through=last, rows_done=done, state=comparison.state(), updated_at=timezone.now()
        )
        if not moved:
            raise _Overtaken
        rows = list(zip([backtest.pk] * len(ids), ids.tolist(), scores.tolist(), strict=True))
        _insert_scores(rows)
    backtest.done_through, backtest.rows_done = last, done


def _insert_scores(rows: list[tuple]) -> None:
    quote = connection.ops.quote_name
    meta = BacktestScore._meta
    table = quote(meta.db_table)
    columns = ", ".join(quote(meta.get_field(f).column) for f in ("backtest", "transaction", "score"))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            # Multi-row INSERTs within the bound-parameter limit: executemany runs one statement per
            # row, and each statement also rewrites the AUTOINCREMENT counter in sqlite_sequence.
            per_statement = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 3
            for start in range(0, len(rows), per_statement):
                part = rows[start : start + per_statement]
                values = ", ".join(["(%s, %s, %s)"] * len(part))
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", [v for row in part for v in row])


def csv_lines(backtest: Backtest, *, chunk: int = 10_000) -> Iterator[str]:
    """The backtest's rows as CSV, read a chunk at a time by transaction id."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    yield out.getvalue()
    after = -1
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_csv_sql(), [backtest.pk, after, chunk])
            rows = cursor.fetchall()
        if not rows:
            return
        out.seek(0)
        out.truncate()
        for pk, stored_version, stored_alert, stored_score, score, label in rows:
            writer.writerow(
                [
                    pk,
                    stored_version if stored_version is not None else "",
                    "" if stored_alert is None else int(bool(stored_alert)),
                    "" if stored_score is None else f"{stored_score:.6f}",
                    f"{score:.6f}",
                    int(score >= backtest.threshold),
                    label or "",
                ]
            )
        yield out.getvalue()
        after = rows[-1][0]


def _csv_sql() -> str:
    quote = connection.ops.quote_name
    scores, transactions = quote(BacktestScore._meta.db_table), quote(Transaction._meta.db_table)
    predictions, versions = quote(Prediction._meta.db_table), quote(ModelVersion._meta.db_table)
    primary = Prediction.Role.PRIMARY.value
    return (
        f"SELECT b.transaction_id, v.version, p.is_fraud, p.score, b.score, t.label FROM {scores} b "
        f"JOIN {transactions} t ON t.id = b.transaction_id "
        f"LEFT JOIN {predictions} p ON p.transaction_id = b.transaction_id AND p.role = '{primary}' "
        f"LEFT JOIN {versions} v ON v.id = p.model_version_id "
        "WHERE b.backtest_id = %s AND b.transaction_id > %s ORDER BY b.transaction_id LIMIT %s"
    )
