"""``python -m fuzz [--seconds N] [target ...]``: run each target (all by default) for N seconds,
then print a line for each and exit non-zero if any found something.

Atheris targets run one at a time in a process of their own, their output in var/fuzz/TARGET/
log.txt (its end is printed when a target fails); the pytest targets run in one pytest process,
which prints its own report.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from . import ATHERIS_TARGETS, PYTEST_TARGETS, TARGETS

ROOT = Path(__file__).resolve().parent.parent
# Time a run may take past its budget (imports, seeds, pytest's test database) before it is
# taken for hung and stopped.
SETUP_SECONDS = 180


def _run_atheris(name: str, seconds: int) -> tuple[bool, str]:
    folder = ROOT / "var" / "fuzz" / name
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "log.txt"
    started = time.time()
    command = [sys.executable, "-m", "fuzz.engine", name, f"-max_total_time={seconds}"]
    with log.open("wb") as out:
        try:
            code = subprocess.run(
                command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=seconds + SETUP_SECONDS
            )
        except subprocess.TimeoutExpired:
            return False, f"still running {seconds + SETUP_SECONDS} s after it started: see {log}"
    text = log.read_text(errors="replace")
    runs = re.search(r"Done (\d+) runs in (\d+) second", text)
    if code.returncode == 0 and runs:
        return True, f"{int(runs[1]):,} inputs in {runs[2]} s"
    print(f"--- the end of {log}:", *text.splitlines()[-60:], sep="\n")
    findings = sorted(str(path) for path in folder.glob("*-*") if path.stat().st_mtime >= started)
    return False, f"exit code {code.returncode}; findings: {', '.join(findings) or 'none written'}"


def _run_pytest(names: list[str], seconds: int) -> tuple[bool, str]:
    files = [PYTEST_TARGETS[name] for name in names]
    command = [sys.executable, "-m", "pytest", "-m", "fuzz", "-q", "-p", "no:cacheprovider", *files]
    environment = {**os.environ, "FUZZ_SECONDS": str(seconds)}
    try:
        code = subprocess.run(command, cwd=ROOT, env=environment, timeout=seconds * len(names) + SETUP_SECONDS)
    except subprocess.TimeoutExpired:
        return False, "pytest was stopped: it ran far past its time"
    return code.returncode == 0, f"pytest exit code {code.returncode}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="how long each target runs (default 60)")
    parser.add_argument("targets", nargs="*", metavar="target", help=f"any of: {', '.join(TARGETS)} (default all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)}")
    selected = args.targets or list(TARGETS)

    results: list[tuple[str, bool, str]] = []
    started = time.monotonic()
    for name in (n for n in selected if n in ATHERIS_TARGETS):
        print(f"== fuzz {name} (atheris, {args.seconds} s)", flush=True)
        results.append((name, *_run_atheris(name, args.seconds)))
    in_pytest = [n for n in selected if n in PYTEST_TARGETS]
    if in_pytest:
        print(f"== fuzz {', '.join(in_pytest)} (hypothesis in pytest, {args.seconds} s each)", flush=True)
        results.append((", ".join(in_pytest), *_run_pytest(in_pytest, args.seconds)))

    for name, ok, summary in results:
        print(f"{'ok' if ok else 'FAILED':6} {name}: {summary}")
    print(f"fuzzing took {time.monotonic() - started:.0f} s")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
