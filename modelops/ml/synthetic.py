"""Synthetic transactions shaped like the ULB/Kaggle credit-card dataset.

A Gaussian copula per class, calibrated from a real sample into ``synthetic_stats.json`` by
``python -m modelops.ml.synthetic calibrate --csv PATH``; no real row is stored."""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import numbers
import os
import re
import sys
from pathlib import Path
from statistics import NormalDist
from typing import IO

import numpy as np
import pandas as pd

from .schema import BOUNDS, COLUMNS, FEATURES, LABEL, PCA_FEATURES, read_training_csv

STATS_PATH = Path(__file__).with_name("synthetic_stats.json")
STATS_VERSION = 1

# Amount on a log scale, where piecewise-linear quantiles can follow its long right tail.
COPULA_COLUMNS: tuple[str, ...] = (*PCA_FEATURES, "log1p(Amount)")

# Dense in the tails, where the classes differ most.
PROBABILITIES: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075,
    *(round(0.05 * k, 2) for k in range(2, 19)),
    0.925, 0.95, 0.97, 0.98, 0.99, 0.995, 0.9975, 0.999,
)  # fmt: skip
# Rows beyond a kept tail quantile, so it never is the value of the most extreme row.
MIN_ROWS_BEYOND = 2.0

SECONDS_PER_DAY = 86_400.0
TIME_BINS = 48
BIN_SECONDS = SECONDS_PER_DAY / TIME_BINS
# A bin left empty by chance would forbid fraud at that time of day in every generated file.
TIME_PSEUDO_COUNT = 1.0

TIME_LIMIT = BOUNDS["Time"][1]

SIGNIFICANT_DIGITS = 6
DEFAULT_FRAUD_RATE = 0.00172

_NORMAL = NormalDist()


