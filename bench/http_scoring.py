"""POST /detect-fraud as deployed against a yardstick, in alternating turns of wrk on loopback.

The yardstick is bench/yardstick.py: a one-file Django project whose DRF endpoint parses the body
and answers a constant, under gunicorn with the same number of sync workers. The app is served as
`make run` serves it (scripts/gunicorn_conf.py), with an API key required, the request log on, the
rate limit on (its default) and /metrics counting. Each turn
runs wrk for --turn-seconds against each target in turn, so a machine whose speed drifts moves
both alike; what it prints last is the ratio of the medians: throughput and p99 of the app over
the yardstick's.

    .venv/bin/python bench/http_scoring.py                      # SQLite in var/bench
    .venv/bin/python bench/http_scoring.py --database-url postgres://postgres@127.0.0.1:5432/fraud_bench
    .venv/bin/python bench/http_scoring.py --open        # also the app with no key, log or rate limit
    .venv/bin/python bench/http_scoring.py --set SCORING_SYNCHRONOUS_COMMIT=false   # a setting for the app

Needs wrk (Debian package `wrk`). The first run trains a model on 284,807 generated rows. Every
run stores what it scores (tens of thousands of transactions).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    TRANSACTION,
    deployed_environment,
    environment,
    free_port,
    gunicorn,
    wait_ready,
    workers_of,
)

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{headers}
local f = io.open("{body}", "r"); wrk.body = f:read("*a"); f:close()
"""


def cpu_ticks(pids: list[int]) -> tuple[int, int]:
    """(user, system) clock ticks used so far by these processes."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime
    return user, system


def idle_ticks() -> tuple[int, int]:
    """(idle, all) clock ticks of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[3], sum(values)


