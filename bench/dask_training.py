"""Retraining on generated bucket files with either backend: wall time of `manage.py retrain`, the peak
memory of its (Django) process, and on Dask each worker's peak memory (from the run's log).

    .venv/bin/python bench/dask_training.py --rows 2800000 --files 10 --backend local --max-rows 3000000
    .venv/bin/python bench/dask_training.py --rows 2800000 --files 10 --backend dask
    .venv/bin/python bench/dask_training.py --rows 10000000 --files 10 --backend dask
    .venv/bin/python bench/dask_training.py --rows 10000000 --files 10 --backend local

The files are written to the local bucket folder (DATA_DIR/bucket/incoming) and scanned first; the
scan is not timed. The Dask runs start a LocalCluster of DASK_LOCAL_WORKERS (default 2) workers of
DASK_LOCAL_THREADS (default 1) threads. --max-rows sets RETRAIN_MAX_ROWS for the local backend.
--data DIR keeps the generated files there (hard links) and reuses them: one folder per --rows;
--generate-only writes them and stops, so the timed run can start on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import MANAGE, ROOT, environment, manage


def peak_of(pid: int, peaks: list[int], done: threading.Event) -> None:
    """Follow the process's own peak resident set (VmHWM, its children not counted) until it ends."""
    status = Path(f"/proc/{pid}/status")
    while not done.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_800_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--backend", choices=("local", "dask"), required=True)
    parser.add_argument("--max-rows", type=int, help="RETRAIN_MAX_ROWS for the run")
    parser.add_argument("--fraud-rate", type=float, default=0.00172)
    parser.add_argument("--data", help="a folder to keep the generated files in and reuse on the next run")
    parser.add_argument("--generate-only", action="store_true", help="write the files to --data and stop")
    args = parser.parse_args()
    if args.generate_only and not args.data:
        parser.error("--generate-only needs --data")
    with tempfile.TemporaryDirectory() as data_dir:
        extra = {"RETRAIN_MAX_ROWS": str(args.max_rows)} if args.max_rows else {}
        # A file of a million generated rows is about 540 MiB, over the default limit of 512 MiB.
        extra["MAX_DATA_FILE_BYTES"] = str(2**31)
        env = environment(data_dir, **extra)
        manage(env, "migrate", "--noinput")
        incoming = Path(data_dir) / "bucket" / "incoming"
        incoming.mkdir(parents=True)
        kept = Path(args.data) if args.data else None
        started = time.perf_counter()
        for index in range(args.files):
            rows = args.rows // args.files + (1 if index < args.rows % args.files else 0)
            name = f"creditcard_202601{index + 1:02d}_000000.csv"
            out = incoming / name
            if kept is not None and (kept / name).exists():
                os.link(kept / name, out)
                continue
            manage(
                env,
                "generate_data",
                "--rows",
                str(rows),
                "--fraud-rate",
                str(args.fraud_rate),
                "--seed",
                str(index + 1),
                "--drift",
                str(0.1 * index / args.files),
                "--out",
                str(out),
            )
            if kept is not None:
                kept.mkdir(parents=True, exist_ok=True)
                os.link(out, kept / name)
        size = sum(f.stat().st_size for f in incoming.iterdir())
        print(
            f"wrote {args.rows} rows in {args.files} files, {size / 2**20:.0f} MiB, "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        if args.generate_only:
            return
        manage(env, "scan_bucket")

        started = time.perf_counter()
        process = subprocess.Popen(
            [*MANAGE, "retrain", "--backend", args.backend],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        peaks: list[int] = []
        done = threading.Event()
        watcher = threading.Thread(target=peak_of, args=(process.pid, peaks, done), daemon=True)
        watcher.start()
        out, err = process.communicate()
        seconds = time.perf_counter() - started
        done.set()
        sys.stdout.write(err)
        sys.stdout.write(out)
        workers = re.search(r"the workers' peak memory since they started: ([\d, ]+) MiB", err)
        print(
            f"{args.backend}: {args.rows} rows in {args.files} files, retrain {seconds:.0f} s, "
            f"Django process peak {max(peaks, default=0) / 1024:.0f} MiB"
            + (f", workers' peak {workers.group(1)} MiB" if workers else "")
            + f", exit {process.returncode}"
        )


if __name__ == "__main__":
    main()
