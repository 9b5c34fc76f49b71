"""Bulk insert of scored transactions in a few statements, whatever the batch size.

The ORM's bulk_create prepares every field of every row in Python, which for a 10,000-row batch
costs three times the scoring itself. Here each row is one tuple of already-prepared values and
the statements are multi-row INSERTs; transactions come back with their ids (RETURNING, which
both SQLite >= 3.35 and PostgreSQL support). Table and column names come from the models, so a
renamed field cannot silently diverge.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

import orjson
from django.db import connection

from .models import Prediction, Transaction

TRANSACTION_FIELDS = ("external_id", "time", "amount", "v", "source", "created_at")
PREDICTION_FIELDS = ("transaction", "model_version", "score", "threshold", "is_fraud", "contributions", "created_at")


def _max_params() -> int:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 65_535  # PostgreSQL's protocol limit on bind parameters


def _insert(model, fields: Sequence[str], rows: list[tuple], *, returning: bool) -> list[int]:
    meta = model._meta
    table = connection.ops.quote_name(meta.db_table)
    columns = ", ".join(connection.ops.quote_name(meta.get_field(f).column) for f in fields)
    pk = connection.ops.quote_name(meta.pk.column)
    per_statement = max(1, _max_params() // len(fields))
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholder] * len(chunk))}"
            if returning:
                sql += f" RETURNING {pk}"
            cursor.execute(sql, [value for row in chunk for value in row])
            if returning:
                ids.extend(row[0] for row in cursor.fetchall())
    return ids


def insert_scored(
    *,
    values,
    external_ids: list[str | None],
    source: str,
    version_id: int,
    threshold: float,
    scores,
    contributions: list[list[dict]],
    now: datetime,
) -> list[int]:
    """Insert transactions and their predictions; return the transactions' ids in input order.
    Call inside transaction.atomic(): the rows are meant to land all together or not at all."""
    stamp = connection.ops.adapt_datetimefield_value(now)
    transaction_rows = [
        (external_id, float(row[0]), float(row[-1]), orjson.dumps(row[1:-1].tolist()).decode(), source, stamp)
        for row, external_id in zip(values, external_ids, strict=True)
    ]
    # Neither database promises RETURNING rows in VALUES order, but both assign the ids of one
    # statement in that order (and of later statements after), so sorting restores it.
    ids = sorted(_insert(Transaction, TRANSACTION_FIELDS, transaction_rows, returning=True))
    prediction_rows = [
        (pk, version_id, float(score), threshold, bool(score >= threshold), orjson.dumps(explanation).decode(), stamp)
        for pk, score, explanation in zip(ids, scores, contributions, strict=True)
    ]
    _insert(Prediction, PREDICTION_FIELDS, prediction_rows, returning=False)
    return ids