def _round(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _rounded(values: np.ndarray) -> list:
    return np.vectorize(_round, otypes=[float])(np.asarray(values, dtype=np.float64)).tolist()


def _copula_values(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([frame[list(PCA_FEATURES)].to_numpy(np.float64), np.log1p(frame["Amount"].to_numpy())])


def _normal_scores(values: np.ndarray) -> np.ndarray:
    # Van der Waerden scores: ties share one score, and r / (n + 1) never reaches 0 or 1.
    ranks = pd.DataFrame(values).rank(method="average").to_numpy()
    return np.vectorize(_NORMAL.inv_cdf, otypes=[float])(ranks / (len(values) + 1))


def _class_stats(frame: pd.DataFrame) -> dict:
    values = _copula_values(frame)
    count = len(values)
    probabilities = [p for p in PROBABILITIES if min(p, 1.0 - p) * count >= MIN_ROWS_BEYOND]
    if len(probabilities) < 2:
        raise ValueError(f"a class has only {count} rows, too few to calibrate on")
    quantiles = np.quantile(values, probabilities, axis=0).T  # one row per column
    correlation = np.corrcoef(_normal_scores(values), rowvar=False)
    # A constant column has no correlation; treat it as independent of the others.
    correlation = np.nan_to_num(correlation, nan=0.0)
    np.fill_diagonal(correlation, 1.0)
    seconds = np.mod(frame["Time"].to_numpy(), SECONDS_PER_DAY)
    counts = np.bincount((seconds // BIN_SECONDS).astype(int), minlength=TIME_BINS)[:TIME_BINS]
    time_of_day = (counts + TIME_PSEUDO_COUNT) / (counts.sum() + TIME_PSEUDO_COUNT * TIME_BINS)
    return {
        "rows": count,
        "mean": _rounded(values.mean(axis=0)),
        "std": _rounded(values.std(axis=0, ddof=1) if count > 1 else np.zeros(values.shape[1])),
        "probabilities": probabilities,
        "quantiles": [_rounded(row) for row in quantiles],
        "correlation": [_rounded(row) for row in correlation],
        "time_of_day": _rounded(time_of_day),
    }


def calibrate(frame: pd.DataFrame) -> dict:
    """Class-conditional aggregates of a validated frame; never a row, nor a class's min or max."""
    labels = frame[LABEL].to_numpy()
    classes = {}
    for label in (0, 1):
        subset = frame[labels == label]
        if subset.empty:
            raise ValueError(f"the frame has no rows of class {label}")
        classes[str(label)] = _class_stats(subset)
    return {
        "version": STATS_VERSION,
        "columns": list(COPULA_COLUMNS),
        "time_bins": TIME_BINS,
        "sample_rows": len(frame),
        "sample_fraud_rate": _round(float(labels.mean())),
        "classes": classes,
    }


@functools.lru_cache(maxsize=1)
def _cached_stats() -> dict:
    return json.loads(STATS_PATH.read_text(encoding="utf-8"))


def load_stats() -> dict:
    """The committed statistics, read once per process (a copy: callers may change it freely)."""
    return copy.deepcopy(_cached_stats())


def _validate(rows: int, fraud_rate: float, seed: int, drift: float, start_time: float, days: float) -> None:
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise ValueError(f"rows must be an integer >= 1, got {rows!r}")
    if not isinstance(fraud_rate, numbers.Real) or not 0.0 <= fraud_rate <= 1.0:
        raise ValueError(f"fraud_rate must be between 0 and 1, got {fraud_rate!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(drift, numbers.Real) or not math.isfinite(drift):
        raise ValueError(f"drift must be a finite number, got {drift!r}")
    if not isinstance(start_time, numbers.Real) or not 0.0 <= start_time < TIME_LIMIT:
        raise ValueError(f"start_time must be a number >= 0 and below {TIME_LIMIT:g}, got {start_time!r}")
    if not isinstance(days, numbers.Real) or not days > 0.0:
        raise ValueError(f"days must be a number > 0, got {days!r}")
    # The schema refuses later Times, and the time sampler allocates per half-hour of the span.
    if start_time + days * SECONDS_PER_DAY > TIME_LIMIT:
        raise ValueError(f"days must end the span by Time {TIME_LIMIT:g}, got {days!r}")


def _draw_times(rng: np.random.Generator, count: int, shares: np.ndarray, start: float, end: float) -> np.ndarray:
    # Cut at the bin boundaries, so a span that starts or ends mid-bin is still exact.
    first, last = math.floor(start / BIN_SECONDS), math.ceil(end / BIN_SECONDS)
    lows = np.maximum(np.arange(first, last) * BIN_SECONDS, start)
    highs = np.minimum(np.arange(first + 1, last + 1) * BIN_SECONDS, end)
    density = shares[np.arange(first, last) % TIME_BINS]
    mass = density * (highs - lows)
    cumulative = np.cumsum(mass)
    draws = rng.random(count) * cumulative[-1]
    segment = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(mass) - 1)
    seconds = lows[segment] + (draws - (cumulative[segment] - mass[segment])) / density[segment]
    # The dataset counts whole seconds; flooring keeps every value below ``end``.
    seconds = np.floor(np.minimum(seconds, np.nextafter(end, -math.inf)))
    return np.sort(np.maximum(seconds, start))


def _copula_factor(correlation: np.ndarray) -> np.ndarray:
    # Rounded correlations may be a hair short of positive definite, which Cholesky refuses.
    eigenvalues, eigenvectors = np.linalg.eigh(correlation)
    return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def _from_normal_scores(
    scores: np.ndarray, probabilities: list[float], quantiles: list[list[float]], sample_rows: int
) -> np.ndarray:
    """Map normal scores (one row of ``scores`` per column) to values through the quantile tables."""
    grid = np.array([_NORMAL.inv_cdf(p) for p in probabilities])
    # Past the table the slope continues, compressed never to pass the largest of ``sample_rows``
    # draws: the sample says nothing further out, and a straight line makes absurd Amounts.
    reach_low = grid[0] - _NORMAL.inv_cdf(1.0 / (2.0 * sample_rows))
    reach_high = _NORMAL.inv_cdf(1.0 - 1.0 / (2.0 * sample_rows)) - grid[-1]
    out = np.empty_like(scores)
    for column, table in enumerate(np.asarray(quantiles, dtype=np.float64)):
        z = scores[column]
        values = np.interp(z, grid, table)
        low = np.flatnonzero(z < grid[0])
        beyond = -reach_low * np.expm1((z[low] - grid[0]) / reach_low)
        values[low] = table[0] - beyond * (table[1] - table[0]) / (grid[1] - grid[0])
        high = np.flatnonzero(z > grid[-1])
        beyond = -reach_high * np.expm1((grid[-1] - z[high]) / reach_high)
        values[high] = table[-1] + beyond * (table[-1] - table[-2]) / (grid[-1] - grid[-2])
        out[column] = values
    return out


def _draw_class(
    rng: np.random.Generator, count: int, stats: dict, start: float, end: float, shift: np.ndarray, label: int
) -> np.ndarray:
    """One class's rows as a (columns, rows) array in ``schema.COLUMNS`` order."""
    times = _draw_times(rng, count, np.asarray(stats["time_of_day"], dtype=np.float64), start, end)
    factor = _copula_factor(np.asarray(stats["correlation"], dtype=np.float64))
    scores = factor @ rng.standard_normal((factor.shape[0], count))
    values = _from_normal_scores(scores, stats["probabilities"], stats["quantiles"], stats["rows"])
    if shift.any():
        values += shift[:, None] * ((times - start) / (end - start))
    out = np.empty((len(COLUMNS), count))
    out[0] = times
    out[1:-2] = values[:-1]
    out[-2] = np.round(np.maximum(np.expm1(values[-1]), 0.0), 2) + 0.0  # + 0.0 turns -0.0 into 0.0
    out[-1] = label
    return out


def generate(
    *,
    rows: int,
    fraud_rate: float = DEFAULT_FRAUD_RATE,
    seed: int = 0,
    drift: float = 0.0,
    start_time: float = 0.0,
    days: float = 2.0,
    stats: dict | None = None,
) -> pd.DataFrame:
    """``rows`` transactions sorted by Time, ``round(rows * fraud_rate)`` frauds (at least one if the rate
    is > 0), the same for the same arguments. ``drift``: standard deviations the copula columns shift by
    the span's end, in directions fixed by ``seed``. ``stats``: a ``calibrate`` result."""
    _validate(rows, fraud_rate, seed, drift, start_time, days)
    stats = _cached_stats() if stats is None else stats
    frauds = min(rows, round(rows * fraud_rate))
    if fraud_rate > 0 and frauds == 0:
        frauds = 1
    end = start_time + days * SECONDS_PER_DAY

    # Its own stream: the same seed draws the same transactions with and without drift.
    signs = np.random.default_rng([seed, 1]).choice([-1.0, 1.0], size=len(COPULA_COLUMNS))
    # Both classes move alike, as a change of customers would, leaving the fraud signal intact.
    shift = drift * signs * np.asarray(stats["classes"]["0"]["std"], dtype=np.float64)

    rng = np.random.default_rng(seed)
    parts = [
        _draw_class(rng, count, stats["classes"][str(label)], start_time, end, shift, label)
        for label, count in ((0, rows - frauds), (1, frauds))
        if count
    ]
    data = np.concatenate(parts, axis=1)
    order = np.argsort(data[0], kind="stable")
    frame = pd.DataFrame({name: data[i].take(order) for i, name in enumerate(FEATURES)}, copy=False)
    frame[LABEL] = data[-1].take(order).astype(np.int8)
    return frame


def _whole_as_int(values: pd.Series) -> pd.Series:
    # As the dataset's file writes them: whole Times and Amounts without a decimal point ("0", "20").
    whole = np.isfinite(values) & (values == np.floor(values)) & (values.abs() < 2**53)
    if whole.all():
        return values.astype(np.int64)
    mixed = values.astype(object)
    mixed[whole] = values[whole].astype(np.int64).astype(object)
    return mixed


def write_csv(frame: pd.DataFrame, path_or_buffer: str | os.PathLike | IO[str]) -> None:
    """Write ``frame`` as the dataset's CSV: its header, floats that read back exactly, 0/1 labels."""
    out = frame[list(COLUMNS)].copy()
    out["Time"] = _whole_as_int(out["Time"].astype(np.float64))
    out["Amount"] = _whole_as_int(out["Amount"].astype(np.float64))
    out[LABEL] = out[LABEL].astype(np.int64)
    # pandas writes float64 with repr's shortest round-trip digits when no float_format is given.
    out.to_csv(path_or_buffer, index=False, lineterminator="\n")


def _dump(stats: dict) -> str:
    text = json.dumps(stats, indent=1)
    # One line per list of numbers, not per number: the file stays readable, its diffs small.
    return re.sub(r"\[\s*([-+0-9.eE,\s]+?)\s*\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.ml.synthetic", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cal = commands.add_parser("calibrate", help="derive the statistics from a real data file")
    cal.add_argument("--csv", required=True, help="labelled file in the dataset's format")
    cal.add_argument("--out", default=str(STATS_PATH), help="where to write the statistics (default: %(default)s)")
    args = parser.parse_args(argv)

    frame = read_training_csv(args.csv)
    stats = calibrate(frame)
    text = _dump(stats)
    Path(args.out).write_text(text, encoding="utf-8")
    frauds = stats["classes"]["1"]["rows"]
    sys.stdout.write(
        f"wrote {args.out}: calibrated on {len(frame)} rows ({frauds} frauds, "
        f"rate {stats['sample_fraud_rate']:g}), {len(COPULA_COLUMNS)} columns x 2 classes, "
        f"{len(text.encode())} bytes\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