def wrk(
    url: str, body_file: Path, connections: int, seconds: int, workers: list[int], headers: dict | None = None
) -> dict:
    """wrk posting ``body_file`` to ``url``: requests/s, p50 and p99 (ms), non-2xx answers, and the
    CPU time of ``workers`` per request (µs), the share of the machine's time its cores stood idle."""
    lines = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in (headers or {}).items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(body=body_file, headers=lines))
    threads = 1 if connections == 1 else 2
    cpu_before, (idle_before, all_before) = cpu_ticks(workers), idle_ticks()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    user, system = (after - before for after, before in zip(cpu_ticks(workers), cpu_before, strict=True))
    idle, every = (after - before for after, before in zip(idle_ticks(), (idle_before, all_before), strict=True))
    os.unlink(script.name)

    def latency_ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "cpu_us": (user + system) / os.sysconf("SC_CLK_TCK") / max(requests, 1) * 1e6,
        "idle": idle / every if every else 0.0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency_ms("50"),
        "p99": latency_ms("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


@contextmanager
def granian(env: dict, *, workers: int):
    """granian serving the app's WSGI module on a free port; yields (process, port) once /readyz answers."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "fraudsite.wsgi:application"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--blocking-threads", "1"]
    with open(Path(env["DATA_DIR"]) / "granian.log", "wb") as log:
        server = subprocess.Popen(
            [*command, "--no-access-log"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(server, port, timeout=60, log=None)
            yield server, port
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def served_workers(server, count: int) -> list[int]:
    """The worker pids of a gunicorn master, once all ``count`` have started."""
    deadline = time.monotonic() + 60
    while len(workers := workers_of(server.pid)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"gunicorn started {len(workers)} of {count} workers in 60 s")
        time.sleep(0.1)
    return workers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--turn-seconds", type=int, default=5)
    parser.add_argument("--open", action="store_true", help="also the app with no key, request log or rate limit")
    parser.add_argument("--granian", action="store_true", help="also the app as deployed, served by granian")
    parser.add_argument("--access-log", action="store_true", help="also the app as deployed with gunicorn's access log")
    parser.add_argument(
        "--gthread", action="store_true", help="also the app as deployed in gthread workers (keep-alive)"
    )
    parser.add_argument(
        "--without-storing",
        action="store_true",
        help="also the app as deployed storing nothing (bench/without_storing.py): what storing costs, by difference",
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="A setting for the app")
    args = parser.parse_args()

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = dict(item.split("=", 1) for item in args.set)
    deployed, key = deployed_environment(data_dir, database_url=args.database_url, **settings)
    body_file = data_dir / "one_transaction.json"
    body_file.write_text(json.dumps(TRANSACTION))

    targets = [("yardstick", {}), ("as deployed", {"Authorization": f"Bearer {key}"})]
    with ExitStack() as stack:
        env_yardstick = environment(data_dir / "yardstick")
        servers = {
            "yardstick": stack.enter_context(
                gunicorn(env_yardstick, app="bench.yardstick:application", workers=args.workers)
            ),
            "as deployed": stack.enter_context(
                gunicorn(deployed, workers=args.workers, as_deployed=True, log=data_dir / "as_deployed.log")
            ),
        }
        if args.open:
            targets.append(("open, no log, no limit", {}))
            env_open = environment(data_dir, database_url=args.database_url, **settings)
            servers[targets[-1][0]] = stack.enter_context(gunicorn(env_open, workers=args.workers))
        if args.access_log:
            targets.append(("as deployed, access log", targets[1][1]))
            env_logged = {**deployed, "ACCESS_LOG": str(data_dir / "access.log")}
            servers[targets[-1][0]] = stack.enter_context(
                gunicorn(env_logged, workers=args.workers, as_deployed=True, log=data_dir / "access_logged.log")
            )
        if args.without_storing:
            targets.append(("as deployed, storing nothing", targets[1][1]))
            servers[targets[-1][0]] = stack.enter_context(
                gunicorn(
                    deployed,
                    app="bench.without_storing:application()",
                    workers=args.workers,
                    as_deployed=True,
                    log=data_dir / "without_storing.log",
                )
            )
        if args.gthread:
            targets.append(("as deployed, gthread", targets[1][1]))
            servers[targets[-1][0]] = stack.enter_context(
                gunicorn(
                    deployed,
                    workers=args.workers,
                    worker_class="gthread",
                    as_deployed=True,
                    log=data_dir / "gthread.log",
                )
            )
        if args.granian:
            targets.append(("as deployed, granian", targets[1][1]))
            servers[targets[-1][0]] = stack.enter_context(granian(deployed, workers=args.workers))
        workers = {name: served_workers(server, args.workers) for name, (server, _) in servers.items()}
        for name, headers in targets:  # warm up: every worker has loaded the model
            wrk(f"http://127.0.0.1:{servers[name][1]}/detect-fraud", body_file, 8, 2, workers[name], headers)

        database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
        print(
            f"gunicorn, {args.workers} sync workers each, {database}, c={args.connections}, "
            f"{args.turns} turns of {args.turn_seconds} s, {os.cpu_count()} cores"
            + (f", {' '.join(args.set)}" if args.set else "")
        )
        figures: dict[str, list[dict]] = {name: [] for name, _ in targets}
        for turn in range(1, args.turns + 1):
            line = []
            for name, headers in targets:
                url = f"http://127.0.0.1:{servers[name][1]}/detect-fraud"
                r = wrk(url, body_file, args.connections, args.turn_seconds, workers[name], headers)
                if r["errors"]:
                    raise SystemExit(f"{name}: {r['errors']} answers were not 2xx; see {data_dir}/as_deployed.log")
                figures[name].append(r)
                line.append(f"{name} {r['rps']:6.0f} req/s p99 {r['p99']:5.1f} ms")
            print(f"turn {turn}: " + ", ".join(line), flush=True)

    print("\n| target | req/s | p50 | p99 | workers' CPU per request |\n|---|---|---|---|---|")
    median = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in figures.items()}
    for name, m in median.items():
        print(f"| {name} | {m['rps']:,.0f} | {m['p50']:.2f} ms | {m['p99']:.2f} ms | {m['cpu_us']:,.0f} µs |")
    ours, yardstick = median["as deployed"], median["yardstick"]
    print(
        f"\nas deployed / yardstick, medians of {args.turns} turns: throughput {ours['rps'] / yardstick['rps']:.2f}, "
        f"p99 {ours['p99'] / yardstick['p99']:.2f}"
    )


if __name__ == "__main__":
    main()
