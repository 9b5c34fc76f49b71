"""Storing scored transactions and predictions in one transaction, from prepared tuples rather than
bulk_create: multi-row INSERTs on SQLite, COPY on PostgreSQL (client-side binding is slow there).
Predictions are stored only if their version is still primary, checked by the storing statement."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from datetime import datetime

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from common import sqlite
from modelops.models import Deployment, ModelVersion

from .models import Prediction, Transaction

TRANSACTION_FIELDS = ("external_id", "client", "time", "amount", "v", "source", "created_at")
PREDICTION_FIELDS = (
    "transaction",
    "model_version",
    "role",
    "score",
    "threshold",
    "is_fraud",
    "contributions",
    "created_at",
)


PRIMARY = Prediction.Role.PRIMARY.value


class VersionNotPrimary(Exception):
    """The scoring version is no longer primary (or its artifact or threshold changed): nothing stored."""


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
    """Store transactions and this version's predictions in one transaction; their ids in input order."""
    db = connections[DEFAULT_DB_ALIAS]
    version = (version_id, sha256, threshold)
    stamp = db.ops.adapt_datetimefield_value(now)
    transactions = [
        (external_id, client, float(row[0]), float(row[-1]), orjson.dumps(row[1:-1].tolist()).decode(), source, stamp)
        for row, external_id in zip(values, external_ids, strict=True)
    ]

    def predictions(ids: list) -> list[tuple]:
        return [
            (pk, version_id, PRIMARY, score, threshold, score >= threshold, orjson.dumps(explanation).decode(), stamp)
            for pk, score, explanation in zip(ids, scores.tolist(), contributions, strict=True)
        ]

    if db.vendor == "sqlite":
        with sqlite.write_transaction() as cursor:
            # SQLite does not promise RETURNING rows in VALUES order, but assigns the ids of one
            # statement in that order (and of later statements after), so sorting restores it.
            ids = sorted(_insert(cursor, Transaction, TRANSACTION_FIELDS, transactions, returning=True))
            _insert(cursor, Prediction, PREDICTION_FIELDS, predictions(ids), version=version)
        return ids
    if len(transactions) == 1 and settings.SCORING_SYNCHRONOUS_COMMIT and not db.in_atomic_block:
        # One statement stores both rows or neither: in autocommit it is its own transaction,
        # which saves the round trips of BEGIN and COMMIT.
        with db.cursor() as cursor:
            return [_store_one(cursor, transactions[0], predictions([None])[0], version)]
    with transaction.atomic(using=db.alias), db.cursor() as cursor:
        if not settings.SCORING_SYNCHRONOUS_COMMIT:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        if len(transactions) == 1:
            return [_store_one(cursor, transactions[0], predictions([None])[0], version)]
        cursor.execute(f"SELECT {_still_primary_sql('%s')}", version)
        if not cursor.fetchone()[0]:
            raise VersionNotPrimary
        ids = _reserve_ids(cursor, Transaction, len(transactions))
        numbered = [(pk, *row) for pk, row in zip(ids, transactions, strict=True)]
        # COPY runs on psycopg's own cursor: wrapped so its errors are Django's (IntegrityError, 503).
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
def _still_primary_sql(placeholder: str) -> str:
    """Whether the version of three more parameters (id, sha256, threshold) is primary. SQLite reads
    it under the write lock; on PostgreSQL, FOR KEY SHARE holds both rows until COMMIT, so that an
    activation (FOR UPDATE on the primary deployment and the version) and this statement serialize."""
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    deployments, versions = quote(Deployment._meta.db_table), quote(ModelVersion._meta.db_table)
    role, deployed = (quote(Deployment._meta.get_field(f).column) for f in ("role", "version"))
    pk, sha256, threshold = (quote(ModelVersion._meta.get_field(f).column) for f in ("id", "sha256", "threshold"))
    primary = Deployment.Role.PRIMARY.value
    lock = " FOR KEY SHARE" if db.vendor == "postgresql" else ""
    return (
        f"EXISTS (SELECT 1 FROM {deployments} d JOIN {versions} v ON v.{pk} = d.{deployed} "
        f"WHERE d.{role} = '{primary}' AND d.{deployed} = {placeholder} "
        f"AND v.{sha256} = {placeholder} AND v.{threshold} = {placeholder}{lock})"
    )


@functools.lru_cache(maxsize=32)  # one per batch size seen: bounded, as a large batch's is long
def _insert_sql(model, fields: tuple[str, ...], rows: int, *, returning: bool, if_primary: bool) -> str:
    """SQLite: the INSERT of ``rows`` rows, with ``if_primary`` only if the version is primary."""
    table, columns = _table_and_columns(model, fields)
    placeholder = "(" + ", ".join(["?"] * len(fields)) + ")"
    values = f"VALUES {', '.join([placeholder] * rows)}"
    if if_primary:
        values = f"SELECT * FROM ({values}) WHERE {_still_primary_sql('?')}"
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
    """SQLite: multi-row INSERTs within the bound-parameter limit; with ``version``, only if primary."""
    extra = list(version or ())
    limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(extra)
    per_statement = max(1, limit // len(fields))
    ids: list[int] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _insert_sql(model, fields, len(chunk), returning=returning, if_primary=version is not None)
        cursor.execute(sql, [value for row in chunk for value in row] + extra)
        if returning:
            ids.extend(row[0] for row in cursor.fetchall())
        if version is not None and cursor.rowcount != len(chunk):
            raise VersionNotPrimary
    return ids


def _store_one(cursor, stored_transaction: tuple, prediction: tuple, version: tuple) -> int:
    """PostgreSQL: one transaction and its prediction; its id. VersionNotPrimary, nothing stored,
    if the version is no longer primary."""
    cursor.execute(_one_scored_row_sql(), [*stored_transaction, *version, *prediction[1:]])
    stored = cursor.fetchone()
    if stored is None:
        raise VersionNotPrimary
    return stored[0]


@functools.cache
def _one_scored_row_sql() -> str:
    """PostgreSQL: one transaction and its prediction in one statement, both only if the version
    is primary; returns the id if they were stored. The casts are needed: a SELECT list is not
    typed by its target columns."""
    db = connections[DEFAULT_DB_ALIAS]
    transactions, transaction_columns = _table_and_columns(Transaction, TRANSACTION_FIELDS)
    predictions, prediction_columns = _table_and_columns(Prediction, PREDICTION_FIELDS)
    pk = db.ops.quote_name(Transaction._meta.pk.column)

    def casts(model, names):
        return ", ".join(f"%s::{model._meta.get_field(name).db_type(db)}" for name in names)

    returned = db.ops.quote_name(Prediction._meta.get_field("transaction").column)
    return (
        f"WITH stored AS (INSERT INTO {transactions} ({transaction_columns}) "
        f"SELECT {casts(Transaction, TRANSACTION_FIELDS)} WHERE {_still_primary_sql('%s')} RETURNING {pk}) "
        f"INSERT INTO {predictions} ({prediction_columns}) "
        f"SELECT {pk}, {casts(Prediction, PREDICTION_FIELDS[1:])} FROM stored RETURNING {returned}"
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
