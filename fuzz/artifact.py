"""The model artifact loader (modelops.ml.artifact.loads), fed documents that are signed after
they were changed: what a holder of the signing key, or a bug in the trainer, could store. The
structural checks then stand alone between the document and XGBoost.

The property: ArtifactError, or a model that scores a few rows with probabilities in [0, 1].
Any other exception is a finding, and so is a crash of the process while XGBoost loads or
predicts (atheris records the input that caused it).
"""

from __future__ import annotations

import json
import random

import numpy as np
import xgboost as xgb

from modelops.ml import artifact, signing
from modelops.ml.schema import BOUNDS, FEATURES

from .harness import Budget
from .mutations import mutate_json_or_bytes

BUDGET = Budget(constant=2.0, per_byte=50e-6)
MAX_LEN = 32_768
KEY = signing.SigningKey(b"the fuzz targets' signing key, never a real one")
# Rows a model must score: zeros, the bounds, and a row between.
ROWS = np.array(
    [
        [0.0] * len(FEATURES),
        [BOUNDS[name][0] for name in FEATURES],
        [BOUNDS[name][1] for name in FEATURES],
        [(index % 7) - 3.0 for index in range(len(FEATURES))],
    ]
)


def _document(booster: xgb.Booster, **changes) -> dict:
    bundle = artifact.ModelBundle(
        booster=booster,
        scaling={"Time": {"center": 1.0, "scale": 2.0}, "Amount": {"center": 0.5, "scale": 3.0}},
        threshold=0.5,
        metadata={"trained_on": "fuzz seeds"},
    )
    document = json.loads(artifact.dumps(bundle, key=KEY))
    document.pop("signature")
    document.update(changes)
    return document


def seeds() -> list[bytes]:
    """Small models, unsigned (check() signs what it is given): a few trees of a few levels."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, len(FEATURES)))
    labels = (rows[:, 1] + rows[:, -1] > 1).astype(float)
    documents = []
    for depth, rounds in ((1, 1), (2, 2), (3, 3)):
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": depth, "nthread": 1},
            xgb.DMatrix(rows, label=labels),
            num_boost_round=rounds,
        )
        documents.append(_document(booster))
    return [json.dumps(document).encode() for document in documents]


def mutate(data: bytes, rng: random.Random, max_size: int) -> bytes:
    return mutate_json_or_bytes(data, rng, max_size, json_share=0.8)


def _signed(data: bytes) -> bytes:
    """``data`` signed with KEY if it is a JSON object (any signature it has replaced), else as it is."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict):
            return data
        document.pop("signature", None)
        document["signature"] = signing.sign(artifact._payload(document), KEY)
        return artifact._payload(document)
    except (ValueError, RecursionError):
        return data  # not JSON: the loader's own refusal is what is checked


def check(data: bytes) -> None:
    signed = _signed(data)
    try:
        bundle = artifact.loads(signed, sha256=artifact.sha256_hex(signed), keys=[KEY])
    except artifact.ArtifactError as exc:
        assert str(exc)
        return
    try:
        # A few rows go through the numpy tree walk, more through XGBoost's contributions.
        for count in (1, len(ROWS), artifact.WALK_MAX_ROWS + 1):
            probability, explanations = bundle.score(np.resize(ROWS, (count, len(FEATURES))))
            assert probability.shape == (count,) and len(explanations) == count
            assert ((probability >= 0) & (probability <= 1)).all(), probability
        # XGBoost's plain prediction, which evaluation uses.
        direct = bundle.predict_proba(ROWS)
        assert ((direct >= 0) & (direct <= 1)).all(), direct
    except artifact.ArtifactError:
        pass  # a model whose trees cannot be walked is refused while scoring: a 503, not a crash
