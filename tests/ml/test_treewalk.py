from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from modelops.ml import artifact, treewalk
from modelops.ml.schema import FEATURES

from .signed import KEY


def xgboost_contributions(bundle, rows):
    matrix = xgb.DMatrix(bundle.prepare(rows), nthread=1)
    return bundle.booster.predict(matrix, pred_contribs=True, approx_contribs=True)


def test_the_walk_gives_xgboosts_own_contributions(trained, training_frame):
    rows = training_frame[list(FEATURES)].to_numpy()[:500]
    table = treewalk.TreeTable(trained.bundle.booster)
    walked = table.contributions(trained.bundle.prepare(rows))
    assert walked == pytest.approx(xgboost_contributions(trained.bundle, rows), abs=1e-5)


def test_each_row_walked_alone_gives_xgboosts_contributions(trained, training_frame):
    # One row takes a path of its own through the walk (no per-row offsets).
    rows = training_frame[list(FEATURES)].to_numpy()[:100]
    table = treewalk.TreeTable(trained.bundle.booster)
    walked = np.vstack([table.contributions(trained.bundle.prepare(row[None, :])) for row in rows])
    assert walked == pytest.approx(xgboost_contributions(trained.bundle, rows), abs=1e-5)


def test_one_row_scores_as_the_booster_predicts_it(trained, training_frame):
    frauds = training_frame[training_frame.Class == 1][list(FEATURES)].to_numpy()[:5]
    for row in frauds:
        probability, explained = trained.bundle.score(row[None, :])
        assert probability[0] == pytest.approx(trained.bundle.predict_proba(row[None, :])[0], abs=1e-6)
        expected = xgboost_contributions(trained.bundle, row[None, :])[0]
        for item in explained[0]:
            assert item["contribution"] == pytest.approx(expected[FEATURES.index(item["feature"])], abs=1e-5)


def test_a_booster_the_walk_does_not_reproduce_is_scored_by_xgboost(training_frame):
    x = training_frame[list(FEATURES)].to_numpy()[:2_000]
    booster = xgb.train(
        {"objective": "reg:logistic", "max_depth": 3}, xgb.DMatrix(x, label=training_frame.Class[:2_000]), 5
    )
    with pytest.raises(treewalk.UnsupportedModel, match="objective"):
        treewalk.TreeTable(booster)
    bundle = artifact.ModelBundle(
        booster=booster, scaling={n: {"center": 0.0, "scale": 1.0} for n in ("Time", "Amount")}, threshold=0.5
    )
    assert bundle.walker is None
    probability, explained = bundle.score(x[:1])
    assert probability[0] == pytest.approx(float(booster.inplace_predict(bundle.prepare(x[:1]))[0]), abs=1e-6)
    assert len(explained[0]) == artifact.TOP_CONTRIBUTIONS


def test_rows_with_missing_values_go_to_xgboost(trained, training_frame):
    rows = training_frame[list(FEATURES)].to_numpy()[:1].copy()
    rows[0, 3] = np.nan
    probability, _ = trained.bundle.score(rows)
    assert probability[0] == pytest.approx(trained.bundle.predict_proba(rows)[0], abs=1e-6)


def test_a_walk_that_disagrees_with_the_booster_is_not_used(trained, training_frame, monkeypatch):
    monkeypatch.setattr(treewalk.TreeTable, "contributions", lambda self, prepared: np.zeros((len(prepared), 31)))
    bundle = artifact.loads(artifact.dumps(trained.bundle, key=KEY), sha256=None, keys=[KEY])
    assert bundle.walker is None
    rows = training_frame[list(FEATURES)].to_numpy()[:1]
    probability, _ = bundle.score(rows)
    assert probability[0] == pytest.approx(trained.bundle.predict_proba(rows)[0], abs=1e-6)
