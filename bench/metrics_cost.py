"""What the Prometheus metrics cost on the single-request path: POST /detect-fraud throughput
with METRICS_ENABLED=true against false, in alternating turns of one run.

Two gunicorns on one data folder, as bench/http_scoring.py serves (2 sync workers, access and
request logs off, the API open, no rate limit), each with a fresh PROMETHEUS_MULTIPROC_DIR as
scripts/serve.sh gives it: one counting (request latency per endpoint and status, decisions per
version and outcome, into the multiprocess files), one with METRICS_ENABLED=false. Only one is
under load at a time: `wrk` at concurrency 8 on each in turn, the order swapped every turn (ABBA),
so that a machine whose speed drifts weighs on both alike. Prints each turn's requests/s and the
workers' CPU per request, the ratio of enabled to disabled in each pair of turns, their median,
and the cost (1 - the median ratio) against the 3 % goal; then what /metrics of each counted,
which shows the variants are what they say; and, in a process of its own, what the two calls of
common/metrics.py on the request path take per request, with the workers' CPU per request.

    .venv/bin/python bench/metrics_cost.py --data-dir DIR
    .venv/bin/python bench/metrics_cost.py --data-dir DIR --database-url postgres://postgres@127.0.0.1:5432/bench_metrics
    .venv/bin/python bench/metrics_cost.py ... --turns 12 --turn-seconds 5

Needs wrk (Debian package `wrk`). The first run trains a model on 284,807 generated rows. Every
turn stores what it scores; both variants write to the same database, in turns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import TRANSACTION, environment, gunicorn, manage, workers_of  # noqa: E402
from bench.http_scoring import wrk  # noqa: E402

VARIANTS = ("enabled", "disabled")


def counted(port: int) -> tuple[float, float]:
    """(requests to /detect-fraud, decisions) that GET /metrics of this server counts."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    requests = decisions = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fraud_http_request_seconds_count" and sample.labels.get("endpoint") == "detect-fraud":
                requests += sample.value
            elif sample.name == "fraud_decisions_total":
                decisions += sample.value
    return requests, decisions


def in_process(calls: int = 20_000) -> None:
    """In this process (Django set up on an environment with PROMETHEUS_MULTIPROC_DIR): what the
    request path's two calls cost, common.metrics.observe_request and count_decisions, per request."""
    import django

    django.setup()
    from types import SimpleNamespace

    from django.conf import settings

    from common import metrics

    request = SimpleNamespace(resolver_match=SimpleNamespace(url_name="detect-fraud"))
    response = SimpleNamespace(status_code=200)
    figures = {}
    for enabled in (True, False, True, False):
        settings.METRICS_ENABLED = enabled
        started = time.perf_counter()
        for n in range(calls):
            metrics.observe_request(request, response, 0.004)
            metrics.count_decisions(1, n % 200 == 0, 1)
        figures.setdefault(enabled, []).append((time.perf_counter() - started) / calls * 1e6)
    print(
        f"in process, {calls:,} requests' calls: {min(figures[True]):.1f} us per request counting, "
        f"{min(figures[False]):.1f} us with METRICS_ENABLED=false"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--turns", type=int, default=10, help="turns of each variant (an even number: ABBA)")
    parser.add_argument("--turn-seconds", type=int, default=4)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.in_process:
        in_process()
        return

    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    base = environment(args.data_dir, database_url=args.database_url)
    for name in ("PROMETHEUS_MULTIPROC_DIR", "METRICS_TOKEN"):  # the caller's, if any
        base.pop(name, None)
    manage(base, "migrate", "--noinput")
    manage(base, "ensure_model", timeout=900)
    body_file = Path(args.data_dir) / "one_transaction.json"
    body_file.write_text(json.dumps(TRANSACTION))

    with ExitStack() as stack:
        servers = {}
        for variant in VARIANTS:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"prometheus-{variant}-"))
            env = {
                **base,
                "PROMETHEUS_MULTIPROC_DIR": folder,
                "METRICS_ENABLED": "true" if variant == "enabled" else "false",
            }
            server, port = stack.enter_context(gunicorn(env, workers=args.workers))
            deadline = time.monotonic() + 60
            while len(workers_of(server.pid)) < args.workers:
                if time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn ({variant}) did not start {args.workers} workers in 60 s")
                time.sleep(0.1)
            servers[variant] = (port, workers_of(server.pid))
        for port, workers in servers.values():  # warm up: every worker loads the model
            wrk(f"http://127.0.0.1:{port}/detect-fraud", body_file, args.connections, 3, workers)

        database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
        print(
            f"gunicorn {args.workers} sync workers per variant, {database}, POST /detect-fraud (one transaction), "
            f"wrk c={args.connections}, turns of {args.turn_seconds} s, {os.cpu_count()} cores"
        )
        results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
        ratios, cpu_ratios = [], []
        for turn in range(args.turns):
            order = VARIANTS if turn % 4 in (0, 3) else VARIANTS[::-1]  # ABBA BAAB ...
            for variant in order:
                port, workers = servers[variant]
                url = f"http://127.0.0.1:{port}/detect-fraud"
                r = wrk(url, body_file, args.connections, args.turn_seconds, workers)
                if r["errors"]:
                    raise SystemExit(f"{variant}: {r['errors']} answers were not 2xx")
                results[variant].append(r)
                print(
                    f"turn {turn + 1:2}, {variant:<8}: {r['rps']:6.0f} req/s  p50 {r['p50']:5.2f} ms  "
                    f"p99 {r['p99']:6.2f} ms  workers' CPU {r['cpu_us']:5.0f} us/request  cores idle {r['idle']:4.0%}"
                )
            on, off = results["enabled"][-1], results["disabled"][-1]
            ratios.append(on["rps"] / off["rps"])
            cpu_ratios.append(on["cpu_us"] / off["cpu_us"])
        median = statistics.median(ratios)
        print(
            f"req/s enabled / disabled, median of {len(ratios)} turns: {median:.3f} "
            f"({min(ratios):.3f} to {max(ratios):.3f}); quartiles {statistics.quantiles(ratios, n=4)[0]:.3f} "
            f"to {statistics.quantiles(ratios, n=4)[2]:.3f}"
        )
        print(
            f"workers' CPU per request enabled / disabled, median: {statistics.median(cpu_ratios):.3f} "
            f"({min(cpu_ratios):.3f} to {max(cpu_ratios):.3f})"
        )
        for variant in VARIANTS:
            rates = [r["rps"] for r in results[variant]]
            print(f"{variant}: median {statistics.median(rates):.0f} req/s ({min(rates):.0f} to {max(rates):.0f})")
        cost = 1 - median
        print(f"cost of the metrics: {cost:.1%} of the throughput (goal: under 3 %)")
        for variant, (port, _) in servers.items():
            requests, decisions = counted(port)
            print(f"/metrics of the {variant} server: {requests:,.0f} requests, {decisions:,.0f} transactions scored")
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="prometheus-in-process-"))
        env = {**base, "PROMETHEUS_MULTIPROC_DIR": folder, "LOG_LEVEL": "WARNING"}
        subprocess.run([sys.executable, __file__, "--in-process"], env=env, cwd=ROOT, check=True)
        cpu = statistics.median(r["cpu_us"] for r in results["disabled"])
        print(f"  against the {cpu:,.0f} us of workers' CPU per request of the disabled turns (median)")


if __name__ == "__main__":
    main()
