"""Stored transactions read in id order, a chunk at a time, with the primary's decision and the
label: raw SQL and orjson, as the ORM's work per row would cost more than scoring it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson
from django.db import connection
from django.db.models import Count, F, Max, Min

from modelops.ml.schema import FEATURES

from . import comparison
from .models import Prediction, Transaction

LABELS = {Transaction.Label.FRAUD.value: comparison.FRAUD, Transaction.Label.LEGITIMATE.value: comparison.LEGITIMATE}


def window_ids(since: datetime, until: datetime) -> dict:
    """The first and last id (None if none) and the count of the transactions stored in [since, until)."""
    # "id + 0": PostgreSQL would answer MIN(id) by walking the primary key from one end, filtering
    # on created_at (830 ms half way down a million rows); so it reads the created_at index (26 ms).
    return Transaction.objects.filter(created_at__gte=since, created_at__lt=until).aggregate(
        first=Min(F("id") + 0), last=Max(F("id") + 0), rows=Count("id")
    )


@dataclass
class Chunk:
    ids: np.ndarray
    values: np.ndarray  # (rows, len(FEATURES)) in model order
    days: list[str]  # UTC date of each row's storing
    label: np.ndarray  # comparison.FRAUD, LEGITIMATE or UNLABELLED
    stored_score: np.ndarray  # the primary's score, NaN if it has none
    stored_alert: np.ndarray
    settled: int  # how many leading rows were stored before ``settled_before``

    @property
    def amount(self) -> np.ndarray:
        return self.values[:, -1]

    def __len__(self) -> int:
        return len(self.ids)

    def head(self, rows: int) -> Chunk:
        return Chunk(
            self.ids[:rows],
            self.values[:rows],
            self.days[:rows],
            self.label[:rows],
            self.stored_score[:rows],
            self.stored_alert[:rows],
            min(self.settled, rows),
        )


def read_after(
    after: int,
    *,
    size: int,
    through: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    settled_before: datetime | None = None,
    scored_by: tuple[int, str] | None = None,
) -> Chunk:
    """Up to ``size`` transactions with ids above ``after`` (and at most ``through``), stored in
    [since, until) when given; with the primary's score, or that of ``scored_by`` (version id, role)."""
    where, params = ["t.id > %s"], [after]
    ops = connection.ops
    if through is not None:
        where.append("t.id <= %s")
        params.append(through)
    if since is not None:
        where.append("t.created_at >= %s")
        params.append(ops.adapt_datetimefield_value(since))
    if until is not None:
        where.append("t.created_at < %s")
        params.append(ops.adapt_datetimefield_value(until))
    settled = ops.adapt_datetimefield_value(settled_before) if settled_before else None
    sql = _select_sql(scored_by is not None).format(where=" AND ".join(where))
    with connection.cursor() as cursor:
        cursor.execute(sql, [settled, *(scored_by or ()), *params, size])
        rows = cursor.fetchall()
    count = len(rows)
    values = np.empty((count, len(FEATURES)), dtype=np.float64)
    ids = np.empty(count, dtype=np.int64)
    label = np.full(count, comparison.UNLABELLED, dtype=np.int8)
    stored_score = np.full(count, np.nan)
    stored_alert = np.zeros(count, dtype=bool)
    days, first_unsettled = [], count
    for i, (pk, day, time, v, amount, text, score, alert, is_settled) in enumerate(rows):
        ids[i] = pk
        values[i, 0], values[i, 1:-1], values[i, -1] = time, orjson.loads(v) if isinstance(v, str) else v, amount
        days.append(day)
        if text is not None:
            label[i] = LABELS[text]
        if score is not None:
            stored_score[i], stored_alert[i] = score, bool(alert)
        if settled is not None and not is_settled and first_unsettled == count:
            first_unsettled = i
    return Chunk(ids, values, days, label, stored_score, stored_alert, first_unsettled)


@functools.cache
def _select_sql(scored_by: bool) -> str:
    quote = connection.ops.quote_name
    transactions, predictions = quote(Transaction._meta.db_table), quote(Prediction._meta.db_table)
    primary = Prediction.Role.PRIMARY.value
    scorer = "p.model_version_id = %s AND p.role = %s" if scored_by else f"p.role = '{primary}'"
    return (
        f"SELECT t.id, {_day_sql()}, t.time, t.v, t.amount, t.label, p.score, p.is_fraud, "
        f"COALESCE(t.created_at < %s, TRUE) FROM {transactions} t "
        f"LEFT JOIN {predictions} p ON p.transaction_id = t.id AND {scorer} "
        "WHERE {where} ORDER BY t.id LIMIT %s"
    )


def read_pairs(
    version_id: int, *, after: int, size: int, through: int | None = None, labelled_only: bool = False
) -> tuple[int, dict]:
    """A version's shadow scores beside the primary's on the same transactions, up to ``size`` from
    id ``after``: the last id read (``after`` if none) and Comparison.add's arguments."""
    where, params = ["t.id > %s"], [version_id, after]
    if through is not None:
        where.append("t.id <= %s")
        params.append(through)
    if labelled_only:
        where.append("t.label IS NOT NULL")
    with connection.cursor() as cursor:
        cursor.execute(_pairs_sql().format(where=" AND ".join(where)), [*params, size])
        rows = cursor.fetchall()
    if not rows:
        return after, {}
    ids, days, amount, text, stored_score, stored_alert, score, alert = zip(*rows, strict=True)
    return ids[-1], {
        "days": list(days),
        "amount": np.array(amount, dtype=np.float64),
        "label": np.array([LABELS.get(t, comparison.UNLABELLED) for t in text], dtype=np.int8),
        "stored_score": np.array(stored_score, dtype=np.float64),
        "stored_alert": np.array(stored_alert, dtype=bool),
        "score": np.array(score, dtype=np.float64),
        "alert": np.array(alert, dtype=bool),
    }


@functools.cache
def _pairs_sql() -> str:
    quote = connection.ops.quote_name
    transactions, predictions = quote(Transaction._meta.db_table), quote(Prediction._meta.db_table)
    primary, shadow = Prediction.Role.PRIMARY.value, Prediction.Role.SHADOW.value
    return (
        f"SELECT t.id, {_day_sql()}, t.amount, t.label, p.score, p.is_fraud, s.score, s.is_fraud "
        f"FROM {transactions} t JOIN {predictions} s ON s.transaction_id = t.id "
        f"AND s.model_version_id = %s AND s.role = '{shadow}' "
        f"JOIN {predictions} p ON p.transaction_id = t.id AND p.role = '{primary}' "
        "WHERE {where} ORDER BY t.id LIMIT %s"
    )


def _day_sql() -> str:
    if connection.vendor == "postgresql":
        return "to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return "substr(t.created_at, 1, 10)"  # stored in UTC as text
