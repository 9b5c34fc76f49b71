from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import xgboost as xgb
from imblearn.over_sampling import SMOTE
from sklearn.metrics import log_loss

from modelops.ml import training
from modelops.ml.artifact import ModelBundle
from modelops.ml.evaluation import tune_threshold
from modelops.ml.schema import FEATURES, DataValidationError
from tests.conftest import SMALL_CONFIG


def test_the_holdout_is_the_newest_rows(training_frame):
    parts = training.split(training_frame, SMALL_CONFIG)
    assert parts.method == "time"
    assert parts.train["Time"].max() <= parts.validation["Time"].min()
    assert parts.validation["Time"].max() <= parts.holdout["Time"].min()
    assert len(parts.holdout) == 6_000


def test_smote_never_sees_holdout_rows_nor_validation_rows_before_the_choice(training_frame, monkeypatch):
    seen = []
    original = SMOTE.fit_resample

    def spy(self, x, y, **kwargs):
        seen.append(x.copy())
        return original(self, x, y, **kwargs)

    monkeypatch.setattr(SMOTE, "fit_resample", spy)
    config = replace(SMALL_CONFIG, strategies=("smote",))
    parts = training.split(training_frame, config)
    result = training.train(training_frame, config)

    prepare = result.bundle.prepare
    train, validation = (prepare(p[list(FEATURES)].to_numpy()) for p in (parts.train, parts.validation))
    # The fit whose trees and threshold are chosen on validation resamples the training rows
    # only; the refit, after every choice is made, resamples training + validation rows. Both
    # are exactly those rows, so no hold-out row is among them.
    assert [len(x) for x in seen] == [len(train), len(train) + len(validation)]
    np.testing.assert_array_equal(seen[0], train)
    np.testing.assert_array_equal(seen[1], np.concatenate([train, validation]))
    # Hold-out metrics count real rows only: no synthetic row reached the evaluation.
    assert result.metrics["rows"] == len(parts.holdout)
    assert result.metrics["frauds"] == int(parts.holdout["Class"].sum())


def test_the_deployed_model_is_refitted_on_training_and_validation_rows(trained, training_frame):
    parts = training.split(training_frame, SMALL_CONFIG)
    validated = trained.params["validated_trees"]
    grown = round(validated * (len(parts.train) + len(parts.validation)) / len(parts.train))
    assert trained.params["refit"] is True
    assert trained.bundle.booster.num_boosted_rounds() == trained.params["trees"] == grown > validated

    kept = training.train(training_frame, replace(SMALL_CONFIG, refit=False))
    assert "refit" not in kept.params
    assert kept.bundle.booster.num_boosted_rounds() == kept.params["trees"] == validated
    assert kept.bundle.threshold == trained.bundle.threshold, "the refit keeps the threshold tuned on validation"


def test_early_stopping_when_asked_keeps_the_trees_up_to_the_best_validation_round(trained, training_frame):
    assert trained.params["validated_trees"] == SMALL_CONFIG.n_estimators, "off by default: every tree is grown"
    parts = training.split(training_frame, SMALL_CONFIG)
    scaling = training.fit_scaling(parts.train)
    x_train, x_val = (
        ModelBundle(booster=xgb.Booster(), scaling=scaling, threshold=0.5).prepare(p[list(FEATURES)].to_numpy())
        for p in (parts.train, parts.validation)
    )
    y_train, y_val = parts.train["Class"].to_numpy(), parts.validation["Class"].to_numpy()
    config = replace(SMALL_CONFIG, n_estimators=1000, early_stopping_rounds=10)
    booster, params = training._fit_strategy("scale_pos_weight", config, x_train, y_train, (x_val, y_val), None)
    kept = booster.num_boosted_rounds()
    assert kept == params["trees"] < 1000
    # The last tree kept is the best round: the validation logloss of every shorter model is no
    # lower. Without the trimming, the 10 rounds after the best would be kept too, each worse.
    losses = [log_loss(y_val, booster.inplace_predict(x_val, iteration_range=(0, n))) for n in range(1, kept + 1)]
    assert losses[-1] <= min(losses) + 1e-6


def test_it_compares_smote_with_class_weighting_and_keeps_the_better(trained):
    comparison = trained.params["strategy_comparison"]
    assert set(comparison) == {"smote", "scale_pos_weight"}
    assert trained.params["strategy"] == max(comparison, key=comparison.get)


