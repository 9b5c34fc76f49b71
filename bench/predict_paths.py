"""Micro-benchmark of the ways to get a probability (and contributions) out of the booster, for
one row and for a batch (10,000 rows unless --rows says), with one thread as the web workers run
(the served path explains a batch of SPLIT_MIN_ROWS or more in two threads); and how closely the
numpy tree walk (served up to 16 rows) agrees with XGBoost's own contributions on the batch.

    OMP_NUM_THREADS=1 .venv/bin/python bench/predict_paths.py --artifact var/bucket/models/<sha>.json \\
        [--busy-neighbour] [--rows N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import xgboost as xgb
from scipy.special import expit

from modelops.ml import artifact, synthetic
from modelops.ml.schema import FEATURES


def _spin() -> None:
    while True:
        pass


def per_call_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


def _service_keys():
    """The keys the service verifies artifacts with, from its settings (DATA_DIR or environment)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fraudsite.settings")
    django.setup()
    from modelops import artifact_store

    return artifact_store.verifying_keys()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifact", required=True)
    parser.add_argument(
        "--busy-neighbour",
        action="store_true",
        help="Keep the other core busy meanwhile, as the second gunicorn worker and the load generator do",
    )
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the batch")
    args = parser.parse_args()
    if args.busy_neighbour:
        neighbour = multiprocessing.Process(target=_spin, daemon=True)
        neighbour.start()
    bundle = artifact.loads(Path(args.artifact).read_bytes(), sha256=None, keys=_service_keys(), nthread=1)
    rows = synthetic.generate(rows=args.rows, fraud_rate=0.01, seed=3)[list(FEATURES)].to_numpy()
    one = bundle.prepare(rows[:1])
    many = bundle.prepare(rows)
    booster = bundle.booster
    out = sys.stdout.write
    out(
        f"model: {booster.num_boosted_rounds()} trees; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
        f"other core {'busy' if args.busy_neighbour else 'idle'}\n"
    )
    # Repeats per timing: about as many rows in all as 3 batches of 10,000.
    batch_repeats = max(3, 30_000 // args.rows)
    for label, data, number in (("1 row", one, 2000), (f"{args.rows:,} rows", many, batch_repeats)):
        scale, unit = (1, "us") if len(data) == 1 else (1e-3, "ms")
        matrix = xgb.DMatrix(data, nthread=1)
        raw = rows[: len(data)]
        figures = {
            "inplace_predict": lambda d=data: booster.inplace_predict(d),
            "DMatrix build": lambda d=data: xgb.DMatrix(d, nthread=1),
            "predict on a built DMatrix": lambda m=matrix: booster.predict(m),
            "pred_contribs exact (SHAP)": lambda m=matrix: booster.predict(m, pred_contribs=True),
            "pred_contribs approx (Saabas)": lambda m=matrix: booster.predict(
                m, pred_contribs=True, approx_contribs=True
            ),
            "ModelBundle.score (served path)": lambda r=raw: bundle.score(r),
            **(
                {
                    "ModelBundle.score in one thread": lambda r=raw: split_from(bundle, r, len(r) + 1),
                    "ModelBundle.score in two threads": lambda r=raw: split_from(bundle, r, 2),
                }
                if len(data) > artifact.WALK_MAX_ROWS
                else {}
            ),
            **(
                {"tree walk in numpy (served up to 16 rows)": lambda d=data: bundle.walker.contributions(d)}
                if len(data) <= artifact.WALK_MAX_ROWS
                else {}
            ),
            "predict_proba + score (two passes)": lambda r=raw: (
                bundle.predict_proba(r),
                bundle.score(r),
            ),
        }
        for name, fn in figures.items():
            out(f"{label:>12}  {name:<42} {per_call_us(fn, number) * scale:10.1f} {unit}\n")
    agreement(bundle, many)


def split_from(bundle: artifact.ModelBundle, rows: np.ndarray, smallest: int):
    """ModelBundle.score with batches of ``smallest`` rows or more explained in two threads."""
    served, artifact.SPLIT_MIN_ROWS = artifact.SPLIT_MIN_ROWS, smallest
    try:
        return bundle.score(rows)
    finally:
        artifact.SPLIT_MIN_ROWS = served


def agreement(bundle: artifact.ModelBundle, prepared: np.ndarray) -> None:
    """Largest difference between the walk and XGBoost's approximate contributions, and between
    the probabilities each gives, over the rows (walked 16 at a time, as served)."""
    if bundle.walker is None:
        sys.stdout.write("tree walk: not used for this model\n")
        return
    table = bundle.walker
    paths = table.path_feature.nbytes + table.path_delta.nbytes + table.leaf_of.nbytes
    walk = table.child.nbytes + table.feature.nbytes + table.condition.nbytes
    sys.stdout.write(
        f"tree walk tables: {walk / 1e6:.2f} MB to walk, {paths / 1e6:.2f} MB of paths "
        f"({len(table.path_feature):,} leaves)\n"
    )
    step = artifact.WALK_MAX_ROWS
    walked = np.concatenate(
        [bundle.walker.contributions(prepared[i : i + step]) for i in range(0, len(prepared), step)]
    )
    expected = bundle.booster.predict(xgb.DMatrix(prepared, nthread=1), pred_contribs=True, approx_contribs=True)

    def probability(contributions: np.ndarray) -> np.ndarray:
        return expit(contributions.sum(axis=1, dtype=np.float64))

    sys.stdout.write(
        f"tree walk against XGBoost on {len(prepared):,} rows: contributions differ by at most "
        f"{np.abs(walked - expected).max():.1e}, probabilities by at most "
        f"{np.abs(probability(walked) - probability(expected)).max():.1e}\n"
    )


if __name__ == "__main__":
    main()
