"""Scenario 8 of docs/RELIABILITY.md: a web worker's memory and the scoring latency over a long
run, on a database that already holds a million scored transactions.

Copies the SQLite database that bench/review_queue.py filled (1,000,000 transactions), trains
and activates a small model beside it, serves it with gunicorn (2 sync workers, as `make run`),
and has --clients threads post single transactions for --seconds. Every --every seconds it
prints each worker's resident memory (VmRSS) and the latency of the requests of that interval.

    .venv/bin/python bench/review_queue.py          # once: fills var/bench-queue
    .venv/bin/python bench/soak.py --seconds 600
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import TRANSACTION, environment, gunicorn, manage, percentile, workers_of  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-db", default=str(ROOT / "var" / "bench-queue" / "db.sqlite3"))
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--every", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    data_dir = folder / "data"
    data_dir.mkdir()
    shutil.copy(args.source_db, data_dir / "db.sqlite3")
    # Not the caller's queue and training settings: they would change what is trained and run.
    env = environment(data_dir, caller_tuning=False, TRAIN_N_ESTIMATORS="200")
    csv = folder / "train.csv"
    for argv in (
        ["migrate", "--noinput"],
        ["generate_data", "--rows", "50000", "--fraud-rate", "0.01", "--seed", "5", "--out", str(csv)],
        ["train_model", "--csv", str(csv), "--activate"],
    ):
        manage(env, *argv, timeout=600)

    try:
        with gunicorn(env, log=folder / "gunicorn.log") as (server, port):
            measure(args, server.pid, port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(args: argparse.Namespace, master: int, port: int) -> None:
    """Post from the client threads for --seconds; print the workers' memory and the latency."""
    workers = workers_of(master)
    body = json.dumps(TRANSACTION).encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Content-Type": "application/json"}
        while not stop.is_set():
            started = time.perf_counter()
            try:
                connection.request("POST", "/detect-fraud", body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError:
                status = 0
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            with lock:
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    print(f"{args.clients} clients, {args.seconds} s, workers {workers}")
    print(f"{'second':>6} {'requests':>9} {'p50 ms':>7} {'p99 ms':>7}  " + "  ".join(f"RSS {p} MiB" for p in workers))
    print(f"{0:>6} {'':>9} {'':>7} {'':>7}  " + "  ".join(f"{rss_kib(p) / 1024:>12.1f}" for p in workers))
    for thread in threads:
        thread.start()
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        time.sleep(args.every)
        with lock:
            window, latencies[:] = latencies[:], []
        p50, p99 = percentile(window, 50) * 1000, percentile(window, 99) * 1000
        elapsed = round(time.monotonic() - started)
        print(
            f"{elapsed:>6} {len(window):>9} {p50:>7.2f} {p99:>7.2f}  "
            + "  ".join(f"{rss_kib(p) / 1024:>12.1f}" for p in workers),
            flush=True,
        )
    stop.set()
    for thread in threads:
        thread.join()
    print(f"requests: {sum(statuses.values())}, answers by status: {statuses}")
    if workers_of(master) != workers:
        print("a worker was replaced during the run")


if __name__ == "__main__":
    main()
