"""What one request costs inside the process, without the network or the load generator:
requests go straight to the WSGI application. Prints CPU microseconds per request (user and
system); under callgrind it counts instructions instead, which stay the same however busy the
machine is:

    .venv/bin/python bench/request_cost.py --data-dir var/bench /detect-fraud
    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/request_cost.py \\
        --data-dir var/bench --callgrind /detect-fraud      # then: instructions / requests

`/bench/constant` is the constant DRF endpoint; `batch` posts 10,000 transactions. Uses the
data folder of bench/http_scoring.py (its database and active model); rows are stored there,
except with --without-storing, which measures the same requests storing nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import without_storing
from bench.harness import environment


def set_environment(data_dir: str, **extra: str) -> None:
    """The settings of an in-process run on the data folder of bench/http_scoring.py: its SQLite
    database and local folders even if the caller's environment names a database, Redis or a
    bucket (harness.environment; other settings pass through), with the API as the served
    benchmarks call it (harness.SERVING)."""
    settings = environment(Path(data_dir).resolve(), settings="bench.settings", **extra)
    os.environ.clear()  # what harness.environment leaves out must go too
    os.environ.update(settings)


def post(application, path: str, body: bytes) -> None:
    """POST ``body`` as JSON to ``path`` straight through the WSGI application; raises unless 200."""
    environ = {
        **{"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": ""},
        **{"SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http"},
        **{"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)},
    }
    status = []
    b"".join(application(environ, lambda s, headers, exc_info=None: status.append(s)))
    if not status[0].startswith("200"):
        raise RuntimeError(f"{path} answered {status[0]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", help="/detect-fraud, /bench/constant or batch")
    parser.add_argument("--data-dir", default="var/bench")
    parser.add_argument("--requests", type=int, default=0, help="default: 500, or 3 batches")
    parser.add_argument("--callgrind", action="store_true", help="switch callgrind's counting on for the requests")
    parser.add_argument(
        "--without-storing",
        action="store_true",
        help="/detect-fraud stores nothing (bench/without_storing.py): what storing costs, by difference",
    )
    args = parser.parse_args()
    set_environment(args.data_dir)
    from fraudsite.wsgi import application
    from modelops.ml import synthetic
    from modelops.ml.schema import FEATURES

    if args.without_storing:
        without_storing.patch()

    batch = args.path == "batch"
    frame = synthetic.generate(rows=10_000 if batch else 1, fraud_rate=0.01, seed=11)
    rows = [{k: float(v) for k, v in zip(FEATURES, values, strict=True)} for values in frame[list(FEATURES)].to_numpy()]
    body = json.dumps(rows if batch else rows[0]).encode()
    path = "/detect-fraud" if batch else args.path
    count = args.requests or (3 if batch else 500)

    for _ in range(1 if batch else 50):  # loads the model, warms the caches
        post(application, path, body)
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    started = os.times()
    for _ in range(count):
        post(application, path, body)
    ended = os.times()
    user, system = ended.user - started.user, ended.system - started.system
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)
    label = f"{args.path} (storing nothing)" if args.without_storing else args.path
    sys.stdout.write(
        f"{label}: {count} requests, {(user + system) / count * 1e6:,.0f} us of CPU each "
        f"({user / count * 1e6:,.0f} user, {system / count * 1e6:,.0f} system)\n"
    )


if __name__ == "__main__":
    main()
