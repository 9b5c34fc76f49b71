"""POST /detect-fraud of this tree against another checkout of the code, in alternating turns.

Serves each tree with gunicorn as bench/http_scoring.py does (2 sync workers, the bench settings,
each on a fresh folder or database of its own, migrated and given its first model by that tree's
own manage.py), both servers up for the whole run, and loads them with wrk at concurrency 8 in
turns of a few seconds, the order swapped every turn. Prints each turn's requests/s, p99 and the
workers' CPU per request for both, the ratio of this tree's rate to the other's, and the medians
of the turns' ratios of rate and of CPU per request: figures taken on the same machine state,
which separate runs on a shared host do not give.

    git worktree add /tmp/before 1543a9c
    .venv/bin/python bench/before_after.py --other /tmp/before
    .venv/bin/python bench/before_after.py --other /tmp/before --as-deployed   # a key, logs, the rate limit
    .venv/bin/python bench/before_after.py --other /tmp/before \\
        --database-url postgres://postgres@127.0.0.1:5432/bench_after \\
        --other-database-url postgres://postgres@127.0.0.1:5432/bench_before
    git worktree remove --force /tmp/before

The other tree runs on this tree's virtualenv, so it must need nothing this one lacks. The first
run trains each tree's model on 284,807 generated rows; both store what they score, so compare
within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import TRANSACTION, deployed_environment, environment, gunicorn, manage, workers_of  # noqa: E402
from bench.http_scoring import wrk  # noqa: E402


def describe(root: Path) -> str:
    done = subprocess.run(["git", "log", "-1", "--format=%h"], cwd=root, capture_output=True, text=True)
    return done.stdout.strip() or str(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="the other checkout's root, e.g. a git worktree")
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-before-after"))
    parser.add_argument("--database-url", default="", help="this tree's database (SQLite in the folder if empty)")
    parser.add_argument("--other-database-url", default="", help="the other tree's database")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--turn-seconds", type=int, default=4)
    parser.add_argument(
        "--as-deployed", action="store_true", help="both as `make run` serves them: a key, logs, the rate limit"
    )
    args = parser.parse_args()
    if bool(args.database_url) != bool(args.other_database_url):
        raise SystemExit("give both --database-url and --other-database-url, or neither")

    trees = {"this": ROOT, "other": Path(args.other).resolve()}
    urls = {"this": args.database_url, "other": args.other_database_url}
    names = {key: describe(root) for key, root in trees.items()}
    envs, headers = {}, {}
    for key, root in trees.items():
        folder = Path(args.data_dir) / key
        folder.mkdir(parents=True, exist_ok=True)
        if args.as_deployed:
            envs[key], api_key = deployed_environment(folder, database_url=urls[key], root=root)
            headers[key] = {"Authorization": f"Bearer {api_key}"}
            continue
        envs[key], headers[key] = environment(folder, database_url=urls[key], settings="bench.settings"), {}
        manage(envs[key], "migrate", "--noinput", root=root)
        manage(envs[key], "ensure_model", root=root, timeout=900)
    body_file = Path(args.data_dir) / "one_transaction.json"
    body_file.write_text(json.dumps(TRANSACTION))

    with ExitStack() as stack:
        ports, workers = {}, {}
        for key, root in trees.items():
            server, ports[key] = stack.enter_context(
                gunicorn(envs[key], workers=args.workers, root=root, as_deployed=args.as_deployed)
            )
            deadline = time.monotonic() + 60
            while len(workers.get(key, [])) < args.workers:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{key}: gunicorn started too few workers in 60 s")
                time.sleep(0.1)
                workers[key] = workers_of(server.pid)
            wrk(f"http://127.0.0.1:{ports[key]}/detect-fraud", body_file, 8, 3, workers[key], headers[key])  # warm up

        database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
        print(
            f"this tree {names['this']} against {names['other']}: gunicorn {args.workers} sync workers each, "
            f"{database}{', as deployed' if args.as_deployed else ''}, "
            f"wrk c={args.connections}, {args.turns} turns of {args.turn_seconds} s each, "
            f"{os.cpu_count()} cores"
        )
        ratios, cpu_ratios, p99s = [], [], {"this": [], "other": []}
        for turn in range(1, args.turns + 1):
            order = ("other", "this") if turn % 2 else ("this", "other")
            figures = {}
            for key in order:
                url = f"http://127.0.0.1:{ports[key]}/detect-fraud"
                figures[key] = wrk(url, body_file, args.connections, args.turn_seconds, workers[key], headers[key])
            ratios.append(figures["this"]["rps"] / figures["other"]["rps"])
            cpu_ratios.append(figures["this"]["cpu_us"] / figures["other"]["cpu_us"])
            line = []
            for key in ("other", "this"):
                r = figures[key]
                p99s[key].append(r["p99"])
                line.append(
                    f"{names[key]} {r['rps']:6.0f} req/s p99 {r['p99']:6.2f} ms cpu {r['cpu_us']:5.0f} us "
                    f"non-2xx {r['errors']}"
                )
            print(f"turn {turn} ({order[0]} first): {' | '.join(line)} | ratio {ratios[-1]:.3f}", flush=True)
        print(
            f"ratio of {names['this']}'s rate to {names['other']}'s, median of {len(ratios)} turns: "
            f"{statistics.median(ratios):.3f} (range {min(ratios):.3f} to {max(ratios):.3f}); "
            f"median p99 {statistics.median(p99s['other']):.2f} ms ({names['other']}), "
            f"{statistics.median(p99s['this']):.2f} ms ({names['this']})"
        )
        print(
            f"ratio of the workers' CPU per request, {names['this']} to {names['other']}, median: "
            f"{statistics.median(cpu_ratios):.3f} (range {min(cpu_ratios):.3f} to {max(cpu_ratios):.3f})"
        )


if __name__ == "__main__":
    main()
