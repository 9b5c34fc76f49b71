"""Where an as-deployed worker's time goes: py-spy samples one gunicorn worker serving POST
/detect-fraud as `make run` serves it (an API key, the request log, the rate limit, metrics), and
prints the share of samples inside each function (inclusive), the largest first.

    .venv/bin/python bench/request_profile.py [--seconds 20] [--top 60] [--database-url URL]

Needs py-spy (`.venv/bin/pip install py-spy`; tracing another process may need root) and wrk. Sample
shares, unlike times, barely move with this machine's speed.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import TRANSACTION, deployed_environment, gunicorn, workers_of  # noqa: E402
from bench.http_scoring import LUA  # noqa: E402


def shares(raw: str) -> tuple[int, list[tuple[float, str]]]:
    """py-spy's raw (collapsed) stacks -> the sample count and each function's inclusive share."""
    total, inside = 0, collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in {re.sub(r":\d+\)", ")", f) for f in stack.split(";")}:
            inside[frame] += int(count)
    return total, [(n / total, frame) for frame, n in inside.most_common()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-profile"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        raise SystemExit("needs py-spy: .venv/bin/pip install py-spy")

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    env, key = deployed_environment(data_dir, database_url=args.database_url)
    body = data_dir / "one_transaction.json"
    body.write_text(json.dumps(TRANSACTION))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(body=body, headers=f'wrk.headers["Authorization"] = "Bearer {key}"'))

    with gunicorn(env, workers=1, as_deployed=True, log=data_dir / "server.log") as (server, port):
        while not (workers := workers_of(server.pid)):
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/detect-fraud"
        subprocess.run(["wrk", "-t1", "-c2", "-d3s", "-s", script.name, url], capture_output=True, check=True)
        load = subprocess.Popen(
            ["wrk", "-t1", "-c2", f"-d{args.seconds + 4}s", "-s", script.name, url], stdout=subprocess.PIPE, text=True
        )
        time.sleep(1)
        raw = data_dir / "profile.txt"
        record = [str(spy), "record", "-p", str(workers[0]), "-d", str(args.seconds), "-r", "500"]
        subprocess.run([*record, "-f", "raw", "-o", str(raw), "--nonblocking"], capture_output=True, check=True)
        rate = re.search(r"Requests/sec:\s+([\d.]+)", load.communicate()[0]).group(1)
    total, ranked = shares(raw.read_text())
    print(f"one sync worker as deployed, wrk -c2: {float(rate):,.0f} req/s; {total:,} samples")
    for share, frame in ranked[: args.top]:
        print(f"{share:6.1%}  {frame[:140]}")


if __name__ == "__main__":
    main()
