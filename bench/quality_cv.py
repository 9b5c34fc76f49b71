"""Choosing training defaults without looking at the benchmark's hold-out.

Rolling-origin folds on the earlier 80 % of the real sample only (the rows bench/quality_real.py
trains on): for each fold start s in 50, 60, 70, 80, 90 % of those rows, train on the rows
before s and evaluate on the next 10 %. Prints each fold and the means for this project's
pipeline (with any TrainConfig field overridden by --set) and for the original configuration.
A fold holds 10 to 25 frauds, so one seed's means move with the seed: ``--seeds N`` trains
every fold with seeds 0 … N-1 and averages over all of them.

    .venv/bin/python bench/quality_cv.py --csv creditcard_real_day1.csv [--seeds 5]
        [--set learning_rate=0.1 --set refit=false]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.quality_real import configured, original_config, ours, sorted_sample
from modelops.ml import evaluation, schema

FOLD_STARTS = (0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", required=True)
    parser.add_argument("--seeds", type=int, default=1, help="train each fold with seeds 0 … N-1")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig field")
    args = parser.parse_args()
    config = configured(parser, args)
    frame = sorted_sample(args.csv)
    development = frame.iloc[: int(len(frame) * 0.8)]
    n = len(development)
    out = sys.stdout.write
    figures: dict[str, list[tuple[float, float]]] = {"this project": [], "original configuration": []}
    for seed in range(args.seeds):
        for start in FOLD_STARTS:
            train = development.iloc[: int(n * start)]
            test = development.iloc[int(n * start) : int(n * min(1.0, start + 0.1))]
            y = test[schema.LABEL].to_numpy()
            our_scores, our_threshold, described = ours(train, test, replace(config, seed=seed))
            line = f"seed {seed} fold at {start:.0%}: {len(test)} rows, {int(y.sum())} frauds"
            for name, scores, threshold in (
                ("this project", our_scores, our_threshold),
                ("original configuration", original_config(train, test, seed), 0.5),
            ):
                m = evaluation.evaluate(y, scores, threshold)
                figures[name].append((m["f1"], m["auprc"]))
                line += f" | {name} AUPRC {m['auprc']:.4f} F1 {m['f1']:.4f}"
            out(f"{line} ({described})\n")
    runs = len(FOLD_STARTS) * args.seeds
    for name, results in figures.items():
        f1, auprc = np.array(results).mean(axis=0)
        out(f"mean of {runs} fits, {name:<24} AUPRC {auprc:.4f}  F1 {f1:.4f}\n")


if __name__ == "__main__":
    main()
