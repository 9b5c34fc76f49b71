"""How the time to store a 10,000-transaction batch in SQLite grows with the tables:

    .venv/bin/python bench/store_growth.py --data-dir var/bench [--until 1000000] [--drop-index NAME]

Works on a copy of the data folder of bench/http_scoring.py (its SQLite database and active
model), made beside it, and leaves the folder untouched: scores 10,000 generated transactions
once, then stores them again and again (detection.storage.store_scored, as the API does, the
checkpoints running as in a web worker) until the copy's transaction table holds --until rows,
and prints the median time of the last five batches as it passes every --every rows.
--drop-index drops an index of the copy first, to see what that index costs.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import store
from bench.request_cost import set_environment

BATCH = 10_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="var/bench")
    parser.add_argument("--until", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000)
    parser.add_argument("--drop-index", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    source = Path(args.data_dir).resolve()
    # Beside the folder, on the disk being measured; the database through SQLite's backup, which
    # copies a consistent state even while something else writes to it.
    with tempfile.TemporaryDirectory(dir=source.parent) as scratch:
        copy = Path(scratch) / "data"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("db.sqlite3*"))
        with (
            closing(sqlite3.connect(f"file:{source / 'db.sqlite3'}?mode=ro", uri=True)) as original,
            closing(sqlite3.connect(copy / "db.sqlite3")) as duplicate,
        ):
            original.backup(duplicate)
        run(copy, args)


def run(data_dir: Path, args: argparse.Namespace) -> None:
    set_environment(str(data_dir))
    import django

    django.setup()
    from django.db import connections

    from common import sqlite
    from detection.models import Transaction
    from modelops.ml import synthetic
    from modelops.ml.schema import FEATURES
    from modelops.model_cache import serving_model

    db = connections["default"]
    db.ensure_connection()
    for name in args.drop_index:
        db.connection.execute(f'DROP INDEX "{name}"')
    db.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sqlite.start()

    model = serving_model()
    values = synthetic.generate(rows=BATCH, fraud_rate=0.01, seed=11)[list(FEATURES)].to_numpy()
    scores, contributions = model.bundle.score(values)
    rows = Transaction.objects.count()
    dropped = f", without {', '.join(args.drop_index)}" if args.drop_index else ""
    sys.stdout.write(f"batches of {BATCH:,} stored into a copy holding {rows:,} transactions{dropped}\n")
    recent: list[float] = []
    mark = (rows // args.every + 1) * args.every
    while rows < args.until:
        started = time.perf_counter()
        store(model, values, scores, contributions)
        recent = [*recent[-4:], (time.perf_counter() - started) * 1e3]
        rows += BATCH
        if rows >= mark:
            sys.stdout.write(f"{rows:>10,} transactions: {statistics.median(recent):6.0f} ms per batch\n")
            mark += args.every


if __name__ == "__main__":
    main()
