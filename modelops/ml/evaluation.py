"""Metrics of a scored evaluation set, and the choice of a decision threshold."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

# Stored with each version for plots, which need no more points than this.
CURVE_POINTS = 200
HISTOGRAM_BINS = 20


def tune_threshold(y_true: np.ndarray, scores: np.ndarray, *, recall_target: float | None = None) -> float:
    """Threshold that maximises F1, or with ``recall_target`` the highest whose recall reaches it. Set halfway
    in log-odds from the lowest flagged score to the next below, so the edge is not wherever one fraud fell."""
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    # One more entry than thresholds: the point at recall 0.
    precision, recall = precision[:-1], recall[:-1]
    if recall_target is not None:
        reaching = np.flatnonzero(recall >= recall_target)
        chosen = int(reaching[-1]) if reaching.size else 0
    else:
        f1 = np.divide(
            2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=(precision + recall) > 0
        )
        chosen = int(np.argmax(f1))
    cut = thresholds[chosen]
    if chosen == 0:  # every row is flagged: there is no score below to go halfway to
        return float(cut)
    below = thresholds[chosen - 1]
    with np.errstate(invalid="ignore"):  # -inf + inf, for scores of exactly 0 and 1
        middle = logit(np.float64([below, cut])).mean()
    if not np.isfinite(middle):  # a score of exactly 0 or 1
        return float(cut)
    # Rounded to the scores' own type, as flagging compares in it (scores >= threshold).
    halfway = np.asarray(expit(middle)).astype(thresholds.dtype)
    return float(halfway) if below < halfway <= cut else float(cut)


def _curve_points(
    precision: np.ndarray, recall: np.ndarray, thresholds: np.ndarray, *, points: int = CURVE_POINTS
) -> list[np.ndarray]:
    """At most ``points`` evenly spaced of each recall value's best-precision point. Thinning the raw
    arrays by index would keep mostly the recall-1 end and lose the high-precision part."""
    last_of_run = np.flatnonzero(np.r_[recall[1:] != recall[:-1], True])
    if len(last_of_run) > points:
        last_of_run = last_of_run[np.unique(np.linspace(0, len(last_of_run) - 1, points).round().astype(int))]
    return [a[last_of_run] for a in (precision, recall, thresholds)]


def evaluate(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Every figure a model version records about one evaluation set, as plain JSON values."""
    y_true = np.asarray(y_true).astype(int)
    predicted = scores >= threshold
    tp = int(np.sum(predicted & (y_true == 1)))
    fp = int(np.sum(predicted & (y_true == 0)))
    fn = int(np.sum(~predicted & (y_true == 1)))
    tn = int(np.sum(~predicted & (y_true == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both_classes = 0 < y_true.sum() < len(y_true)

    curve_precision, curve_recall, curve_thresholds = precision_recall_curve(y_true, scores)
    curve_precision, curve_recall, curve_thresholds = _curve_points(
        curve_precision[:-1], curve_recall[:-1], curve_thresholds
    )
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    return {
        "threshold": float(threshold),
        "rows": len(y_true),
        "frauds": int(y_true.sum()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auprc": float(average_precision_score(y_true, scores)) if both_classes else None,
        "roc_auc": float(roc_auc_score(y_true, scores)) if both_classes else None,
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "pr_curve": {
            "precision": [round(float(v), 5) for v in curve_precision],
            "recall": [round(float(v), 5) for v in curve_recall],
            "threshold": [round(float(v), 6) for v in curve_thresholds],
        },
        "score_histogram": {
            "edges": [round(float(v), 3) for v in edges],
            "legit": np.histogram(scores[y_true == 0], bins=edges)[0].tolist(),
            "fraud": np.histogram(scores[y_true == 1], bins=edges)[0].tolist(),
        },
    }
