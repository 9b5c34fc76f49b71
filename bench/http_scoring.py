"""HTTP throughput and latency of POST /detect-fraud under gunicorn, load from wrk on loopback.

Prints, for a constant DRF endpoint and for /detect-fraud at concurrency 1 and 8: requests/s,
p50 and p99, the gunicorn workers' CPU time per request (and how much of it was spent in the
kernel) and the share of time the machine's cores stood idle (Linux /proc); then
10,000-transaction batches: transactions scored and stored per second; then the two endpoints
at concurrency 8 in turns of a few seconds, and the ratio of their request rates in each turn
and its median. A machine whose speed drifts over a minute (a shared host) moves the separate
lines' ratio; alternating short turns keeps both endpoints on the same machine.

    .venv/bin/python bench/http_scoring.py                      # SQLite in var/bench
    .venv/bin/python bench/http_scoring.py --database-url postgres://postgres@127.0.0.1:5432/fraud_bench
    .venv/bin/python bench/http_scoring.py ... --set SCORING_SYNCHRONOUS_COMMIT=false   # a setting for the server

Needs wrk (Debian package `wrk`). The first run trains a model on 284,807 generated rows. Every
run stores what it scores (tens of thousands of transactions), and the batch
figure falls as the database grows: compare runs on a fresh --data-dir (or database).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import environment, gunicorn, manage, workers_of  # noqa: E402

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "r"); wrk.body = f:read("*a"); f:close()
"""


def cpu_ticks(pids: list[int]) -> tuple[int, int]:
    """(user, system) clock ticks used so far by these processes."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime
    return user, system


def idle_ticks() -> tuple[int, int]:
    """(idle, all) clock ticks of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[3], sum(values)


def wrk(url: str, body_file: Path, connections: int, seconds: int, workers: list[int]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(body=body_file))
    threads = 1 if connections == 1 else 2
    cpu_before, (idle_before, all_before) = cpu_ticks(workers), idle_ticks()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (user, system), (idle, every) = cpu_ticks(workers), idle_ticks()
    user, system = user - cpu_before[0], system - cpu_before[1]
    idle, every = idle - idle_before, every - all_before
    os.unlink(script.name)

    def latency_ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "cpu_us": (user + system) / os.sysconf("SC_CLK_TCK") / max(requests, 1) * 1e6,
        "system_us": system / os.sysconf("SC_CLK_TCK") / max(requests, 1) * 1e6,
        "idle": idle / every if every else 0.0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency_ms("50"),
        "p99": latency_ms("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def batch_rate(port: int, rows: list[dict], rounds: int) -> float:
    body = json.dumps(rows)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    for _ in range(rounds):
        conn.request("POST", "/detect-fraud", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"batch answered {response.status}")
    return rounds * len(rows) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only-single", action="store_true", help="Only /detect-fraud at concurrency 8")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class, e.g. gthread")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--turns", type=int, default=5, help="turns of each endpoint for the ratio; 0: none")
    parser.add_argument("--turn-seconds", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="A setting for the server")
    parser.add_argument(
        "--without-storing",
        action="store_true",
        help="/detect-fraud stores nothing (bench/without_storing.py): what storing costs, by difference",
    )
    args = parser.parse_args()

    env = {
        **environment(args.data_dir, database_url=args.database_url, settings="bench.settings"),
        **dict(item.split("=", 1) for item in args.set),
    }
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_model")

    from modelops.ml import synthetic
    from modelops.ml.schema import FEATURES

    frame = synthetic.generate(rows=10_000, fraud_rate=0.01, seed=11)
    rows = [
        {name: float(value) for name, value in zip(FEATURES, values, strict=True)}
        for values in frame[list(FEATURES)].to_numpy()
    ]
    body_file = Path(args.data_dir) / "one_transaction.json"
    body_file.write_text(json.dumps(rows[0]))

    app = "bench.without_storing:application()" if args.without_storing else "fraudsite.wsgi"
    served = gunicorn(env, app=app, workers=args.workers, worker_class=args.worker_class, threads=args.threads)
    with served as (server, port):
        base = f"http://127.0.0.1:{port}"
        workers: list[int] = []
        deadline = time.monotonic() + 60
        while len(workers) < args.workers:  # the CPU figures are the workers'
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn started {len(workers)} of {args.workers} workers in 60 s")
            time.sleep(0.1)
            workers = workers_of(server.pid)
        wrk(f"{base}/detect-fraud", body_file, 8, 3, workers)  # warm up: every worker loads the model
        database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
        out = sys.stdout.write
        kind = args.worker_class if args.threads == 1 else f"{args.worker_class} ({args.threads} threads)"
        out(f"gunicorn {args.workers} {kind} workers, {database}, wrk {args.seconds}s per line, {os.cpu_count()} cores")
        out(f", {' '.join(args.set)}" if args.set else "")
        out(", /detect-fraud storing nothing\n" if args.without_storing else "\n")
        endpoints = (("constant DRF endpoint", "/bench/constant"), ("POST /detect-fraud", "/detect-fraud"))
        for name, path in endpoints[1:] if args.only_single else endpoints:
            for connections in (8,) if args.only_single else (1, 8):
                r = wrk(base + path, body_file, connections, args.seconds, workers)
                out(
                    f"{name:<22} c={connections}: {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms  "
                    f"p99 {r['p99']:6.2f} ms  non-2xx {r['errors']}  "
                    f"workers' CPU {r['cpu_us']:4.0f} us/request ({r['system_us']:3.0f} in the kernel)  "
                    f"cores idle {r['idle']:4.0%}\n"
                )
        if not args.only_single:
            rate = batch_rate(port, rows, rounds=5)
            out(f"batch of {len(rows)} per request, 5 requests: {rate:,.0f} transactions/s scored and stored\n")
        ratios = []
        for turn in range(1, args.turns + 1):
            constant, scoring = (wrk(base + path, body_file, 8, args.turn_seconds, workers) for _, path in endpoints)
            ratios.append(scoring["rps"] / constant["rps"])
            out(
                f"turn {turn}, c=8: constant {constant['rps']:6.0f} req/s, /detect-fraud {scoring['rps']:6.0f} req/s, "
                f"ratio {ratios[-1]:.2f}\n"
            )
        if ratios:
            out(f"ratio of /detect-fraud to the constant endpoint, median of {len(ratios)} turns: ")
            out(f"{statistics.median(ratios):.2f}\n")


if __name__ == "__main__":
    main()
