"""Training: time-ordered split, robust scaling, SMOTE or class weights, XGBoost, threshold, refit."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import imblearn
import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import RobustScaler

from . import reference
from .artifact import ModelBundle
from .evaluation import evaluate, tune_threshold
from .schema import FEATURES, LABEL, DataValidationError

STRATEGIES = ("smote", "scale_pos_weight")
# Per class, in each of train, validation and hold-out: SMOTE needs neighbours, the metrics both classes.
MIN_PER_CLASS = 6


@dataclass(frozen=True)
class TrainConfig:
    # Per validated fit; the refit grows proportionally more (refit_trees), so a deployed model has more.
    n_estimators: int = 150
    max_depth: int = 6
    learning_rate: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    # Off, and no setting turns it on (kept to compare against): logloss stops fits before AUPRC peaks.
    early_stopping_rounds: int = 0
    # SMOTE grows the fraud class to this fraction of the legitimate class (training rows only).
    smote_ratio: float = 0.1
    strategies: tuple[str, ...] = STRATEGIES
    holdout_fraction: float = 0.2
    validation_fraction: float = 0.2
    recall_target: float | None = None
    # Fit the choice again on training + validation rows: the newest rows are closest to what it will score.
    refit: bool = True
    seed: int = 0
    nthread: int = 0  # 0: all cores while training; scoring always uses one thread per process


@dataclass
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    method: str  # "time" when the newest rows are the hold-out, else "stratified"


@dataclass
class TrainResult:
    bundle: ModelBundle
    metrics: dict  # evaluation on the hold-out, at the tuned threshold
    params: dict
    rows: int
    frauds: int


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "xgboost": xgb.__version__,
        "scikit-learn": sklearn.__version__,
        "imbalanced-learn": imblearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def holdout_split(
    frame: pd.DataFrame, fraction: float, *, seed: int = 0, ordered: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(older rows, newest ``fraction`` of rows, method): newest by Time, or the last rows when ``ordered``
    (joined files whose Time each restart at 0); "stratified" when a part would lack MIN_PER_CLASS of a class."""
    frame = frame.reset_index(drop=True) if ordered else frame.sort_values("Time", kind="stable").reset_index(drop=True)
    start = int(len(frame) * (1 - fraction))
    head, tail = frame.iloc[:start], frame.iloc[start:]
    if has_both_classes(head, MIN_PER_CLASS) and has_both_classes(tail, MIN_PER_CLASS):
        return head, tail, "time"
    head, tail = train_test_split(frame, test_size=fraction, stratify=frame[LABEL], random_state=seed)
    return head, tail, "stratified"


def has_both_classes(frame: pd.DataFrame, count: int) -> bool:
    frauds = int(frame[LABEL].sum())
    return frauds >= count and len(frame) - frauds >= count


def split(
    frame: pd.DataFrame, config: TrainConfig, *, holdout: pd.DataFrame | None = None, ordered: bool = False
) -> Split:
    """Hold-out = the newest rows, validation = the newest of the rest, so a model is judged on later
    transactions than it learned from. With ``holdout`` given, ``frame`` gives training and validation only."""
    needed = (2 if holdout is not None else 3) * MIN_PER_CLASS
    frauds = int(frame[LABEL].sum())
    if frauds < needed:
        raise DataValidationError(f"too few fraud rows to train and evaluate a model: {frauds}, need at least {needed}")
    if len(frame) - frauds < needed:
        raise DataValidationError(
            f"too few legitimate rows (Class = 0) to train and evaluate a model: {len(frame) - frauds}, "
            f"need at least {needed}"
        )
    if holdout is not None and not has_both_classes(holdout, 1):
        raise DataValidationError("the hold-out needs rows of both classes to evaluate a model on")
    methods = []
    if holdout is None:
        frame, holdout, method = holdout_split(frame, config.holdout_fraction, seed=config.seed, ordered=ordered)
        methods.append(method)
        ordered = True
    train, validation, method = holdout_split(frame, config.validation_fraction, seed=config.seed, ordered=ordered)
    methods.append(method)
    return Split(train, validation, holdout, method="time" if set(methods) == {"time"} else "stratified")


def refit_trees(validated: float, train_rows: float, validation_rows: float) -> int:
    """The new trees the refit grows: the validated fit's, in proportion to the added rows."""
    return max(1, round(validated * (train_rows + validation_rows) / train_rows))


