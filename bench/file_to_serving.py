"""From a new file landing in the bucket to every web worker serving the model trained on it.

Starts gunicorn (2 workers) and `manage.py qcluster` on a fresh SQLite database and local
folders, with the scan every minute (the shortest interval a schedule has), drops a labelled
file into the incoming folder, and polls POST /detect-fraud until it answers with the new
version. Prints each part, from the database's timestamps: waiting for the scan, validation,
queueing, training (both candidates), recording and activation, and the first request served.

    .venv/bin/python bench/file_to_serving.py
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import MANAGE, environment, gunicorn, manage, post_json  # noqa: E402
from modelops.ml import synthetic  # noqa: E402
from modelops.ml.schema import FEATURES  # noqa: E402


def served_version(port: int, transaction: dict) -> int | None:
    """The version that scores ``transaction``; None without a 200 answer."""
    status, body = post_json(port, transaction, timeout=5)
    return json.loads(body)["model_version"] if status == 200 else None


def stamp(value: str | None) -> float:
    """Epoch seconds of a timestamp as Django stores it in SQLite (UTC, without a zone)."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() if value else float("nan")


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        env = environment(data_dir, SCAN_INTERVAL_MINUTES="1")
        manage(env, "migrate", "--noinput")
        manage(env, "ensure_model")  # v1, on 284,807 generated rows
        manage(env, "sync_schedules")
        frame = synthetic.generate(rows=50_000, fraud_rate=0.01, seed=5, drift=0.3)
        transaction = {name: float(frame[name].iloc[0]) for name in FEATURES}

        cluster = subprocess.Popen(
            [*MANAGE, "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            with gunicorn(env, log=Path(data_dir) / "gunicorn.log") as (_, port):  # ready: serving v1
                time.sleep(65)  # let the first (empty) scan pass, so the file waits for a scheduled one
                incoming = Path(data_dir) / "bucket" / "incoming"
                incoming.mkdir(parents=True, exist_ok=True)
                staging = Path(data_dir) / "creditcard_20260102_000000.csv"
                synthetic.write_csv(frame, staging)
                landed = time.time()
                staging.rename(incoming / staging.name)  # atomic: the scan never sees half a file
                deadline = landed + 600
                while (version := served_version(port, transaction)) in (1, None) and time.time() < deadline:
                    time.sleep(0.05)
                served = time.time()
                # Every later request, on either worker, must answer with the new version.
                later = {served_version(port, transaction) for _ in range(200)}
        finally:
            cluster.terminate()
            cluster.wait(timeout=60)
        db = sqlite3.connect(Path(data_dir) / "db.sqlite3")
        seen = db.execute("SELECT first_seen FROM modelops_datafile").fetchone()[0]
        started, finished = db.execute(
            "SELECT started_at, finished_at FROM modelops_trainingrun ORDER BY id DESC"
        ).fetchone()
        activated = db.execute(
            "SELECT v.activated_at FROM modelops_modelversion v JOIN modelops_deployment d ON d.version_id = v.id "
            "WHERE d.role = 'primary'"
        ).fetchone()[0]
        log = db.execute("SELECT log FROM modelops_trainingrun ORDER BY id DESC").fetchone()[0]

    out = sys.stdout.write
    out(f"new file: 50,000 rows; first model on 284,807 rows; {os.cpu_count()} cores; scan every minute\n")
    out(f"  waiting for the scan, then validating: {stamp(seen) - landed:6.1f} s\n")
    out(f"  queued until training started:        {stamp(started) - stamp(seen):6.1f} s\n")
    out(f"  training, recording, activating:       {stamp(activated) - stamp(started):6.1f} s\n")
    out(f"  run closed after activation:           {stamp(finished) - stamp(activated):6.1f} s\n")
    out(f"  first request served by v{version}:          {served - stamp(activated):6.1f} s after activation\n")
    out(f"  total, file landed to served:          {served - landed:6.1f} s\n")
    out(f"  versions answering the next 200 requests: {sorted(later)}\n")
    for line in log.splitlines():
        if "trained in" in line or "activated" in line:
            out(f"  {line}\n")


if __name__ == "__main__":
    main()
