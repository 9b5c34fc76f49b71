"""Storing scored transactions and their predictions, in one transaction and a few statements
whatever the batch size.

The ORM's bulk_create prepares every field of every row in Python, which for a 10,000-row batch
cost more than scoring it. Here each row is one tuple of already-prepared values:
- SQLite: multi-row INSERTs, the transactions' ids coming back by RETURNING (SQLite >= 3.35),
  run on the driver's own cursor in the writers' queue (common.sqlite.write_transaction);
- PostgreSQL: one statement for a single transaction and its prediction; for more, COPY,
  with the transactions' ids taken from their sequence first. Django binds
  parameters on the client with psycopg 3, and for the 60,000 values of a multi-row INSERT
  that made batches about three times slower (docs/BENCHMARKS.md); COPY streams the rows.
The predictions are stored only if the model version that made them is still the active one,
checked in the statement that stores them (VersionNotActive otherwise): scoring uses the
version its process last saw active (modelops.model_cache.serving_model) without reading it
on every request.
Table and column names come from the models, so a renamed field cannot silently diverge.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from datetime import datetime

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from common import sqlite
from modelops.models import ModelVersion

from .models import Prediction, Transaction

TRANSACTION_FIELDS = ("external_id", "client", "time", "amount", "v", "source", "created_at")
PREDICTION_FIELDS = ("transaction", "model_version", "score", "threshold", "is_fraud", "contributions", "created_at")


class VersionNotActive(Exception):
    """The model version that made the scores is no longer the active one (or no longer has the
    artifact or threshold it was loaded with): nothing was stored, score again with the active
    version."""


def store_scored(
    *,
    values,
    external_ids: list[str | None],
    client: str,
    source: str,
    version_id: int,
    sha256: str,
    threshold: float,
    scores,
    contributions: list[list[dict]],
    now: datetime,
) -> list[int]:
    """Store transactions and their predictions, made by the version with this id, artifact sha256
    and threshold, all in one transaction; return the transactions' ids in input order. Raises
    VersionNotActive, having stored nothing, if that version is not the active one."""
    db = connections[DEFAULT_DB_ALIAS]
    version = (version_id, sha256, threshold)
    stamp = db.ops.adapt_datetimefield_value(now)
    transactions = [
        (external_id, client, float(row[0]), float(row[-1]), orjson.dumps(row[1:-1].tolist()).decode(), source, stamp)
        for row, external_id in zip(values, external_ids, strict=True)
    ]

    def predictions(ids: list) -> list[tuple]:
        return [
            (pk, version_id, score, threshold, score >= threshold, orjson.dumps(explanation).decode(), stamp)
            for pk, score, explanation in zip(ids, scores.tolist(), contributions, strict=True)
        ]

    if db.vendor == "sqlite":
        with sqlite.write_transaction() as cursor:
            # SQLite does not promise RETURNING rows in VALUES order, but assigns the ids of one
            # statement in that order (and of later statements after), so sorting restores it.
            ids = sorted(_insert(cursor, Transaction, TRANSACTION_FIELDS, transactions, returning=True))
            _insert(cursor, Prediction, PREDICTION_FIELDS, predictions(ids), version=version)
        return ids
    with transaction.atomic(using=db.alias), db.cursor() as cursor:
        if not settings.SCORING_SYNCHRONOUS_COMMIT:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        if len(transactions) == 1:
            (prediction,) = predictions([None])
            cursor.execute(_one_scored_row_sql(), [*transactions[0], *prediction[1:], *version])
            stored = cursor.fetchone()
            if stored is None:
                raise VersionNotActive
            return [stored[0]]
        cursor.execute(f"SELECT {_version_active_sql('%s')}", version)
        if not cursor.fetchone()[0]:
            raise VersionNotActive
        ids = _reserve_ids(cursor, Transaction, len(transactions))
        numbered = [(pk, *row) for pk, row in zip(ids, transactions, strict=True)]
        # COPY goes to psycopg's own cursor: its errors are made Django's here, so that a
        # concurrent request's external id is an IntegrityError and a lost server a 503.
        with db.wrap_database_errors:
            _copy(cursor, Transaction, ("id", *TRANSACTION_FIELDS), numbered)
            _copy(cursor, Prediction, PREDICTION_FIELDS, predictions(ids))
        return ids


@functools.cache
def _table_and_columns(model, fields: tuple[str, ...]) -> tuple[str, str]:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    meta = model._meta
    return quote(meta.db_table), ", ".join(quote(meta.get_field(f).column) for f in fields)


@functools.cache
def _version_active_sql(placeholder: str) -> str:
    """The condition that the version with the id, sha256 and threshold of three more parameters
    is the active one.

    On SQLite it is read under the write lock, which no activation can change before COMMIT. On
    PostgreSQL, FOR KEY SHARE locks the version's row until COMMIT (its foreign key's check at
    COMMIT would take the same lock): an activation, which locks both versions' rows FOR UPDATE
    (modelops.services.versions.activate_version), either waits for this transaction or makes this
    statement wait for it and then find the version no longer active.
    """
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    meta = ModelVersion._meta
    status, pk, sha256, threshold = (quote(meta.get_field(f).column) for f in ("status", "id", "sha256", "threshold"))
    active = ModelVersion.Status.ACTIVE.value  # a constant, so that the partial index on it serves the query
    lock = " FOR KEY SHARE" if db.vendor == "postgresql" else ""
    return (
        f"EXISTS (SELECT 1 FROM {quote(meta.db_table)} WHERE {status} = '{active}' "
        f"AND {pk} = {placeholder} AND {sha256} = {placeholder} AND {threshold} = {placeholder}{lock})"
    )


@functools.lru_cache(maxsize=32)  # one per batch size seen: bounded, as a 10,000-row one is 230 KB
def _insert_sql(model, fields: tuple[str, ...], rows: int, *, returning: bool, if_active: bool) -> str:
    """SQLite: the INSERT of ``rows`` rows, built once per size (a single-row request reuses
    the same string every time); ``if_active``: only if the version of three more parameters is
    the active one."""
    table, columns = _table_and_columns(model, fields)
    placeholder = "(" + ", ".join(["?"] * len(fields)) + ")"
    values = f"VALUES {', '.join([placeholder] * rows)}"
    if if_active:
        values = f"SELECT * FROM ({values}) WHERE {_version_active_sql('?')}"
    sql = f"INSERT INTO {table} ({columns}) {values}"
    if returning:
        sql += f" RETURNING {connections[DEFAULT_DB_ALIAS].ops.quote_name(model._meta.pk.column)}"
    return sql


def _insert(
    cursor: sqlite3.Cursor,
    model,
    fields: tuple[str, ...],
    rows: list[tuple],
    *,
    returning: bool = False,
    version: tuple[int, str, float] | None = None,
) -> list[int]:
    """SQLite: multi-row INSERTs, as many rows per statement as its bound-parameter limit allows.
    With ``version`` (id, sha256, threshold), the rows are inserted only if it is the active
    version."""
    extra = list(version or ())
    limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(extra)
    per_statement = max(1, limit // len(fields))
    ids: list[int] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _insert_sql(model, fields, len(chunk), returning=returning, if_active=version is not None)
        cursor.execute(sql, [value for row in chunk for value in row] + extra)
        if returning:
            ids.extend(row[0] for row in cursor.fetchall())
        if version is not None and cursor.rowcount != len(chunk):
            raise VersionNotActive
    return ids


@functools.cache
def _one_scored_row_sql() -> str:
    """PostgreSQL: one transaction and its prediction in a single statement, one round trip to
    the server where reserving the id and two COPYs take five; single-transaction requests are
    most of the traffic. The prediction is inserted only if the version is active, and then the
    statement returns a row. The prediction's values are cast to their columns' types, as a value
    in a SELECT list is not typed by the column it goes to."""
    db = connections[DEFAULT_DB_ALIAS]
    transactions, transaction_columns = _table_and_columns(Transaction, TRANSACTION_FIELDS)
    predictions, prediction_columns = _table_and_columns(Prediction, PREDICTION_FIELDS)
    pk = db.ops.quote_name(Transaction._meta.pk.column)
    fields = [Prediction._meta.get_field(name) for name in PREDICTION_FIELDS[1:]]
    casts = ", ".join(f"%s::{field.db_type(db)}" for field in fields)
    returned = db.ops.quote_name(Prediction._meta.get_field("transaction").column)
    return (
        f"WITH stored AS (INSERT INTO {transactions} ({transaction_columns}) "
        f"VALUES ({', '.join(['%s'] * len(TRANSACTION_FIELDS))}) RETURNING {pk}) "
        f"INSERT INTO {predictions} ({prediction_columns}) SELECT {pk}, {casts} FROM stored "
        f"WHERE {_version_active_sql('%s')} RETURNING {returned}"
    )


def _reserve_ids(cursor, model, count: int) -> list[int]:
    """PostgreSQL: ``count`` ids from the table's sequence, in increasing order."""
    meta = model._meta
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [meta.db_table, meta.pk.column, count],
    )
    return [row[0] for row in cursor.fetchall()]


def _copy(cursor, model, fields: Sequence[str], rows: list[tuple]) -> None:
    """PostgreSQL: stream rows with COPY."""
    table, columns = _table_and_columns(model, fields)
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
