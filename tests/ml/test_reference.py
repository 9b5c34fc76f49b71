"""The training reference and PSI: known distributions give known figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelops.ml import reference
from modelops.ml.schema import FEATURES


def test_quantile_bins_hold_a_tenth_of_the_training_rows_each():
    values = np.random.default_rng(1).normal(size=100_000)
    edges = reference.edges_of(values)
    assert len(edges) == 9
    shares = reference.shares(reference.counts_in(values, edges))
    assert shares == pytest.approx([0.1] * 10, abs=1e-3)


def test_a_mass_at_one_value_merges_its_bins():
    values = np.concatenate([np.zeros(8_000), np.arange(1, 2_001, dtype=float)])
    edges = reference.edges_of(values)
    assert edges[0] == 0.0 and len(edges) < 9
    assert reference.shares(reference.counts_in(values, edges))[0] == pytest.approx(0.8)


def test_the_same_distribution_has_a_psi_near_zero_and_a_shift_a_known_one():
    rng = np.random.default_rng(2)
    train = rng.normal(size=200_000)
    edges = reference.edges_of(train)
    expected = reference.shares(reference.counts_in(train, edges))
    same = reference.psi(expected, reference.counts_in(rng.normal(size=50_000), edges))
    assert same < 0.002
    # Two bins: half and half in training, 0.9 / 0.1 live.
    assert reference.psi([0.5, 0.5], [900, 100]) == pytest.approx(0.4 * math.log(1.8) - 0.4 * math.log(0.2))
    shifted = reference.psi(expected, reference.counts_in(rng.normal(loc=1.0, size=50_000), edges))
    assert shifted > 0.5  # a shift of one standard deviation is far past the usual 0.2 alert


def test_an_empty_bin_is_floored_not_infinite():
    assert math.isfinite(reference.psi([0.5, 0.5], [10, 0]))
    assert reference.psi([0.5, 0.5], [0, 0]) is None


def test_the_reference_covers_every_feature_and_the_hold_out_scores():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(5_000, len(FEATURES)))
    scores = rng.uniform(size=1_000)
    built = reference.build(features, scores, threshold=0.9)
    assert list(built["features"]) == list(FEATURES)
    assert all(sum(f["shares"]) == pytest.approx(1.0) for f in built["features"].values())
    assert built["alert_rate"] == pytest.approx((scores >= 0.9).mean())
    assert len(built["score"]["shares"]) == len(built["score"]["edges"]) + 1


def test_a_malformed_reference_from_an_artifact_is_dropped():
    rng = np.random.default_rng(4)
    good = reference.build(rng.normal(size=(500, len(FEATURES))), rng.uniform(size=100), threshold=0.5)
    assert reference.checked(good) is good
    bad_edges = {**good, "score": {"edges": [0.5, 0.1], "shares": [0.2, 0.3, 0.5]}}
    too_long = {**good, "score": {"edges": list(range(50)), "shares": [0.0] * 51}}
    for bad in (None, [], {**good, "features": {}}, bad_edges, too_long, {**good, "alert_rate": 3}):
        assert reference.checked(bad) == {}
