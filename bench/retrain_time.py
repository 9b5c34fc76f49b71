"""Retraining after a new file lands: a 10,000-row file on top of 284,807 rows already seen.
Prints the wall time and peak memory of `manage.py retrain` and each candidate's training time
(warm start on the new rows, full retrain on everything), on local folders and on an S3 API
server (moto's server mode on 127.0.0.1, through django-storages and boto3).

    .venv/bin/python bench/retrain_time.py [--backend local|s3|both]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import MANAGE, environment, free_port  # noqa: E402
from modelops.ml import synthetic  # noqa: E402


def csv_bytes(rows: int, *, seed: int, fraud_rate: float, drift: float = 0.0, start_time: float = 0.0) -> bytes:
    buffer = io.StringIO()
    frame = synthetic.generate(rows=rows, fraud_rate=fraud_rate, seed=seed, drift=drift, start_time=start_time)
    synthetic.write_csv(frame, buffer)
    return buffer.getvalue().encode()


def run(env: dict, *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stderr+stdout) of one manage.py command."""
    started = time.perf_counter()
    process = subprocess.Popen([*MANAGE, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024, output


def bench(backend: str, seen: bytes, new: bytes) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        env = environment(data_dir)
        server = None
        if backend == "s3":
            import boto3
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per S3 request otherwise
            port = free_port()
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            env.update(
                S3_BUCKET_NAME="fraud-bench",
                S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                REGION_NAME="us-east-1",
            )
            client = boto3.client(
                "s3",
                endpoint_url=env["S3_ENDPOINT_URL"],
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name="us-east-1",
            )
            client.create_bucket(Bucket="fraud-bench")

            def drop(name: str, data: bytes) -> None:
                client.put_object(Bucket="fraud-bench", Key=f"incoming/{name}", Body=data)
        else:

            def drop(name: str, data: bytes) -> None:
                folder = Path(data_dir) / "bucket" / "incoming"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)

        try:
            run(env, "migrate", "--noinput")
            drop("creditcard_20260101_000000.csv", seen)
            run(env, "scan_bucket")
            first, _, _ = run(env, "retrain")
            drop("creditcard_20260102_000000.csv", new)
            scan_seconds, _, _ = run(env, "scan_bucket")
            seconds, peak, output = run(env, "retrain")
        finally:
            if server is not None:
                server.stop()
    out = sys.stdout.write
    out(f"[{backend}] first model on 284,807 rows: {first:.1f} s; scan of the new file: {scan_seconds:.1f} s\n")
    for line in output.splitlines():
        if re.search(r"trained in|trees|shared hold-out|activated|rejected|skipped", line):
            out(f"[{backend}]   {line.strip()}\n")
    out(f"[{backend}] manage.py retrain with the new file: {seconds:.1f} s end to end, peak RSS {peak:.0f} MiB\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["local", "s3", "both"], default="both")
    args = parser.parse_args()
    # The full dataset's size and fraud rate; the new file is labelled data with 1 % frauds, so
    # its newest fifth (the shared hold-out) holds enough frauds to compare models on.
    seen = csv_bytes(284_807, seed=1, fraud_rate=0.00172)
    new = csv_bytes(10_000, seed=2, fraud_rate=0.01, drift=0.3)
    sys.stdout.write(f"{os.cpu_count()} cores\n")
    for backend in ("local", "s3") if args.backend == "both" else (args.backend,):
        bench(backend, seen, new)


if __name__ == "__main__":
    main()
