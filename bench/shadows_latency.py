"""Single-transaction POST /detect-fraud with no shadow deployed and with three, in alternating turns.

One gunicorn (2 sync workers, as bench/http_scoring.py serves it) and one `manage.py qcluster`
on the same folder or database. Three variants take turns, the order rotated each turn, loaded
by wrk at concurrency 8:

- no shadow deployed;
- three shadows deployed, the shadow task not running (what the request path itself costs);
- three shadows deployed and the shadow task scoring them in the cluster meanwhile: it is
  enqueued every --task-every seconds and takes what is settled (SHADOW_SETTLE_SECONDS=1 here),
  so it keeps up with the turn's traffic as the scheduled task does over a minute.

The shadows are deployed afresh at the start of each turn that has them (so each scores only its
turn's traffic) and stopped after it. Prints each turn's requests/s, p50, p99, the web workers'
CPU per request, how many shadow predictions the task stored during the turn, then each
variant's median and its median ratio to the no-shadow turn of the same round.

    .venv/bin/python bench/shadows_latency.py --data-dir DIR
    .venv/bin/python bench/shadows_latency.py --data-dir DIR --database-url postgres://postgres@127.0.0.1:5432/bench_shadows

The first run trains the primary on 284,807 generated rows and three more versions on 100,000
each (the app's training settings, other seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    MANAGE,
    TRANSACTION,
    environment,
    extra_versions,
    gunicorn,
    manage,
    setup_django,
    workers_of,
)
from bench.http_scoring import wrk  # noqa: E402

NONE, IDLE, SCORING = "no shadow", "3 shadows, task idle", "3 shadows, task scoring"
VARIANTS = (NONE, IDLE, SCORING)


def deploy(versions) -> None:
    from modelops.services import deployments

    for version in versions:
        deployments.deploy_shadow(version_id=version.pk, actor="bench", reason="bench/shadows_latency.py")


def stop_all() -> None:
    from modelops.models import Deployment
    from modelops.services import deployments

    for deployment in Deployment.objects.shadows():
        deployments.stop_shadow(version_id=deployment.version_id, actor="bench", reason="turn over")


def drain_queue(timeout: float = 120) -> None:
    """Wait until the cluster has taken every enqueued task and none is left running."""
    from django_q.models import OrmQ

    deadline = time.monotonic() + timeout
    while OrmQ.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # the last task taken finds no shadow and ends


def enqueue_every(seconds: float, stop: threading.Event) -> threading.Thread:
    from django.db import connection
    from django_q.tasks import async_task

    def run() -> None:
        try:
            while not stop.is_set():
                async_task("detection.tasks.score_shadows", task_name="score-shadows-bench")
                stop.wait(seconds)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def shadow_rows_since(stamp) -> int:
    from detection.models import Prediction

    return Prediction.objects.filter(role=Prediction.Role.SHADOW, created_at__gte=stamp).count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-shadows"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--turn-seconds", type=int, default=6)
    parser.add_argument("--task-every", type=float, default=2.0, help="seconds between enqueued shadow tasks")
    args = parser.parse_args()

    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    env = environment(args.data_dir, database_url=args.database_url, settings="bench.settings")
    env.update(SHADOW_SETTLE_SECONDS="1", LOG_LEVEL="WARNING")
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_model", timeout=900)
    setup_django(env)
    from django.utils import timezone

    shadows = extra_versions(3)
    stop_all()
    body_file = Path(args.data_dir) / "one_transaction.json"
    body_file.write_text(json.dumps(TRANSACTION))

    cluster = subprocess.Popen(
        [*MANAGE, "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with gunicorn(env, workers=args.workers) as (server, port):
            url = f"http://127.0.0.1:{port}/detect-fraud"
            workers: list[int] = []
            deadline = time.monotonic() + 60
            while len(workers) < args.workers:
                if time.monotonic() > deadline:
                    raise SystemExit("gunicorn started too few workers in 60 s")
                time.sleep(0.1)
                workers = workers_of(server.pid)
            wrk(url, body_file, 8, 3, workers)  # warm up
            database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
            print(
                f"gunicorn {args.workers} sync workers and a qcluster ({os.environ.get('Q_WORKERS', '1')} worker), "
                f"{database}, wrk c=8, {args.turns} rounds of {len(VARIANTS)} turns of {args.turn_seconds} s, "
                f"shadow task every {args.task_every:g} s in its turns, {os.cpu_count()} cores",
                flush=True,
            )
            results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
            for turn in range(args.turns):
                order = VARIANTS[turn % 3 :] + VARIANTS[: turn % 3]
                for variant in order:
                    if variant != NONE:
                        deploy(shadows)
                    started = timezone.now()
                    stop = threading.Event()
                    enqueuer = enqueue_every(args.task_every, stop) if variant == SCORING else None
                    r = wrk(url, body_file, 8, args.turn_seconds, workers)
                    stop.set()
                    if enqueuer:
                        enqueuer.join()
                    r["shadow_rows"] = shadow_rows_since(started)
                    if variant != NONE:
                        stop_all()
                    if variant == SCORING:
                        drain_queue()
                    results[variant].append(r)
                    requests = r["rps"] * args.turn_seconds
                    print(
                        f"round {turn + 1} {variant:<24} {r['rps']:6.0f} req/s  p50 {r['p50']:6.2f} ms  "
                        f"p99 {r['p99']:6.2f} ms  web workers' CPU {r['cpu_us']:5.0f} us/request  "
                        f"cores idle {r['idle']:4.0%}  non-2xx {r['errors']}  shadow predictions stored "
                        f"during the turn {r['shadow_rows']:,} (3 x {requests:,.0f} requests)",
                        flush=True,
                    )
            base = results[NONE]
            for variant in VARIANTS:
                rows = results[variant]
                rps = statistics.median(r["rps"] for r in rows)
                p99 = statistics.median(r["p99"] for r in rows)
                ratios = [r["rps"] / b["rps"] for r, b in zip(rows, base, strict=True)]
                p99_ratios = [r["p99"] / b["p99"] for r, b in zip(rows, base, strict=True)]
                cpu_ratios = [r["cpu_us"] / b["cpu_us"] for r, b in zip(rows, base, strict=True)]
                print(
                    f"{variant:<24} median {rps:6.0f} req/s, p99 {p99:6.2f} ms; to no shadow in the same round: "
                    f"rate {statistics.median(ratios):.3f} ({min(ratios):.3f} to {max(ratios):.3f}), "
                    f"p99 {statistics.median(p99_ratios):.3f} ({min(p99_ratios):.3f} to {max(p99_ratios):.3f}), "
                    f"web workers' CPU per request {statistics.median(cpu_ratios):.3f}"
                )
    finally:
        cluster.terminate()
        with suppress(subprocess.TimeoutExpired):
            cluster.wait(timeout=30)
        with suppress(ProcessLookupError):
            os.killpg(cluster.pid, 9)


if __name__ == "__main__":
    main()
