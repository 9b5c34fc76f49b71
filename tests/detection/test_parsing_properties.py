"""Property tests of POST /detect-fraud: whatever JSON a client sends, the answer is a 2xx or a
4xx, never a 500, and a refused request stores nothing.

All examples of one test share the test's database transaction, so each example compares the
row counts just before and just after its own request instead of relying on a clean database.
"""

from __future__ import annotations

import itertools
import json
import math
import string

from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from detection.models import Prediction, Transaction
from modelops.ml.schema import BOUNDS, FEATURES

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the work tree; a failure prints its example
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text as clients send it, NUL and lone surrogates included (both once crashed the endpoint; see
# the regression tests at the end of this file).
text = st.text(max_size=20) | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
numeric_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.sampled_from(["nan", "-inf", "Infinity", "1e999", " 1.5 ", "1_0", "0x10", "", " ", "--1", "1e-999"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),  # past 64 bits and past float range
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 1e9, 1e9 + 1, 1e4 + 1e-9]),
    text,
    numeric_text,
)
keys = st.one_of(st.sampled_from([*FEATURES, "external_id"]), text)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=12,
)


def feature_value(name: str) -> st.SearchStrategy:
    """A valid value of one feature: a number within its bounds, or a string holding one."""
    low, high = BOUNDS[name]
    number = st.floats(min_value=low, max_value=high, allow_nan=False) | st.integers(int(low), int(high))
    return number | number.map(repr) | number.map(lambda x: f" {x} ")


external_ids = st.text(string.ascii_letters + string.digits + "-_.:", min_size=1, max_size=100)
SERIAL = itertools.count()
valid_transactions = st.fixed_dictionaries(
    {name: feature_value(name) for name in FEATURES}, optional={"external_id": external_ids}
)


@st.composite
def near_valid_transactions(draw) -> dict:
    """A valid transaction with one field removed or replaced by any JSON value."""
    item = draw(valid_transactions)
    field = draw(st.sampled_from([*FEATURES, "external_id"]))
    if draw(st.booleans()):
        item.pop(field, None)
    else:
        item[field] = draw(json_values)
    return item


@st.composite
def near_valid_batches(draw) -> list:
    items = draw(st.lists(valid_transactions, min_size=1, max_size=4))
    index = draw(st.integers(0, len(items) - 1))
    items[index] = draw(near_valid_transactions())
    return items


def encode(value: object, *, as_json_string: bool = False) -> str:
    """The body as a client would send it: JSON (NaN and Infinity as the literals Python writes),
    optionally wrapped in a JSON string as the original app's test client did."""
    body = json.dumps(value, allow_nan=True)
    return json.dumps(body) if as_json_string else body


def counts() -> tuple[int, int]:
    return Transaction.objects.count(), Prediction.objects.count()


def post_and_check(client, body: str, items: int | None) -> int:
    """Post ``body``; the answer must be 2xx or 4xx, and only a 2xx may store anything (at most
    one transaction and one prediction per item)."""
    before = counts()
    response = client.post("/detect-fraud", data=body, content_type="application/json")
    after = counts()
    status = response.status_code
    event(f"HTTP {status}")  # shown by --hypothesis-show-statistics
    assert 200 <= status < 300 or 400 <= status < 500, f"{status} for {body[:500]!r}: {response.content[:500]!r}"
    assert response.json()  # an answer in JSON, also for refusals
    if status >= 400:
        assert after == before, f"{status} stored rows: {before} -> {after} for {body[:500]!r}"
        assert set(response.json()) == {"error"}
    else:
        added = after[0] - before[0]
        assert added == after[1] - before[1]
        assert 0 <= added <= (items or 1)
    return status


@PROPERTY_SETTINGS
@given(value=json_values, as_json_string=st.booleans())
def test_any_json_value_gets_2xx_or_4xx_and_a_4xx_stores_nothing(client, active_version, value, as_json_string):
    post_and_check(client, encode(value, as_json_string=as_json_string), len(value) if isinstance(value, list) else 1)


@PROPERTY_SETTINGS
@given(item=near_valid_transactions(), as_json_string=st.booleans())
def test_a_transaction_with_one_bad_field_gets_2xx_or_4xx(client, active_version, item, as_json_string):
    post_and_check(client, encode(item, as_json_string=as_json_string), 1)


@PROPERTY_SETTINGS
@given(items=near_valid_batches())
def test_a_batch_with_one_bad_item_gets_2xx_or_4xx(client, active_version, items):
    post_and_check(client, encode(items), len(items))


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(items=st.lists(valid_transactions, min_size=1, max_size=5), as_list=st.booleans())
def test_valid_transactions_are_always_scored(client, active_version, items, as_list):
    # Examples share one database, and one id sent again with other features is a 409 conflict:
    # a serial number per item keeps every id fresh.
    for item in items:
        if "external_id" in item:
            item["external_id"] = f"{next(SERIAL)}-{item['external_id'][:80]}"
    body = items if as_list else items[0]
    status = post_and_check(client, encode(body), len(items) if as_list else 1)
    assert status == 200


# --- Regression tests for bugs these properties found: each once answered 500.

ROW = {name: 1.0 for name in FEATURES}


def status_of(body: str) -> int:
    # A client that reports a crash as its 500 response instead of raising it in the test.
    response = Client(raise_request_exception=False).post("/detect-fraud", data=body, content_type="application/json")
    return response.status_code


def test_a_nul_in_external_id_is_refused_not_stored(active_version):
    # PostgreSQL cannot store NUL in text: the insert used to fail with 500 there.
    before = counts()
    assert status_of(json.dumps({**ROW, "external_id": "card\x00001"})) == 400
    assert counts() == before


def test_a_lone_surrogate_in_external_id_is_refused(active_version):
    # json.dumps writes the lone surrogate as the escape \ud800, which is valid JSON that the
    # standard parser reads; storing it used to fail with 500.
    assert status_of(json.dumps({**ROW, "external_id": "card-\ud800"})) == 400


def test_deeply_nested_json_is_refused(active_version):
    # orjson refuses depth > 1024; the standard parser it falls back on used to recurse: 500.
    assert status_of("[" * 50_000 + "]" * 50_000) == 400
