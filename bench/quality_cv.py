"""Choosing training defaults without looking at the benchmark's hold-out.

Rolling-origin folds on the earlier 80 % of the real sample only (the rows bench/quality_real.py
trains on): for each fold start s in 50, 60, 70, 80, 90 % of those rows, train on the rows
before s and evaluate on the next 10 %. Prints each fold and the means for this project's
pipeline (with any TrainConfig field overridden by --set) and for the original configuration.

    .venv/bin/python bench/quality_cv.py --csv creditcard_real_day1.csv [--set learning_rate=0.1 --set refit=false]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.quality_real import original_config, ours, overridden, sorted_sample
from modelops.ml import evaluation, schema

FOLD_STARTS = (0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig field")
    args = parser.parse_args()
    config = overridden(args.set)
    frame = sorted_sample(args.csv)
    development = frame.iloc[: int(len(frame) * 0.8)]
    n = len(development)
    out = sys.stdout.write
    figures: dict[str, list[tuple[float, float]]] = {"this project": [], "original configuration": []}
    for start in FOLD_STARTS:
        train = development.iloc[: int(n * start)]
        test = development.iloc[int(n * start) : int(n * min(1.0, start + 0.1))]
        y = test[schema.LABEL].to_numpy()
        our_scores, our_threshold, described = ours(train, test, config)
        line = f"fold at {start:.0%}: {len(test)} rows, {int(y.sum())} frauds"
        for name, scores, threshold in (
            ("this project", our_scores, our_threshold),
            ("original configuration", original_config(train, test), 0.5),
        ):
            m = evaluation.evaluate(y, scores, threshold)
            figures[name].append((m["f1"], m["auprc"]))
            line += f" | {name} AUPRC {m['auprc']:.4f} F1 {m['f1']:.4f}"
        out(f"{line} ({described})\n")
    for name, runs in figures.items():
        f1, auprc = np.array(runs).mean(axis=0)
        out(f"mean of {len(FOLD_STARTS)} folds, {name:<24} AUPRC {auprc:.4f}  F1 {f1:.4f}\n")


if __name__ == "__main__":
    main()
