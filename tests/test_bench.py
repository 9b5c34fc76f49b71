"""The in-process benchmarks still run and do what their options say: a figure in
docs/BENCHMARKS.md is only worth its command. Each script runs as a process on a small data
folder of its own (SQLite, a small model), as a reader would run it, even from a shell that
points at a deployment's database; the figures themselves are not checked, only that they are
printed and what the runs leave in the database."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from bench import harness

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A data folder as bench/http_scoring.py leaves it: migrated, with a small active model."""
    folder = tmp_path_factory.mktemp("bench-data")
    env = harness.environment(folder, TRAIN_N_ESTIMATORS="20")
    harness.manage(env, "migrate", "--noinput", timeout=TIMEOUT)
    csv = folder / "generated.csv"
    harness.manage(env, "generate_data", "--rows", "3000", "--fraud-rate", "0.02", "--out", str(csv), timeout=TIMEOUT)
    harness.manage(env, "train_model", "--csv", str(csv), "--activate", timeout=TIMEOUT)
    return folder


def bench(data_dir: Path, script: str, *args: str) -> str:
    # A caller's deployment settings must not reach the run: the scripts work on the folder.
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://nowhere.invalid/db",
        "REDIS_URL": "redis://nowhere.invalid",
        "S3_BUCKET_NAME": "nowhere",  # the model would be loaded from this bucket
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--data-dir", str(data_dir), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def transactions(data_dir: Path) -> int:
    with closing(sqlite3.connect(data_dir / "db.sqlite3")) as database:
        return database.execute("SELECT count(*) FROM detection_transaction").fetchone()[0]


def test_request_cost_stores_each_request_and_nothing_without_storing(data_dir):
    before = transactions(data_dir)
    out = bench(data_dir, "request_cost.py", "--requests", "20", "/detect-fraud")
    assert re.search(r"^/detect-fraud: 20 requests, [\d,]+ us of CPU each", out, re.M), out
    assert transactions(data_dir) == before + 50 + 20  # the warm-up's requests and the timed ones

    out = bench(data_dir, "request_cost.py", "--requests", "20", "--without-storing", "/detect-fraud")
    assert "(storing nothing): 20 requests" in out
    assert transactions(data_dir) == before + 70


def test_the_server_without_storing_answers_and_stores_nothing(data_dir):
    # What bench/http_scoring.py --without-storing serves; wrk, which it needs, is not required here.
    env = harness.environment(data_dir, settings="bench.settings")
    before = transactions(data_dir)
    with harness.gunicorn(env, app="bench.without_storing:application()", workers=1) as (_, port):
        status, body = harness.post_json(port, harness.TRANSACTION, timeout=30)
    assert status == 200, body
    assert transactions(data_dir) == before


def test_the_yardstick_parses_the_body_and_answers_a_constant(tmp_path):
    # bench/http_scoring.py's yardstick: no database, no key; a body that is not JSON is refused.
    env = harness.environment(tmp_path)
    with harness.gunicorn(env, app="bench.yardstick:application", workers=1) as (_, port):
        assert harness.post_json(port, harness.TRANSACTION, timeout=30) == (200, '{"is_fraud":false}')
        request = urllib.request.Request(f"http://127.0.0.1:{port}/detect-fraud", data=b"{", method="POST")
        request.add_header("Content-Type", "application/json")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400


def test_interleaved_steps_prints_each_step(data_dir):
    out = bench(data_dir, "interleaved_steps.py", "--rounds", "1")
    for step in ("parse", "score", "store"):
        assert re.search(rf"^\s*{step}: alone\s+\d+, in a request\s+-?\d+", out, re.M), out


def test_store_growth_works_on_a_copy(data_dir):
    before = transactions(data_dir)
    out = bench(data_dir, "store_growth.py", "--until", str(before + 20_000), "--every", "10000")
    assert f"into a copy holding {before:,} transactions" in out
    assert len(re.findall(r"transactions:\s+\d+ ms per batch", out)) == 2, out
    assert transactions(data_dir) == before

    out = bench(data_dir, "store_growth.py", "--until", str(before + 10_000), "--drop-index", "transaction_amount_idx")
    assert "without transaction_amount_idx" in out
    with closing(sqlite3.connect(data_dir / "db.sqlite3")) as database:
        assert database.execute("SELECT 1 FROM sqlite_master WHERE name = 'transaction_amount_idx'").fetchone()
