"""Batches scored beside single transactions while the active version changes: no failed
request, every item of a batch scored by one version, every acknowledged item stored with it.

On the deployment of drills/db_restart.py, beside the activator of drills/activation_under_load.py,
batch and single clients post; every answer is then checked against the stored predictions.

    .venv/bin/python drills/batch_under_load.py [--seconds 30] [--batch 1000] [--batch-clients 2]
                                                 [--single-clients 4] [--every 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import TRANSACTION, client_threads, percentile, post_json  # noqa: E402
from drills.activation_under_load import run_beside_activator  # noqa: E402
from drills.db_restart import deployment, stored_versions  # noqa: E402

# (kind, seconds, status, [(transaction_id, model_version), ...] or the error body)
Answer = tuple[str, float, int, object]


def timed_post(port: int, kind: str, payload) -> Answer:
    started = time.perf_counter()
    status, body = post_json(port, payload, timeout=60)
    answer = json.loads(body) if status == 200 else body  # reading the answer is part of the request
    seconds = time.perf_counter() - started
    if status == 200:
        answer = [(r["transaction_id"], r["model_version"]) for r in (answer if kind == "batch" else [answer])]
    return kind, seconds, status, answer


def batch_clients(port: int, count: int, size: int, stop, out) -> None:
    """``count`` threads posting lists of ``size`` transactions until ``stop``; puts their
    answers on ``out``."""

    def request(number: int, sequence: int) -> Answer:
        payload = [
            {**TRANSACTION, "Amount": float(i % 500), "external_id": f"b{number}-{sequence}-{i}"} for i in range(size)
        ]
        return timed_post(port, "batch", payload)

    threads, answers = client_threads(count, request, stop)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batch-clients", type=int, default=2)
    parser.add_argument("--single-clients", type=int, default=4)
    parser.add_argument("--every", type=float, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    args = parser.parse_args()

    with deployment(versions=2, workers=args.workers) as (postgres, port, env):
        stop = threading.Event()

        def single(number: int, sequence: int) -> Answer:
            return timed_post(port, "single", {**TRANSACTION, "external_id": f"s{number}-{sequence}"})

        # Batch clients run in a process of their own: writing and reading a 1,000-item JSON
        # body holds the interpreter lock for milliseconds, which the single clients' threads
        # would otherwise wait for and count as the server's latency.
        batch_answers = multiprocessing.Queue()
        batch_stop = multiprocessing.Event()
        batches = multiprocessing.Process(
            target=batch_clients, args=(port, args.batch_clients, args.batch, batch_stop, batch_answers)
        )
        batches.start()
        threads, answers = client_threads(args.single_clients, single, stop)
        stdout = run_beside_activator(env, threads, stop, seconds=args.seconds, every=args.every)
        batch_stop.set()
        answers = answers + batch_answers.get(timeout=300)
        batches.join()

        stored = stored_versions(postgres)

    statuses = collections.Counter((kind, status) for kind, _, status, _ in answers)
    mixed_batches = items = not_stored = stored_differently = 0
    for kind, _, status, body in answers:
        if status != 200:
            continue
        if kind == "batch" and len({version for _, version in body}) != 1:
            mixed_batches += 1
        for transaction_id, answered_version in body:
            items += 1
            version = stored.get(transaction_id)
            if version is None:
                not_stored += 1
            elif version != answered_version:
                stored_differently += 1
    failed = sum(count for (_, status), count in statuses.items() if status != 200)
    print(
        f"{args.seconds:g} s, {stdout.strip()} switches (one every {args.every:g} s); "
        f"{args.batch_clients} batch clients ({args.batch} transactions a request), "
        f"{args.single_clients} single clients"
    )
    for kind in ("batch", "single"):
        seconds = [s for k, s, status, _ in answers if k == kind and status == 200]
        by_status = {status: count for (k, status), count in sorted(statuses.items()) if k == kind}
        print(
            f"{kind}: {by_status}; latency p50 {percentile(seconds, 50) * 1000:.0f} ms, "
            f"p99 {percentile(seconds, 99) * 1000:.0f} ms"
        )
    print(
        f"failed requests: {failed}; batches answered by more than one version: {mixed_batches}; "
        f"items acknowledged: {items}, not stored: {not_stored}, stored with another version: {stored_differently}"
    )


if __name__ == "__main__":
    main()
