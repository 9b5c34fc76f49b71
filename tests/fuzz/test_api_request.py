"""POST /detect-fraud with any body: a 2xx that stores at most a row per result, or a 4xx in
JSON that stores nothing; never a 500, and in time linear in the body's size."""

from __future__ import annotations

import json

import pytest
from hypothesis import strategies as st

from detection.models import Prediction, Transaction
from fuzz import api_body
from fuzz.harness import Budget
from modelops.ml.schema import FEATURES

from .strategies import mutated

pytestmark = pytest.mark.fuzz
BUDGET = Budget(constant=3.0, per_byte=50e-6)
ROW = {name: 1.5 for name in FEATURES}

bodies = st.one_of(
    mutated(api_body.seeds(), api_body.mutate, api_body.MAX_LEN),
    st.binary(max_size=256),
    # Batches up to some hundreds of rows, and nesting past the parsers' depth limits.
    st.integers(1, 400).map(lambda n: json.dumps([ROW] * n).encode()),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
)
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""])
requests = st.tuples(bodies, content_types, st.sampled_from(["", "?explain=1", "?explain=%ff"]))


def counts() -> tuple[int, int]:
    return Transaction.objects.count(), Prediction.objects.count()


def test_any_body_gets_a_2xx_or_a_4xx_and_a_4xx_stores_nothing(client, active_version, fuzz):
    def check(request: tuple[bytes, str, str]) -> None:
        body, content_type, query = request
        before = counts()
        response = client.post(f"/detect-fraud{query}", data=body, content_type=content_type)
        added = [a - b for a, b in zip(counts(), before, strict=True)]
        status = response.status_code
        assert 200 <= status < 300 or 400 <= status < 500, f"{status} for {body[:300]!r}"
        answer = response.json()
        if status >= 400:
            assert added == [0, 0], f"{status} stored {added} for {body[:300]!r}"
            assert set(answer) == {"error"} and answer["error"]["message"]
        else:
            results = answer if isinstance(answer, list) else [answer]
            assert added[0] == added[1] <= len(results)

    fuzz(check, requests, BUDGET, size=lambda request: len(request[0]))
