"""The scoring API's body (detection.parsing.decode and parse), as bytes off the wire.

The property: InvalidInput with a body that renders as the 400 answer, or a batch of finite,
in-bounds values that are exactly the items' numbers, with ids the database can store.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import orjson

from detection.parsing import EXTERNAL_ID_MAX, InvalidInput, decode, parse
from modelops.ml.schema import BOUNDS, FEATURES

from .harness import Budget
from .mutations import mutate_json_or_bytes

# parse() reads SCORING_MAX_BATCH; outside pytest the project's settings give it.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fraudsite.settings")

BUDGET = Budget(constant=1.0, per_byte=20e-6)
MAX_LEN = 65_536
_LOW = np.array([BOUNDS[name][0] for name in FEATURES])
_HIGH = np.array([BOUNDS[name][1] for name in FEATURES])


def seeds() -> list[bytes]:
    row = {name: 0.5 for name in FEATURES}
    texts = {name: f" {index}.25 " for index, name in enumerate(FEATURES)}
    bodies = [
        row,
        [row, {**texts, "external_id": "card-1"}],
        {**row, "external_id": 12345},
        {**row, "Amount": "1e3"},
        [{**row, "V3": None}, {**row, "V4": True}],
    ]
    seeds = [json.dumps(body).encode() for body in bodies]
    seeds.append(json.dumps(json.dumps(row)).encode())  # as the original client double-encoded it
    seeds.append(json.dumps(row).replace("0.5", "NaN", 1).encode())
    return seeds


def mutate(data: bytes, rng: random.Random, max_size: int) -> bytes:
    return mutate_json_or_bytes(data, rng, max_size, json_share=0.6)


def _check_id(external_id: object) -> None:
    if external_id is None:
        return
    assert isinstance(external_id, str) and 0 < len(external_id) <= EXTERNAL_ID_MAX, repr(external_id)
    assert external_id == external_id.strip()
    assert all(" " <= ch != "\x7f" for ch in external_id), repr(external_id)
    external_id.encode("utf-8")  # no lone surrogate


def check(data: bytes) -> None:
    try:
        decoded = decode(data)
        batch, is_list = parse(decoded)
    except InvalidInput as exc:
        assert exc.detail["code"] == "invalid_input" and exc.detail["message"], exc.detail
        orjson.dumps({"error": exc.detail})  # the 400 answer renders (detection.renderers)
        return
    items = decoded if is_list else [decoded]
    assert is_list == isinstance(decoded, list)
    values = batch.values
    assert values.dtype == np.float64 and values.shape == (len(items), len(FEATURES)), values.shape
    assert np.isfinite(values).all() and ((values >= _LOW) & (values <= _HIGH)).all()
    expected = np.array([[float(item[name]) for name in FEATURES] for item in items], dtype=np.float64)
    assert np.array_equal(values, expected), "the fast path read other numbers than the items hold"
    assert len(batch.external_ids) == len(items)
    for external_id in batch.external_ids:
        _check_id(external_id)
