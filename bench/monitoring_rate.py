"""How fast the monitoring summarises stored traffic, and in how much memory: transactions/s
through detection.monitoring.monitor (summarise() of each closed window) over --rows stored
transactions spread over --hours hourly windows, and its process's peak RSS.

Fills the database with --rows stored transactions (default 1,000,000; generated rows scored by
the primary, as the API stores them, about 1 % of them labelled) unless it holds them already,
then spreads their storing times evenly over the --hours closed windows before the current one
(default 100: 10,000 transactions a window) and makes the primary deployed from the first. Then,
in a fresh process of its own, so that its peak RSS is the monitoring's and not the filling's,
runs monitor() until it has no window left to summarise (it computes at most 200 a run). Prints
the windows and transactions summarised, transactions/s, the time spent reading the rows
(detection.stored_rows.read_after), in the query of each window's first and last id, and in
the rest (the bins, PSI, quantiles, writing the window, the drift policy), the slowest window,
and the RSS before the run (Django set up) and at its peak. Earlier windows are deleted first.

    .venv/bin/python bench/monitoring_rate.py --data-dir DIR
    .venv/bin/python bench/monitoring_rate.py --data-dir DIR --database-url postgres://postgres@127.0.0.1:5432/bench_monitoring
    .venv/bin/python bench/monitoring_rate.py ... --hours 24 --profile   # bigger windows; cProfile
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import environment, manage, store  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def setup_django(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()


def fill(rows: int, *, chunk: int = 10_000) -> int:
    """Generated transactions scored by the primary (random scores, made-up contributions) until
    the database holds ``rows``; how many it holds."""
    import numpy as np

    from detection.models import Transaction
    from modelops.ml import synthetic
    from modelops.ml.schema import FEATURES
    from modelops.models import ModelVersion

    have = Transaction.objects.count()
    if have >= rows:
        return have
    version = ModelVersion.objects.primary().get()
    rng = np.random.default_rng(1)
    frame = synthetic.generate(rows=chunk, seed=1)[list(FEATURES)].to_numpy()
    contributions = [[{"feature": f"V{k}", "value": 0.0, "contribution": 0.1} for k in (14, 10, 17, 4, 12)]] * chunk
    started = time.perf_counter()
    for start in range(have, rows, chunk):
        n = min(chunk, rows - start)
        store(version, frame[rng.permutation(chunk)[:n]], rng.beta(0.3, 12, size=n), contributions[:n], source="batch")
        if (start + n) % 100_000 == 0 or start + n == rows:
            print(f"  {start + n:,} transactions stored ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def spread(hours: int) -> tuple[float, float]:
    """Storing times evenly spread, in id order, over the ``hours`` closed windows before the
    current one; 1 % of the rows labelled (a tenth of those fraud), decided before any window is
    computed. The primary deployed from the first window. The span, as POSIX times."""
    from django.db import connection
    from django.db.models import Max, Min
    from django.utils import timezone

    from detection.models import Transaction
    from detection.monitoring import floor_to_window
    from modelops.models import Deployment

    end = floor_to_window(timezone.now()).timestamp()
    start = end - hours * 3600
    bounds = Transaction.objects.aggregate(first=Min("id"), last=Max("id"))
    step = hours * 3600 / (bounds["last"] - bounds["first"] + 1)
    table = connection.ops.quote_name(Transaction._meta.db_table)
    if connection.vendor == "postgresql":
        moment = "to_timestamp(%s + (id - %s) * %s)"
        reviewed = "created_at + interval '1 second'"
    else:
        moment = "strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s + (id - %s) * %s, 'unixepoch')"
        reviewed = "created_at"
    label = "CASE WHEN id %% 1000 = 0 THEN 'fraud' WHEN id %% 100 = 0 THEN 'legitimate' END"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET created_at = {moment}, label = {label}", [start, bounds["first"], step])
        cursor.execute(f"UPDATE {table} SET reviewed_at = {reviewed} WHERE label IS NOT NULL")
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")  # as autovacuum would after the load and the updates
    Deployment.objects.filter(role=Deployment.Role.PRIMARY).update(since=datetime.fromtimestamp(start, tz=UTC))
    return start, end


def measure(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.db.models import Sum

    from detection import monitoring, stored_rows
    from detection.models import MonitorWindow

    MonitorWindow.objects.all().delete()
    durations: list[float] = []
    summarise = monitoring.summarise

    def timed_summarise(*a, **kw):
        started = time.perf_counter()
        try:
            return summarise(*a, **kw)
        finally:
            durations.append(time.perf_counter() - started)

    reading = [0.0]
    read_after = stored_rows.read_after

    def timed_read(*a, **kw):
        started = time.perf_counter()
        try:
            return read_after(*a, **kw)
        finally:
            reading[0] += time.perf_counter() - started

    bounding = [0.0]

    def timed_bounds(execute, sql, params, many, context):
        """The aggregate of each window's first and last id (by created_at), the other query per window."""
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if sql.startswith("SELECT MIN(") and "JOIN" not in sql:
                bounding[0] += time.perf_counter() - started

    monitoring.summarise, stored_rows.read_after = timed_summarise, timed_read
    stack = connection.execute_wrapper(timed_bounds)
    stack.__enter__()
    before = rss_mib()
    profile = cProfile.Profile() if args.profile else None
    runs = 0
    started = time.perf_counter()
    if profile:
        profile.enable()
    while True:
        runs += 1
        done = monitoring.monitor()
        if not done["new"]:
            break
    if profile:
        profile.disable()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    monitoring.summarise, stored_rows.read_after = summarise, read_after
    stack.__exit__(None, None, None)
    windows = MonitorWindow.objects.count()
    transactions = MonitorWindow.objects.aggregate(n=Sum("transactions"))["n"] or 0
    rest = seconds - reading[0] - bounding[0]
    print(
        f"monitor() x{runs}: {windows} windows of {monitoring.window_minutes()} minutes, {transactions:,} transactions "
        f"in {seconds:.1f} s: {transactions / seconds:,.0f} transactions/s "
        f"(CHUNK={monitoring.CHUNK:,})"
    )
    print(
        f"  reading the rows {reading[0]:.1f} s ({reading[0] / seconds:.0%}), each window's first and last id "
        f"{bounding[0]:.1f} s ({bounding[0] / seconds:.0%}), the bins, PSI, writing and the drift policy "
        f"{rest:.1f} s ({rest / seconds:.0%}); slowest window {max(durations, default=0) * 1000:.0f} ms, "
        f"median {sorted(durations)[len(durations) // 2] * 1000 if durations else 0:.0f} ms"
    )
    newest = MonitorWindow.objects.order_by("-start").first()
    if newest is not None:
        print(
            f"  newest window: score PSI {newest.score_psi}, top feature {newest.top_feature} "
            f"PSI {newest.top_feature_psi}, alert rate {newest.alert_rate:.4f}, "
            f"{newest.decided_alerts} decided alerts"
        )
    print(f"  RSS {before:.0f} MiB before the run (Django set up), peak {peak:.0f} MiB")
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-monitoring"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hours", type=int, default=100, help="hourly windows the rows are spread over")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions by own time")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # in the child
    args = parser.parse_args()

    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    env = environment(args.data_dir, database_url=args.database_url, LOG_LEVEL="WARNING", MONITOR_WINDOW_MINUTES="60")
    if args.measure:
        setup_django(env)
        measure(args)
        return
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_model", timeout=900)
    setup_django(env)
    from django.db import connection, connections

    from detection.models import Transaction

    held = fill(args.rows)
    spread(args.hours)
    labelled = Transaction.objects.exclude(label=None).count()
    print(f"{connection.vendor}: {held:,} transactions over {args.hours} hours, {labelled:,} labelled", flush=True)
    connections.close_all()
    subprocess.run([sys.executable, *sys.argv, "--measure"], check=True)


if __name__ == "__main__":
    main()
