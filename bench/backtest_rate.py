"""How fast a backtest runs, and in how much memory: transactions/s scored and stored by
detection.backtests.run over a window of --rows stored transactions, and its process's peak RSS.

Fills the database with --rows stored transactions (default 1,000,000; generated rows scored by
the primary, as the API stores them) unless it holds them already, and a version to backtest
(trained here on 100,000 generated rows if the database has none spare), then runs the backtest
in a fresh process of its own, so that its peak RSS is the backtest's and not the filling's:
backtests.create() over a window holding every stored transaction, then backtests.run(). Prints
transactions/s, the time spent reading the rows (detection.stored_rows.read_after), scoring them
(ModelBundle.predict_proba) and in the rest (the comparison, writing the scores, the commits),
and the process's RSS before the run (Django, the model loaded) and at its peak. Earlier
backtests and their scores are deleted first.

    .venv/bin/python bench/backtest_rate.py --data-dir DIR
    .venv/bin/python bench/backtest_rate.py --data-dir DIR --database-url postgres://postgres@127.0.0.1:5432/bench_backtest
    .venv/bin/python bench/backtest_rate.py ... --chunk 50000 --profile   # another chunk size; cProfile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import environment, extra_versions, fill, manage, setup_django  # noqa: E402
from bench.shadow_catch_up import Timer  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare(args: argparse.Namespace) -> int:
    """The rows and the version; earlier backtests deleted. The version's primary key."""
    from django.db import connection

    from detection.models import Backtest, BacktestScore

    held = fill(args.rows)
    [version] = extra_versions(1)
    with connection.cursor() as cursor:  # without the ORM's cascade, which would load every score
        cursor.execute(f"DELETE FROM {BacktestScore._meta.db_table}")
    Backtest.objects.all().delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # as autovacuum would after the load and the deletes
    print(f"{connection.vendor}: {held:,} transactions stored; backtesting v{version.version}", flush=True)
    return version.pk


def measure(args: argparse.Namespace, version_id: int) -> None:
    from datetime import timedelta

    from django.conf import settings
    from django.db.models import Max, Min

    from detection import backtests, stored_rows
    from detection.models import Transaction
    from modelops import model_cache
    from modelops.ml.artifact import ModelBundle
    from modelops.models import ModelVersion

    if args.chunk:
        settings.BACKTEST_CHUNK_ROWS = args.chunk
    version = ModelVersion.objects.get(pk=version_id)
    model_cache.loaded(version_id=version.pk, sha256=version.sha256, name=version.artifact)  # before the clock
    bounds = Transaction.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    backtest = backtests.create(
        version=version, since=bounds["first"], until=bounds["last"] + timedelta(seconds=1), requested_by="bench"
    )
    before = rss_mib()
    reading, scoring = Timer(stored_rows, "read_after"), Timer(ModelBundle, "predict_proba")
    marks = []

    def progress(b) -> None:
        if not marks or b.rows_done - marks[-1][1] >= 200_000:
            marks.append((time.perf_counter(), b.rows_done))
            print(f"  {b.rows_done:,} of {b.rows_total:,} ({marks[-1][0] - started:.1f} s)", flush=True)

    profile = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profile:
        profile.enable()
    done = backtests.run(backtest.pk, progress=progress)
    if profile:
        profile.disable()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reading.restore()
    scoring.restore()
    rest = seconds - reading.seconds - scoring.seconds
    print(
        f"backtest of {done.rows_done:,} transactions ({done.status}), BACKTEST_CHUNK_ROWS="
        f"{settings.BACKTEST_CHUNK_ROWS:,}: {seconds:.1f} s, {done.rows_done / seconds:,.0f} transactions/s "
        f"scored and stored"
    )
    print(
        f"  reading {reading.seconds:.1f} s ({reading.seconds / seconds:.0%}), scoring {scoring.seconds:.1f} s "
        f"({scoring.seconds / seconds:.0%}), the comparison, writing and the rest {rest:.1f} s "
        f"({rest / seconds:.0%})"
    )
    print(f"  RSS {before:.0f} MiB before the run (Django, the model loaded), peak {peak:.0f} MiB")
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-backtest"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=0, help="BACKTEST_CHUNK_ROWS (the app's default if 0)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions by own time")
    parser.add_argument("--measure", type=int, default=0, help=argparse.SUPPRESS)  # the version, in the child
    args = parser.parse_args()

    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    env = environment(args.data_dir, database_url=args.database_url, LOG_LEVEL="WARNING")
    if args.measure:
        setup_django(env)
        measure(args, args.measure)
        return
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_model", timeout=900)
    setup_django(env)
    version_id = prepare(args)
    from django.db import connections

    connections.close_all()
    subprocess.run([sys.executable, *sys.argv, "--measure", str(version_id)], check=True)


if __name__ == "__main__":
    main()