def test_time_and_amount_have_their_own_scaling(trained, training_frame):
    scaling = trained.bundle.scaling
    assert scaling["Time"] != scaling["Amount"]
    parts = training.split(training_frame, SMALL_CONFIG)
    assert scaling["Amount"]["center"] == pytest.approx(parts.train["Amount"].median())
    assert scaling["Time"]["center"] == pytest.approx(parts.train["Time"].median())


def test_it_records_every_metric_on_the_holdout(trained):
    m = trained.metrics
    for key in ("precision", "recall", "f1", "auprc", "roc_auc", "confusion", "pr_curve", "threshold"):
        assert key in m
    c = m["confusion"]
    assert c["tp"] + c["fn"] == m["frauds"]
    assert c["tp"] + c["fp"] + c["tn"] + c["fn"] == m["rows"]
    assert m["auprc"] > 0.8
    assert m["threshold"] == trained.bundle.threshold


def test_the_threshold_maximises_f1_on_validation():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.9])
    # Cut at 0.35: precision 4/5, recall 1, F1 0.889; at 0.6: precision 1, recall 3/4, F1 0.857.
    # The threshold sits halfway in log-odds between the cut and the next score below (0.3).
    threshold = tune_threshold(y, scores)
    assert threshold == pytest.approx(1 / (1 + np.exp(-(np.log(0.3 / 0.7) + np.log(0.35 / 0.65)) / 2)))
    assert 0.3 < threshold < 0.35
    np.testing.assert_array_equal(scores >= threshold, scores >= 0.35)
    # The highest cut that still catches three frauds in four is 0.6; halfway to 0.4 in log-odds
    # is 0.5.
    assert tune_threshold(y, scores, recall_target=0.75) == pytest.approx(0.5)


def test_a_threshold_that_flags_every_row_is_the_lowest_score():
    y = np.array([1, 0, 1, 1])
    scores = np.array([0.2, 0.3, 0.8, 0.9])
    assert tune_threshold(y, scores, recall_target=1.0) == pytest.approx(0.2)


def _f1_flagging(y: np.ndarray, flagged: np.ndarray) -> float:
    tp = np.sum(flagged & (y == 1))
    return 2 * tp / (flagged.sum() + y.sum())


