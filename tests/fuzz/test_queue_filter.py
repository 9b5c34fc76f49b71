"""/review/ with any query string: a 400 naming a bad filter, or a page that is exactly the
next rows of the queue that a plain reading of the filters selects; never a 500."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone
from hypothesis import strategies as st

from detection.models import Prediction, Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from fuzz.harness import Budget
from fuzz.mutations import NUMBERS, TEXTS
from modelops.ml.schema import FEATURES, LABEL

pytestmark = pytest.mark.fuzz
BUDGET = Budget(constant=3.0, per_byte=1e-3)
FIELDS = ("state", "flagged", "version", "since", "until", "amount_min", "amount_max", "per_page", "after")


@pytest.fixture
def queue(active_version, training_frame) -> None:
    """80 scored transactions, a quarter of them labelled, some dated yesterday."""
    rows = pd.concat([training_frame.sort_values(LABEL).tail(40), training_frame.head(40)])
    values = rows[list(FEATURES)].to_numpy(dtype=np.float64)
    results = score_transactions(batch=Batch(values=values, external_ids=[None] * len(values)), source="api", client="")
    ids = [result.transaction_id for result in results]
    Transaction.objects.filter(pk__in=ids[::8]).update(label="fraud")
    Transaction.objects.filter(pk__in=ids[1::8]).update(label="legitimate")
    yesterday = timezone.now() - timedelta(days=1)
    Transaction.objects.filter(pk__in=ids[2::3]).update(created_at=yesterday)
    Prediction.objects.filter(transaction_id__in=ids[2::3]).update(created_at=yesterday)


def _cursor(rows: list[Prediction]) -> st.SearchStrategy:
    known = [f"{int(p.is_fraud)}:{p.score!r}:{p.pk}" for p in rows]
    return st.one_of(st.sampled_from(known), st.text(max_size=40), st.sampled_from(TEXTS))


def _value(name: str, amounts: list[str]) -> st.SearchStrategy:
    """Values for a filter: valid ones, the stored amounts (where a bound's edge is), and junk."""
    today = timezone.localdate()
    values = {
        "state": st.sampled_from(["unreviewed", "fraud", "legitimate", "all", "", "x"]),
        "flagged": st.sampled_from(["yes", "all", "", "no"]),
        "version": st.sampled_from(["1", "2", "0", "-1", "99999999999999999999"]),
        "since": st.sampled_from([str(today), str(today - timedelta(days=1)), "0001-01-01", "9999-12-31", "x"]),
        "until": st.sampled_from(
            [str(today), str(today - timedelta(days=1)), "0001-01-01", "9999-12-31", "2026-02-30"]
        ),
        "amount_min": st.sampled_from(["0", "10", "1e308", "nan", "-1", *amounts]),
        "amount_max": st.sampled_from(["0", "1e4", "inf", "1e-300", *amounts]),
        "per_page": st.sampled_from(["25", "50", "100", "200", "7", ""]),
    }.get(name, st.nothing())
    return st.one_of(values, st.sampled_from([str(n) for n in NUMBERS]), st.sampled_from(TEXTS), st.text(max_size=20))


def _query(rows: list[Prediction]) -> st.SearchStrategy:
    amounts = [repr(p.transaction.amount) for p in rows]
    pairs = st.lists(
        st.sampled_from(FIELDS).flatmap(
            lambda name: st.tuples(st.just(name), _cursor(rows) if name == "after" else _value(name, amounts))
        ),
        max_size=6,
    )
    return pairs.map(lambda items: urlencode(items, encoding="utf-8", errors="surrogatepass"))


def _selected(data: dict) -> list[int]:
    """The predictions the filters select, in queue order, read plainly from every row."""
    rows = Prediction.objects.select_related("transaction", "model_version").order_by("-is_fraud", "-score", "-id")
    chosen = []
    for p in rows:
        t = p.transaction
        if data["flagged"] == "yes" and not p.is_fraud:
            continue
        if data["state"] == "unreviewed" and t.label is not None:
            continue
        if data["state"] in ("fraud", "legitimate") and t.label != data["state"]:
            continue
        if data.get("version") and p.model_version.version != data["version"]:
            continue
        day = timezone.localtime(p.created_at).date()
        if (data.get("since") and day < data["since"]) or (data.get("until") and day > data["until"]):
            continue
        low, high = data.get("amount_min"), data.get("amount_max")
        if (low is not None and t.amount < low) or (high is not None and t.amount > high):
            continue
        chosen.append(p)
    return chosen


def test_any_query_is_refused_or_gives_the_next_rows_the_filters_select(analyst_client, queue, fuzz):
    rows = list(Prediction.objects.select_related("transaction").order_by("-is_fraud", "-score", "-id"))

    def check(query: str) -> None:
        response = analyst_client.get(f"/review/?{query}")
        assert response.status_code in (200, 400), f"{response.status_code} for {query!r}"
        form = response.context["form"]
        if response.status_code == 400:
            assert form.errors, query
            return
        data = form.cleaned_data
        selected = _selected(data)
        if data.get("after"):
            flag, score, pk = data["after"].split(":")
            key = (flag == "1", float(score), int(pk))
            selected = [p for p in selected if (p.is_fraud, p.score, p.pk) < key]
        page = [p.pk for p in response.context["page"]]
        assert page == [p.pk for p in selected[: data["per_page"]]], query
        assert (response.context["next_query"] is not None) == (len(selected) > data["per_page"]), query

    fuzz(check, _query(rows), BUDGET)