def trees_grown(config: TrainConfig) -> int:
    """Trees one training adds, the refit's included: exact up to rounding, at most this with early stopping."""
    if not config.refit:
        return config.n_estimators
    return refit_trees(config.n_estimators, 1 - config.validation_fraction, config.validation_fraction)


def fit_scaling(train: pd.DataFrame) -> dict[str, dict[str, float]]:
    """RobustScaler parameters for Time and Amount, each fitted on its own column."""
    scaling = {}
    for name in ("Time", "Amount"):
        scaler = RobustScaler().fit(train[[name]].to_numpy())
        scale = float(scaler.scale_[0]) or 1.0
        scaling[name] = {"center": float(scaler.center_[0]), "scale": scale}
    return scaling


def _classifier(config: TrainConfig, **extra) -> xgb.XGBClassifier:
    return xgb.XGBClassifier(
        tree_method="hist",
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
        subsample=config.subsample,
        colsample_bytree=config.colsample_bytree,
        early_stopping_rounds=config.early_stopping_rounds or None,
        # For early stopping: aucpr on few validation frauds peaks early by chance.
        eval_metric="logloss",
        random_state=config.seed,
        n_jobs=config.nthread or None,
        **extra,
    )


def _fit_strategy(
    strategy: str,
    config: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    stop_on: tuple[np.ndarray, np.ndarray] | None,
    init: xgb.Booster | None,
) -> tuple[xgb.Booster, dict]:
    """One strategy fitted on the training rows; with ``stop_on``, stopped early and cut to the best round."""
    eval_set = [stop_on] if stop_on is not None else None
    if strategy == "smote":
        # Inside the pipeline SMOTE resamples only the rows fitted on, never validation or hold-out rows.
        neighbours = int(min(5, y_train.sum() - 1))
        model = Pipeline(
            [
                (
                    "smote",
                    SMOTE(sampling_strategy=config.smote_ratio, k_neighbors=neighbours, random_state=config.seed),
                ),
                ("xgb", _classifier(config)),
            ]
        )
        model.fit(x_train, y_train, xgb__eval_set=eval_set, xgb__verbose=False, xgb__xgb_model=init)
        classifier = model.named_steps["xgb"]
        extra = {"smote_ratio": config.smote_ratio, "smote_k_neighbors": neighbours}
    elif strategy == "scale_pos_weight":
        weight = float((y_train == 0).sum() / max(1, (y_train == 1).sum()))
        classifier = _classifier(config, scale_pos_weight=weight)
        classifier.fit(x_train, y_train, eval_set=eval_set, verbose=False, xgb_model=init)
        extra = {"scale_pos_weight": round(weight, 4)}
    else:
        raise ValueError(f"unknown imbalance strategy: {strategy}")
    booster = classifier.get_booster()
    # Cut to the best round, so the raw booster scores as validated without an iteration_range.
    best = getattr(classifier, "best_iteration", None) if stop_on is not None else None
    if best is not None:
        booster = booster[: best + 1]
    return booster, {"strategy": strategy, "trees": booster.num_boosted_rounds(), **extra}


def _smote_unusable(config: TrainConfig, *labels: np.ndarray) -> str | None:
    """Why SMOTE cannot resample each of ``labels``, or None: imbalanced-learn refuses when smote_ratio
    adds no row, so the same arithmetic decides here."""
    for y in labels:
        frauds = int(y.sum())
        smaller, larger = sorted((frauds, len(y) - frauds))
        if int(larger * config.smote_ratio - smaller) <= 0:
            return (
                f"{frauds} frauds and {len(y) - frauds} legitimate rows leave SMOTE nothing to add "
                f"at smote_ratio {config.smote_ratio}"
            )
    return None


def _refit(
    strategy: str,
    config: TrainConfig,
    params: dict,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    init: ModelBundle | None,
) -> tuple[xgb.Booster, dict]:
    """The chosen strategy fitted on training + validation rows, without early stopping, growing the
    validated new trees in proportion (a warm start's inherited trees are not grown again). The
    threshold stays the validated one: no rows are left to tune it on."""
    inherited = init.booster.num_boosted_rounds() if init is not None else 0
    validated = params["trees"] - inherited
    trees = refit_trees(validated, len(x_train), len(x_val))
    booster, refit_params = _fit_strategy(
        strategy,
        replace(config, n_estimators=trees, early_stopping_rounds=0),
        np.concatenate([x_train, x_val]),
        np.concatenate([y_train, y_val]),
        None,
        init.booster if init is not None else None,
    )
    return booster, {**refit_params, "validated_trees": params["trees"], "refit": True}


