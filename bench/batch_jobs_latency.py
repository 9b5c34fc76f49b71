"""Single-request latency while batch jobs are scored, against the same requests with no job.

The app as `make run` serves it (scripts/gunicorn_conf.py, an API key required, the request log
and rate limit on) and a `manage.py qcluster` beside it, started at the niceness serve.sh gives it
(--nice, 10 by default; 0: the same priority as the web workers). Single clients post one
transaction at a time throughout; turns alternate between no job and a job of --rows rows posted
to /api/batches and scored by the cluster. Prints the p50 and p99 of each turn, then the median
p99 with jobs over the median p99 without.

    .venv/bin/python bench/batch_jobs_latency.py [--rows 20000] [--turns 4] [--turn-seconds 8]
                                                 [--clients 2] [--nice 10] [--database-url URL]
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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import MANAGE, TRANSACTION, deployed_environment, gunicorn, percentile  # noqa: E402


def call(port: int, path: str, key: str, payload=None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-batches"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--turn-seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="A setting for the app")
    args = parser.parse_args()

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = {"BATCH_MAX_ROWS": str(max(args.rows, 100_000)), **dict(item.split("=", 1) for item in args.set)}
    env, key = deployed_environment(data_dir, database_url=args.database_url, **settings)
    from modelops.ml import synthetic
    from modelops.ml.schema import FEATURES

    frame = synthetic.generate(rows=args.rows, fraud_rate=0.01, seed=5)[list(FEATURES)].to_numpy()
    job_rows = [dict(zip(FEATURES, map(float, values), strict=True)) for values in frame]

    cluster_log = (data_dir / "qcluster.log").open("wb")
    cluster = subprocess.Popen(
        ["nice", "-n", str(args.nice), *MANAGE, "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=cluster_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    latencies: list[tuple[float, float]] = []  # (when it ended, seconds)
    stop = threading.Event()
    try:
        with gunicorn(env, as_deployed=True, log=data_dir / "server.log") as (_, port):

            def single() -> None:
                while not stop.is_set():
                    started = time.perf_counter()
                    call(port, "/detect-fraud", key, TRANSACTION)
                    latencies.append((time.perf_counter(), time.perf_counter() - started))

            clients = [threading.Thread(target=single) for _ in range(args.clients)]
            for thread in clients:
                thread.start()
            time.sleep(2)  # warm up
            quiet, loaded = [], []
            for turn in range(1, args.turns + 1):
                for kind in ("no job", "jobs"):
                    began, scored = time.perf_counter(), 0
                    while time.perf_counter() - began < args.turn_seconds:
                        if kind == "no job":
                            time.sleep(0.1)
                            continue
                        _, job = call(port, "/api/batches", key, job_rows)
                        while (state := call(port, f"/api/batches/{job['id']}", key)[1])["status"] in (
                            "queued",
                            "running",
                        ):
                            time.sleep(0.2)
                        if state["status"] != "done":
                            raise SystemExit(f"a job ended {state['status']}: {state}")
                        scored += state["rows_scored"]
                    ended = time.perf_counter()
                    seconds = [s for when, s in list(latencies) if began <= when <= ended]
                    p50, p99 = percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000
                    (loaded if kind == "jobs" else quiet).append(p99)
                    rate = f", {scored / (ended - began):,.0f} job rows/s" if scored else ""
                    print(
                        f"turn {turn}, {kind:<6}: {len(seconds):5} requests, p50 {p50:6.2f} ms, p99 {p99:6.2f} ms{rate}"
                    )
            stop.set()
            for thread in clients:
                thread.join()
    finally:
        stop.set()
        cluster.terminate()
        cluster.wait(timeout=60)
        cluster_log.close()
    print(
        f"\ncluster at niceness {args.nice}, {args.clients} single clients, jobs of {args.rows:,} rows, "
        + (f"{' '.join(args.set)}, " if args.set else "")
        + f"{os.cpu_count()} cores: p99 with jobs / p99 without, medians of {args.turns} turns: "
        f"{statistics.median(loaded) / statistics.median(quiet):.2f}"
    )


if __name__ == "__main__":
    main()
