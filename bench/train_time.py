"""End-to-end `manage.py train_model` on generated data of the full dataset's size: wall time
and peak memory of the process (read, fit both strategies, refit, evaluate, save).

    .venv/bin/python bench/train_time.py [--rows 284807] [--busy 1] [--threads 1]

--busy N keeps N other processes spinning on the CPU while the model trains, as web workers
under load do on a machine that also trains; --threads sets TRAIN_THREADS for the run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import MANAGE, ROOT, environment, manage


def spin() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=284_807)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--busy", type=int, default=0, help="processes kept busy while training")
    parser.add_argument("--threads", help="TRAIN_THREADS for the training (default: the setting's default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        env = environment(data_dir)
        if args.threads is not None:
            env["TRAIN_THREADS"] = args.threads
        csv = Path(data_dir) / "creditcard_generated.csv"
        manage(env, "migrate", "--noinput")
        manage(env, "generate_data", "--rows", str(args.rows), "--seed", str(args.seed), "--out", str(csv))
        spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
        for spinner in spinners:
            spinner.start()
        started = time.perf_counter()
        done = subprocess.run(
            [*MANAGE, "train_model", "--csv", str(csv)], cwd=ROOT, env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        for spinner in spinners:
            spinner.kill()
        if done.returncode:
            raise SystemExit(done.stderr)
        # ru_maxrss of children is the largest resident set of any finished child, in KiB.
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        sys.stdout.write(done.stderr)
        sys.stdout.write(done.stdout)
        sys.stdout.write(
            f"train_model on {args.rows} generated rows: {seconds:.1f} s end to end, peak RSS {peak_mib:.0f} MiB "
            f"({os.cpu_count()} cores, {args.busy} kept busy, TRAIN_THREADS={env.get('TRAIN_THREADS', 'default')})\n"
        )


if __name__ == "__main__":
    main()