def train(
    frame: pd.DataFrame,
    config: TrainConfig | None = None,
    *,
    init: ModelBundle | None = None,
    holdout: pd.DataFrame | None = None,
    ordered: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """Train on a validated frame and evaluate it; DataValidationError if the data cannot support that.
    ``init``: warm start, keeping its scaling (its splits live in that space). ``holdout``: evaluate on it."""
    config = config or TrainConfig()
    started = time.perf_counter()
    parts = split(frame, config, holdout=holdout, ordered=ordered)
    progress(
        f"split ({parts.method}): {len(parts.train)} train, {len(parts.validation)} validation, "
        f"{len(parts.holdout)} hold-out rows"
    )
    scaling = init.scaling if init is not None else fit_scaling(parts.train)
    draft = ModelBundle(booster=xgb.Booster(), scaling=scaling, threshold=0.5)
    x_train, x_val = (draft.prepare(p[list(FEATURES)].to_numpy()) for p in (parts.train, parts.validation))
    y_train, y_val, y_hold = (p[LABEL].to_numpy() for p in (parts.train, parts.validation, parts.holdout))

    candidates = []
    for strategy in config.strategies:
        if strategy == "smote" and (reason := _smote_unusable(config, y_train, np.concatenate([y_train, y_val]))):
            progress(f"smote skipped: {reason}")
            continue
        step = time.perf_counter()
        stop_on = (x_val, y_val) if config.early_stopping_rounds else None
        booster, params = _fit_strategy(
            strategy, config, x_train, y_train, stop_on, init.booster if init is not None else None
        )
        val_scores = booster.inplace_predict(x_val)
        val_auprc = float(average_precision_score(y_val, val_scores))
        progress(
            f"{strategy}: validation AUPRC {val_auprc:.4f}, {params['trees']} trees, {time.perf_counter() - step:.1f}s"
        )
        candidates.append((val_auprc, strategy, booster, params, val_scores))
    if not candidates:
        tried = ", ".join(config.strategies)
        raise DataValidationError(f"none of the imbalance strategies ({tried}) applies to this data")
    val_auprc, strategy, booster, params, val_scores = max(candidates, key=lambda c: c[0])

    threshold = tune_threshold(y_val, val_scores, recall_target=config.recall_target)
    if config.refit:
        step = time.perf_counter()
        booster, params = _refit(strategy, config, params, x_train, y_train, x_val, y_val, init)
        progress(
            f"refit {strategy} on training + validation rows: {params['trees']} trees, "
            f"{time.perf_counter() - step:.1f}s"
        )
    bundle = ModelBundle(booster=booster, scaling=scaling, threshold=threshold)
    holdout_scores = bundle.predict_proba(parts.holdout[list(FEATURES)].to_numpy())
    metrics = evaluate(y_hold, holdout_scores, threshold)
    metrics["validation_auprc"] = val_auprc
    metrics["split"] = parts.method
    params = {
        **params,
        "config": asdict(config),
        "warm_start": init is not None,
        "strategy_comparison": {s: round(a, 5) for a, s, *_ in candidates},
        "feature_importance": {
            name: round(float(booster.get_score(importance_type="gain").get(f"f{i}", 0.0)), 4)
            for i, name in enumerate(FEATURES)
        },
    }
    seconds = round(time.perf_counter() - started, 2)
    # As the Dask backend records its cluster: which backend trained, on how many threads, how long.
    params["training_backend"] = {"backend": "local", "threads": config.nthread or os.cpu_count(), "seconds": seconds}
    bundle.metadata = {
        "metrics": metrics,
        "params": params,
        "library_versions": library_versions(),
        "training_rows": len(frame),
        "training_frauds": int(frame[LABEL].sum()),
        # What monitoring compares live windows with: the rows fitted on, as stored (unscaled).
        "reference": reference.build(parts.train[list(FEATURES)].to_numpy(), holdout_scores, threshold=threshold),
        "training_seconds": seconds,
        "training_backend": params["training_backend"],
    }
    progress(
        f"chose {strategy}; hold-out F1 {metrics['f1']:.4f}, precision {metrics['precision']:.4f}, "
        f"recall {metrics['recall']:.4f}, AUPRC {metrics['auprc'] or 0:.4f} at threshold {threshold:.4f}"
    )
    return TrainResult(bundle=bundle, metrics=metrics, params=params, rows=len(frame), frauds=int(frame[LABEL].sum()))