@pytest.mark.parametrize("seed", range(20))
def test_the_threshold_flags_what_the_best_cut_flags_whatever_the_scores(seed):
    """Float32 scores as XGBoost gives them, with ties, some at exactly 0 or 1, some closer
    together than float32 can split, some far below any clipping: the threshold always flags
    exactly the rows of a cut of the best F1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    pool = np.float32([0.0, 1.0, 1e-13, 1e-14, 0.3, np.nextafter(np.float32(0.3), np.float32(1)), 1 - 1e-7])
    scores = np.where(rng.random(40) < 0.5, rng.choice(pool, 40), rng.random(40).round(2)).astype(np.float32)
    threshold = tune_threshold(y, scores)
    best = max(_f1_flagging(y, scores >= cut) for cut in np.unique(scores))
    assert _f1_flagging(y, scores >= threshold) == pytest.approx(best)


def test_the_threshold_falls_back_to_the_cut_when_nothing_lies_between():
    low = np.float32(0.3)
    scores = np.array([low, np.nextafter(low, np.float32(1))], dtype=np.float32)
    assert tune_threshold(np.array([0, 1]), scores) == scores[1]
    scores = np.float32([0.0, 1.0])
    assert tune_threshold(np.array([0, 1]), scores) == 1.0


def test_a_recall_target_is_kept_for_frauds_scored_near_zero():
    y = np.array([0, 1, 1])
    scores = np.float32([1e-14, 1e-13, 0.9])
    threshold = tune_threshold(y, scores, recall_target=1.0)
    np.testing.assert_array_equal(scores >= threshold, [False, True, True])
    assert 1e-14 < threshold < 1e-13


def test_warm_start_continues_the_given_model(trained, training_frame):
    later = training.train(training_frame, SMALL_CONFIG, init=trained.bundle)
    assert later.params["warm_start"] is True
    inherited = trained.bundle.booster.num_boosted_rounds()
    # The refit grows the validated new trees in proportion to the added rows, on top of the
    # inherited ones, which it does not grow again.
    parts = training.split(training_frame, SMALL_CONFIG)
    new = later.params["validated_trees"] - inherited
    grown = round(new * (len(parts.train) + len(parts.validation)) / len(parts.train))
    assert new > 0
    assert later.bundle.booster.num_boosted_rounds() == later.params["trees"] == inherited + grown
    assert later.bundle.scaling == trained.bundle.scaling


def test_it_refuses_data_with_too_few_frauds(training_frame):
    frame = training_frame.copy()
    frauds = frame.index[frame["Class"] == 1]
    frame.loc[frauds[5:], "Class"] = 0
    with pytest.raises(DataValidationError, match="too few fraud rows"):
        training.train(frame, SMALL_CONFIG)


def test_predictions_separate_the_classes(trained, training_frame):
    scores = trained.bundle.predict_proba(training_frame[list(FEATURES)].to_numpy())
    fraud = training_frame["Class"].to_numpy() == 1
    assert scores[fraud].mean() > 0.5 > scores[~fraud].mean()


def test_the_stored_pr_curve_keeps_its_high_precision_part():
    from modelops.ml.evaluation import CURVE_POINTS, evaluate

    rng = np.random.default_rng(0)
    # 100,000 legitimate rows and 60 frauds, well separated: the real curve reaches precision 1
    # at high thresholds, while almost every threshold lies among the legitimate scores.
    y = np.r_[np.zeros(100_000), np.ones(60)]
    scores = np.r_[rng.uniform(0, 0.6, 100_000), rng.uniform(0.5, 1.0, 60)]
    curve = evaluate(y, scores, threshold=0.6)["pr_curve"]
    assert len(curve["recall"]) <= CURVE_POINTS
    assert max(curve["precision"]) == 1.0
    high = [p for p, r in zip(curve["precision"], curve["recall"], strict=True) if 0.3 < r < 0.7]
    assert high and min(high) > 0.9


def test_it_refuses_data_with_too_few_legitimate_rows(training_frame):
    frame = training_frame.copy()
    legitimate = frame.index[frame["Class"] == 0]
    frame = frame.drop(index=legitimate[5:])
    with pytest.raises(DataValidationError, match="too few legitimate rows"):
        training.train(frame, SMALL_CONFIG)


def test_frauds_already_over_the_smote_ratio_are_weighted_instead(training_frame):
    # An undersampled file: as many frauds as SMOTE would make, or more; imbalanced-learn refuses.
    frauds = training_frame[training_frame["Class"] == 1]
    frame = training_frame.drop(index=training_frame.index[training_frame["Class"] == 0][: -len(frauds) * 5])
    notes: list[str] = []
    result = training.train(frame, SMALL_CONFIG, progress=notes.append)
    assert result.params["strategy"] == "scale_pos_weight"
    assert any(note.startswith("smote skipped: ") and "leave SMOTE nothing to add" in note for note in notes)
    with pytest.raises(DataValidationError, match="none of the imbalance strategies"):
        training.train(frame, replace(SMALL_CONFIG, strategies=("smote",)))


def test_a_newest_part_of_one_class_gives_a_stratified_holdout_with_both(training_frame):
    frame = training_frame.sort_values("Time").reset_index(drop=True)
    frame.loc[len(frame) - 6_000 :, "Class"] = 1  # the newest fifth: all frauds
    parts = training.split(frame, SMALL_CONFIG)
    assert parts.method == "stratified"
    assert 0 < parts.holdout["Class"].sum() < len(parts.holdout)


@pytest.mark.parametrize(
    ("frauds", "legitimate"), [(116, 1164), (117, 1164), (115, 1164), (10, 90), (9, 100), (50, 40)]
)
def test_smote_is_skipped_exactly_where_imbalanced_learn_would_refuse(frauds, legitimate):
    y = np.array([1] * frauds + [0] * legitimate)
    x = np.random.default_rng(0).normal(size=(len(y), 2))
    try:
        SMOTE(sampling_strategy=SMALL_CONFIG.smote_ratio, k_neighbors=5, random_state=0).fit_resample(x, y)
        refused = False
    except ValueError:
        refused = True
    assert (training._smote_unusable(SMALL_CONFIG, y) is not None) == refused
