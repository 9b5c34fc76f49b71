"""The database restarted while the API serves: 503s during the outage, no 500, recovery without
restarting the app, and every acknowledged prediction stored.

On a PostgreSQL instance of its own with gunicorn serving it, client threads post while the
database is stopped (open connections cut) and started again; prints the answers by status, the
time to the first 200 after the restart, and whether every acknowledged transaction is stored.

    .venv/bin/python drills/db_restart.py [--seconds 20] [--outage-at 6] [--outage 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import TRANSACTION, client_threads, environment, free_port, gunicorn, manage, post_json


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise SystemExit(f"PostgreSQL's {name} is not installed")
    return found[-1]


class Postgres:
    """A throw-away PostgreSQL instance on 127.0.0.1:port, data in ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.data = folder / "pgdata"
        self.port = free_port()
        # initdb refuses to run as root: run the server as the postgres user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(folder, "postgres")
        self.run(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True, cwd=self.folder)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        self.run(
            pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "pg.log"), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self.run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def connect(self):
        """A psycopg connection to the instance."""
        import psycopg

        return psycopg.connect(self.url)


@contextmanager
def deployment(*, versions: int = 1, workers: int = 2):
    """A PostgreSQL instance, a migrated database with ``versions`` trained versions (the last
    active) and gunicorn (``workers`` sync workers) serving it; yields (postgres, port, env). Everything is stopped and
    removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="db-restart-"))
    postgres = Postgres(folder)
    postgres.start()
    # Not the caller's queue and training settings: they would change what the figures (and the
    # e2e test) train and run.
    env = environment(folder / "data", database_url=postgres.url, caller_tuning=False, TRAIN_N_ESTIMATORS="40")
    try:
        steps = [["migrate", "--noinput"]]
        for seed in range(1, versions + 1):
            csv = folder / f"data{seed}.csv"
            steps.append(
                ["generate_data", "--rows", "20000", "--fraud-rate", "0.02", "--seed", str(seed), "--out", str(csv)]
            )
            steps.append(["train_model", "--csv", str(csv), "--activate"])
        for argv in steps:
            manage(env, *argv, timeout=300)
        with gunicorn(env, workers=workers, log=folder / "gunicorn.log", ready_timeout=30) as (_, port):
            yield postgres, port, env
    finally:
        with suppress(subprocess.CalledProcessError):
            postgres.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


def stored_external_ids(postgres: Postgres) -> set[str]:
    with postgres.connect() as connection:
        rows = connection.execute(
            "SELECT t.external_id FROM detection_transaction t JOIN detection_prediction p ON p.transaction_id = t.id"
        ).fetchall()
    return {external_id for (external_id,) in rows}


def stored_versions(postgres: Postgres) -> dict[int, int]:
    """Transaction id -> the version its stored (primary) prediction names."""
    with postgres.connect() as connection:
        return dict(
            connection.execute(
                "SELECT p.transaction_id, v.version FROM detection_prediction p "
                "JOIN modelops_modelversion v ON v.id = p.model_version_id WHERE p.role = 'primary'"
            ).fetchall()
        )


def run(*, seconds: float, outage_at: float, outage: float, clients: int) -> dict:
    """Load, outage, recovery; returns the figures."""
    with deployment() as (postgres, port, _env):
        stop = threading.Event()
        started = time.monotonic()

        def request(number: int, sequence: int) -> tuple[float, int, str, str]:
            external_id = f"c{number}-{sequence}"
            status, body = post_json(port, {**TRANSACTION, "external_id": external_id}, timeout=10)
            return time.monotonic() - started, status, external_id, body  # (when, status, id, body)

        threads, answers = client_threads(clients, request, stop)
        for thread in threads:
            thread.start()
        time.sleep(outage_at)
        postgres.stop("fast")
        stopped = time.monotonic() - started
        time.sleep(outage)
        postgres.start()
        back = time.monotonic() - started
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        stop.set()
        for thread in threads:
            thread.join()
        stored = stored_external_ids(postgres)

    statuses = collections.Counter(status for _, status, _, _ in answers)
    acknowledged = {external_id for _, status, external_id, _ in answers if status == 200}
    first_ok_after = min((when for when, status, _, _ in answers if status == 200 and when > back), default=None)
    codes = collections.Counter(
        json.loads(body)["error"]["code"] for _, status, _, body in answers if status == 503 and body.startswith("{")
    )
    return {
        "requests": len(answers),
        "statuses": dict(sorted(statuses.items())),
        "503_codes": dict(codes),
        "outage": (round(stopped, 1), round(back, 1)),
        "recovery_seconds": round(first_ok_after - back, 2) if first_ok_after is not None else None,
        "acknowledged": len(acknowledged),
        "acknowledged_not_stored": len(acknowledged - stored),
        "stored_not_acknowledged": len(stored - acknowledged),
        "errors_500": [body for _, status, _, body in answers if status >= 500 and status != 503][:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--outage-at", type=float, default=6)
    parser.add_argument("--outage", type=float, default=5)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    figures = run(seconds=args.seconds, outage_at=args.outage_at, outage=args.outage, clients=args.clients)
    print(
        f"{figures['requests']} requests from {args.clients} clients in {args.seconds:g} s; "
        f"PostgreSQL down from {figures['outage'][0]} s to {figures['outage'][1]} s"
    )
    print(f"answers by status: {figures['statuses']} (503 codes: {figures['503_codes']})")
    print(f"first 200 {figures['recovery_seconds']} s after PostgreSQL accepted connections again")
    print(
        f"acknowledged (200): {figures['acknowledged']}, of them not stored: {figures['acknowledged_not_stored']}; "
        f"stored but not acknowledged: {figures['stored_not_acknowledged']}"
    )
    for body in figures["errors_500"]:
        print(f"500: {body}")


if __name__ == "__main__":
    main()
