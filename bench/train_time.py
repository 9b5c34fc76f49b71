"""End-to-end `manage.py train_model` on generated data of the full dataset's size: wall time
and peak memory of the process (read, fit both strategies, evaluate, save).

    .venv/bin/python bench/train_time.py [--rows 284807]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=284_807)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "DATA_DIR": data_dir, "DATABASE_URL": ""}
        csv = Path(data_dir) / "creditcard_generated.csv"
        python = sys.executable
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        subprocess.run(
            [
                python,
                "manage.py",
                "generate_data",
                "--rows",
                str(args.rows),
                "--seed",
                str(args.seed),
                "--out",
                str(csv),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        started = time.perf_counter()
        done = subprocess.run(
            [python, "manage.py", "train_model", "--csv", str(csv)], cwd=ROOT, env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(done.stderr)
        # ru_maxrss of children is the largest resident set of any finished child, in KiB.
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        sys.stdout.write(done.stderr)
        sys.stdout.write(done.stdout)
        sys.stdout.write(
            f"train_model on {args.rows} generated rows: {seconds:.1f} s end to end, peak RSS {peak_mib:.0f} MiB "
            f"({os.cpu_count()} cores)\n"
        )


if __name__ == "__main__":
    main()
