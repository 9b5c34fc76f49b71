"""How a challenger decides against the decisions stored for the same transactions: added chunk by
chunk in bounded memory, its state kept as JSON between chunks, so a killed backtest resumes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score

# Score histograms of both sides, in bins of this width.
SCORE_BINS = 20
UNLABELLED, LEGITIMATE, FRAUD = -1, 0, 1


class Comparison:
    def __init__(self, state: dict | None = None):
        state = state or {}
        self.n = state.get("n", 0)
        self.agree = state.get("agree", 0)
        self.sums = state.get("sums", [0.0] * 5)  # x, y, xx, yy, xy: the scores' correlation
        self.per_day: dict[str, list[int]] = state.get("per_day", {})  # day: [rows, stored alerts, alerts]
        self.histograms = state.get("histograms", [[0] * SCORE_BINS, [0] * SCORE_BINS])
        # Labelled rows are few (analysts' and external decisions): kept whole, for AUPRC.
        # stored score, stored alert, score, alert, fraud, amount
        self.labelled: list[list[float]] = state.get("labelled", [])

    def state(self) -> dict:
        return {
            "n": self.n,
            "agree": self.agree,
            "sums": self.sums,
            "per_day": self.per_day,
            "histograms": self.histograms,
            "labelled": self.labelled,
        }

    def add(
        self,
        *,
        days: Sequence[str],
        stored_score: np.ndarray,
        stored_alert: np.ndarray,
        score: np.ndarray,
        alert: np.ndarray,
        label: np.ndarray,
        amount: np.ndarray,
    ) -> None:
        """One chunk of transactions, each with its stored decision and the challenger's."""
        self.n += len(score)
        self.agree += int(np.count_nonzero(stored_alert == alert))
        x, y = stored_score, score
        for i, value in enumerate((x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum())):
            self.sums[i] += float(value)
        for side, values in enumerate((x, y)):
            counts = np.bincount(np.minimum((values * SCORE_BINS).astype(int), SCORE_BINS - 1), minlength=SCORE_BINS)
            self.histograms[side] = [a + int(b) for a, b in zip(self.histograms[side], counts, strict=True)]
        days = np.asarray(days)
        for day in np.unique(days):
            here = days == day
            row = self.per_day.setdefault(str(day), [0, 0, 0])
            row[0] += int(here.sum())
            row[1] += int(stored_alert[here].sum())
            row[2] += int(alert[here].sum())
        known = label != UNLABELLED
        columns = (stored_score, stored_alert, score, alert, label, amount)
        self.labelled += np.column_stack([np.asarray(c, dtype=np.float64)[known] for c in columns]).tolist()

    def figures(self) -> dict:
        """Volume, agreement, alerts, correlation; on labelled rows each side's precision, recall, F1,
        AUPRC and fraud money caught and missed."""
        n = self.n
        days = sorted(self.per_day)
        stored_alerts = sum(row[1] for row in self.per_day.values())
        alerts = sum(row[2] for row in self.per_day.values())
        out = {
            "transactions": n,
            "agreement": self.agree / n if n else None,
            "stored_alerts": stored_alerts,
            "alerts": alerts,
            "days": len(days),
            "stored_alerts_per_day": stored_alerts / len(days) if days else None,
            "alerts_per_day": alerts / len(days) if days else None,
            "correlation": _correlation(n, self.sums),
            "per_day": {day: self.per_day[day] for day in days},
            "histograms": self.histograms,
        }
        rows = np.array(self.labelled, dtype=np.float64).reshape(-1, 6)
        fraud = rows[:, 4] == FRAUD
        out["labelled"] = len(rows)
        out["labelled_frauds"] = int(fraud.sum())
        out["stored"] = _outcomes(rows[:, 0], rows[:, 1] > 0, fraud, rows[:, 5])
        out["challenger"] = _outcomes(rows[:, 2], rows[:, 3] > 0, fraud, rows[:, 5])
        return out


def _correlation(n: int, sums: list[float]) -> float | None:
    if n < 2:
        return None
    sx, sy, sxx, syy, sxy = sums
    cov = sxy - sx * sy / n
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    if vx <= 0 or vy <= 0:
        return None
    return cov / math.sqrt(vx * vy)


def _outcomes(scores: np.ndarray, alert: np.ndarray, fraud: np.ndarray, amount: np.ndarray) -> dict:
    if not len(scores):
        return {}
    tp = int(np.count_nonzero(alert & fraud))
    fp = int(np.count_nonzero(alert & ~fraud))
    fn = int(np.count_nonzero(~alert & fraud))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if tp + fn else None)
    both = fraud.any() and not fraud.all()
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auprc": float(average_precision_score(fraud, scores)) if both else None,
        "amount_caught": float(amount[alert & fraud].sum()),
        "amount_missed": float(amount[~alert & fraud].sum()),
    }
