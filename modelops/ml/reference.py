"""What a model learned from, compactly: per feature, quantile bin edges of its training rows and
the share in each bin, and the same of its scores on the hold-out. Live windows are binned on the
same edges and compared with the population stability index (PSI)."""

from __future__ import annotations

import numpy as np

from .schema import FEATURES

BINS = 10
# Time counts seconds from the start of a client's data: it only grows, so it would always drift.
MONITORED = tuple(name for name in FEATURES if name != "Time")
# A bin empty on one side would make PSI infinite; this share stands in for it.
FLOOR = 1e-4


def edges_of(values: np.ndarray, bins: int = BINS) -> list[float]:
    """The inner edges of ``bins`` quantile bins; fewer where values repeat (a mass at zero)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return []
    inner = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(e) for e in np.unique(inner)]


def counts_in(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """How many values fall in each of the len(edges) + 1 bins (right-closed, as np.quantile splits)."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [float(c / total) for c in counts] if total else [0.0] * len(counts)


def build(features: np.ndarray, holdout_scores: np.ndarray, *, threshold: float) -> dict:
    """The reference of a model trained on ``features`` (rows in FEATURES order)."""
    per_feature = {}
    for column, name in enumerate(FEATURES):
        values = features[:, column]
        edges = edges_of(values)
        per_feature[name] = {"edges": edges, "shares": shares(counts_in(values, edges))}
    score_edges = edges_of(holdout_scores)
    return {
        "bins": BINS,
        "rows": len(features),
        "features": per_feature,
        "score": {"edges": score_edges, "shares": shares(counts_in(holdout_scores, score_edges))},
        "alert_rate": float((holdout_scores >= threshold).mean()) if len(holdout_scores) else None,
    }


def psi(expected: list[float], counts: np.ndarray | list[int]) -> float | None:
    """PSI of observed bin counts against the reference shares: sum of (a - e) ln(a / e)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if not total or len(expected) != len(counts):
        return None
    actual = np.maximum(counts / total, FLOOR)
    wanted = np.maximum(np.asarray(expected, dtype=np.float64), FLOOR)
    return float(np.sum((actual - wanted) * np.log(actual / wanted)))


def checked(found) -> dict:
    """``found`` if it is a well-formed reference (it may come from an artifact in the bucket), else {}."""

    def part(item) -> bool:
        if not isinstance(item, dict):
            return False
        edges, shares_ = item.get("edges"), item.get("shares")
        return (
            isinstance(edges, list)
            and isinstance(shares_, list)
            and len(shares_) == len(edges) + 1 <= BINS + 1
            and all(isinstance(v, int | float) and np.isfinite(v) for v in [*edges, *shares_])
            and edges == sorted(edges)
        )

    if not isinstance(found, dict) or not isinstance(found.get("features"), dict):
        return {}
    if set(found["features"]) != set(FEATURES) or not all(part(v) for v in found["features"].values()):
        return {}
    if not part(found.get("score")):
        return {}
    rate = found.get("alert_rate")
    if rate is not None and not (isinstance(rate, int | float) and 0 <= rate <= 1):
        return {}
    return found
