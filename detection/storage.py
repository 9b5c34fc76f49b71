"""Bulk insert of scored transactions in a few statements, whatever the batch size.

The ORM's bulk_create prepares every field of every row in Python, which for a 10,000-row batch
cost more than scoring it. Here each row is one tuple of already-prepared values:
- SQLite: multi-row INSERTs, the transactions' ids coming back by RETURNING (SQLite >= 3.35);
- PostgreSQL: one statement for a single transaction and its prediction; for more, COPY,
  with the transactions' ids taken from their sequence first. Django binds
  parameters on the client with psycopg 3, and for the 60,000 values of a multi-row INSERT
  that made batches about three times slower (docs/BENCHMARKS.md); COPY streams the rows.
Table and column names come from the models, so a renamed field cannot silently diverge.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime

import orjson
from django.db import connection, transaction

from fraudsite import sqlite

from .models import Prediction, Transaction

TRANSACTION_FIELDS = ("external_id", "time", "amount", "v", "source", "created_at")
PREDICTION_FIELDS = ("transaction", "model_version", "score", "threshold", "is_fraud", "contributions", "created_at")


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """The transaction that stores scored rows; on a SQLite file it waits for its turn with the
    other workers' (fraudsite.sqlite.write_queue)."""
    with sqlite.write_queue(), transaction.atomic():
        yield


@functools.cache
def _table_and_columns(vendor: str, model, fields: tuple[str, ...]) -> tuple[str, str]:
    # ``vendor`` is only part of the cache key: quoting differs between databases.
    quote = connection.ops.quote_name
    meta = model._meta
    return quote(meta.db_table), ", ".join(quote(meta.get_field(f).column) for f in fields)


@functools.cache
def _insert_sql(model, fields: tuple[str, ...], rows: int, *, returning: bool) -> str:
    """SQLite: the INSERT of ``rows`` rows, built once per size (a single-row request reuses
    the same string every time)."""
    table, columns = _table_and_columns(connection.vendor, model, fields)
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholder] * rows)}"
    if returning:
        sql += f" RETURNING {connection.ops.quote_name(model._meta.pk.column)}"
    return sql


def _insert(cursor, model, fields: tuple[str, ...], rows: list[tuple], *, returning: bool) -> list[int]:
    """SQLite: multi-row INSERTs, as many rows per statement as its bound-parameter limit allows."""
    per_statement = max(1, connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(fields))
    ids: list[int] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        cursor.execute(
            _insert_sql(model, fields, len(chunk), returning=returning), [value for row in chunk for value in row]
        )
        if returning:
            ids.extend(row[0] for row in cursor.fetchall())
    return ids


@functools.cache
def _one_scored_row_sql() -> str:
    """PostgreSQL: one transaction and its prediction in a single statement, one round trip to
    the server where reserving the id and two COPYs take five; single-transaction requests are
    most of the traffic. The prediction's values are cast to their columns' types, as a value in
    a SELECT list is not typed by the column it goes to."""
    transactions, transaction_columns = _table_and_columns(connection.vendor, Transaction, TRANSACTION_FIELDS)
    predictions, prediction_columns = _table_and_columns(connection.vendor, Prediction, PREDICTION_FIELDS)
    pk = connection.ops.quote_name(Transaction._meta.pk.column)
    fields = [Prediction._meta.get_field(name) for name in PREDICTION_FIELDS[1:]]
    casts = ", ".join(f"%s::{field.db_type(connection)}" for field in fields)
    return (
        f"WITH stored AS (INSERT INTO {transactions} ({transaction_columns}) "
        f"VALUES ({', '.join(['%s'] * len(TRANSACTION_FIELDS))}) RETURNING {pk}) "
        f"INSERT INTO {predictions} ({prediction_columns}) SELECT {pk}, {casts} FROM stored "
        f"RETURNING {connection.ops.quote_name(Prediction._meta.get_field('transaction').column)}"
    )


def _reserve_ids(model, count: int) -> list[int]:
    """PostgreSQL: ``count`` ids from the table's sequence, in increasing order."""
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _copy(model, fields: Sequence[str], rows: list[tuple]) -> None:
    """PostgreSQL: stream rows with COPY."""
    table, columns = _table_and_columns(connection.vendor, model, fields)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


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
    if connection.vendor == "postgresql" and len(transaction_rows) == 1:
        (prediction,) = _prediction_rows([None], version_id, threshold, scores, contributions, stamp)
        with connection.cursor() as cursor:
            cursor.execute(_one_scored_row_sql(), [*transaction_rows[0], *prediction[1:]])
            return [cursor.fetchone()[0]]
    if connection.vendor == "postgresql":
        ids = _reserve_ids(Transaction, len(transaction_rows))
        _copy(
            Transaction,
            ("id", *TRANSACTION_FIELDS),
            [(pk, *row) for pk, row in zip(ids, transaction_rows, strict=True)],
        )
        _copy(Prediction, PREDICTION_FIELDS, _prediction_rows(ids, version_id, threshold, scores, contributions, stamp))
        return ids
    with connection.cursor() as cursor:
        # SQLite does not promise RETURNING rows in VALUES order, but assigns the ids of one
        # statement in that order (and of later statements after), so sorting restores it.
        ids = sorted(_insert(cursor, Transaction, TRANSACTION_FIELDS, transaction_rows, returning=True))
        rows = _prediction_rows(ids, version_id, threshold, scores, contributions, stamp)
        _insert(cursor, Prediction, PREDICTION_FIELDS, rows, returning=False)
    return ids


def _prediction_rows(ids, version_id, threshold, scores, contributions, stamp) -> list[tuple]:
    return [
        (pk, version_id, score, threshold, score >= threshold, orjson.dumps(explanation).decode(), stamp)
        for pk, score, explanation in zip(ids, scores.tolist(), contributions, strict=True)
    ]
