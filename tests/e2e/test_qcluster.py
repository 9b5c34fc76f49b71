"""End to end: the product run the way a deployment runs it, as separate processes.

Every step is a real process (management commands, `manage.py qcluster`, gunicorn) with the
environment a deployment would give it, and each test is one deployment of its own: a DATA_DIR
whose bucket/ folders stand in for the S3 bucket, and a database no other test sees (SQLite in
DATA_DIR, or a throw-away PostgreSQL database when DATABASE_URL names a server). Nothing here
imports the product: what is checked is what an operator or a client would see.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MANAGE = str(ROOT / "manage.py")

# Small models train in about a second; what these tests check does not depend on model size.
TREES = "40"
# A management command (Django start-up, pandas, a small training) takes a few seconds.
COMMAND_TIMEOUT = 120
# django-q2's guard loop runs the scheduler once its counter of 0.5 s cycles reaches 30 s, so the
# first scan comes about 30 s after the cluster starts, whatever next_run says; the scan and a
# small retrain add a few seconds. Bounded well above that, and far below "hangs".
PICKUP_TIMEOUT = 90
# A clean stop lets the running task finish, then stops the pusher, workers and monitor.
STOP_TIMEOUT = 30
SERVER_START_TIMEOUT = 30
HTTP_TIMEOUT = 30
# The cluster's Redis queue and stats go to a database of their own, away from the suite's.
E2E_REDIS_DB = 14

# One transaction as clients post it: Time, V1..V28, Amount (the public API contract).
TRANSACTION = {"Time": 100.0, **{f"V{i}": 0.0 for i in range(1, 29)}, "Amount": 12.5}
# What the scan looks for: any *.csv in the incoming prefix, named as the original exports were.
DROPPED_NAME = "creditcard_20260102_000000.csv"


def _wait_for(condition: Callable[[], object], *, timeout: float, interval: float, failure: Callable[[], str]):
    """Poll ``condition`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"gave up after {timeout} s: {failure()}")
        time.sleep(interval)


class Process:
    """A long-running process of the deployment, in a process group of its own so that teardown
    can also end the children it forks (the cluster's sentinel and workers, gunicorn's worker)."""

    def __init__(self, name: str, argv: list[str], *, env: dict, log: Path):
        self.name = name
        self.log = log
        with log.open("wb") as handle:
            # Output goes to a file, not a pipe: a pipe nobody reads would block the process.
            self.popen = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return f"--- {self.name} output ---\n{self.log.read_text(errors='replace')}"

    def stop(self, signum: int, *, timeout: float) -> int:
        """Send ``signum`` to the process alone (as a supervisor does) and return its exit code."""
        self.popen.send_signal(signum)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            name = signal.Signals(signum).name
            pytest.fail(f"{self.name} did not stop within {timeout} s of {name}\n{self.output()}")

    def group_is_gone(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def kill(self) -> None:
        """Teardown: a polite SIGTERM, then SIGKILL for the whole group; never leaves a process."""
        if self.is_running():
            self.popen.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=15)
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=15)


class Deployment:
    """One deployment: its environment, its DATA_DIR and database, and the processes it runs."""

    def __init__(self, data_dir: Path, *, database_url: str, redis_url: str):
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True)
        self.database_url = database_url
        # The developer's or CI's own settings must not leak in: S3 would replace the local
        # folders, Q_*/TRAIN_*/RETRAIN_* would change how the cluster and training behave.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("S3_", "Q_", "TRAIN_", "RETRAIN_"))
            and key not in ("DATABASE_URL", "REDIS_URL", "SCAN_INTERVAL_MINUTES", "MAX_DATA_FILE_BYTES")
        }
        env.update(
            DJANGO_SETTINGS_MODULE="fraudsite.settings",
            DATA_DIR=str(data_dir),
            TRAIN_N_ESTIMATORS=TREES,
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
            # These tests post as the original app's clients did, without an API key.
            SCORING_API_OPEN="true",
        )
        if database_url:
            env["DATABASE_URL"] = database_url
        if redis_url:
            env["REDIS_URL"] = redis_url
        self.env = env
        self.processes: list[Process] = []

    def manage(self, *args: str) -> str:
        """Run a management command to its end; its stdout, or a failure showing both outputs."""
        command = f"manage.py {' '.join(args)}"
        try:
            done = subprocess.run(
                [sys.executable, MANAGE, *args],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"{command} did not finish in {COMMAND_TIMEOUT} s\nstdout:\n{exc.stdout}\nstderr:\n{exc.stderr}"
            )
        assert done.returncode == 0, (
            f"{command} exited with {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
        return done.stdout

    def manage_concurrently(self, *commands: tuple[str, ...]) -> list[str]:
        """Independent commands side by side, only to keep the test short."""
        with ThreadPoolExecutor(len(commands)) as pool:
            futures = [pool.submit(self.manage, *command) for command in commands]
            return [future.result() for future in futures]

    def start(self, name: str, *args: str) -> Process:
        process = Process(name, [sys.executable, *args], env=self.env, log=self.data_dir / f"{name}.log")
        self.processes.append(process)
        return process

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the deployment's database directly and read-only: cheap enough to poll, and
        it cannot change what the processes under test do."""
        if self.database_url:
            import psycopg

            with psycopg.connect(
                self.database_url, autocommit=True, options="-c default_transaction_read_only=on"
            ) as connection:
                return connection.execute(sql, params).fetchall()
        path = self.data_dir / "db.sqlite3"
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            connection.close()

    def active_version(self) -> int | None:
        rows = self.query(
            "SELECT v.version FROM modelops_modelversion v JOIN modelops_deployment d ON d.version_id = v.id "
            "WHERE d.role = %s",
            ("primary",),
        )
        return rows[0][0] if rows else None

    def outputs(self) -> str:
        return "\n".join(process.output() for process in self.processes)

    def stop_all(self) -> None:
        for process in self.processes:
            process.kill()


@contextmanager
def throwaway_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server DATABASE_URL names, dropped afterwards: the suite's
    own database is never touched, and a test's leftovers cannot reach the next test."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(server_url)
    if not parts.scheme.startswith("postgres"):
        pytest.skip(f"end-to-end tests create their own database on PostgreSQL only, not {parts.scheme}")
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    # libpq knows postgresql:// (and postgres://), not the other spellings dj-database-url reads.
    maintenance_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        # FORCE: a process that outlived its teardown must not keep the database alive.
        with psycopg.connect(maintenance_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def redis_url_for_e2e(redis_url: str) -> str:
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{E2E_REDIS_DB}"))


@pytest.fixture
def deployment(tmp_path) -> Iterator[Deployment]:
    server_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    # With REDIS_URL set, the cluster must use the Redis broker as in production, on its own db.
    redis_url = redis_url_for_e2e(redis_url) if redis_url else ""
    with throwaway_postgres_database(server_url) if server_url else _no_database() as database_url:
        deployment = Deployment(tmp_path / "data", database_url=database_url, redis_url=redis_url)
        try:
            yield deployment
        finally:
            deployment.stop_all()


@contextmanager
def _no_database() -> Iterator[str]:
    yield ""  # SQLite in DATA_DIR


def generate(path: Path, *, seed: int, drift: float = 0.0) -> tuple[str, ...]:
    return (
        "generate_data",
        "--rows",
        "20000",
        "--fraud-rate",
        "0.02",
        "--seed",
        str(seed),
        "--drift",
        str(drift),
        "--out",
        str(path),
    )


def free_ports(count: int) -> list[int]:
    """Ports free right now, all different (each socket is held until all are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def post_transaction(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/detect-fraud",
        data=json.dumps(TRANSACTION).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return {"http_status": exc.code, "body": exc.read().decode(errors="replace")}


def start_server(deployment: Deployment, name: str, port: int) -> Process:
    server = deployment.start(
        name,
        "-m",
        "gunicorn",
        "fraudsite.wsgi",
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "--no-control-socket",  # the default path is shared by every gunicorn of the user
        "--graceful-timeout",
        "5",
        "--access-logfile",
        "-",
    )

    def accepting() -> bool:
        if not server.is_running():
            pytest.fail(f"{name} exited with {server.popen.returncode} while starting\n{server.output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    _wait_for(accepting, timeout=SERVER_START_TIMEOUT, interval=0.2, failure=server.output)
    return server


def test_a_file_dropped_in_the_bucket_becomes_the_active_model(deployment):
    first_csv = deployment.data_dir / "first.csv"
    # Another seed and drifted features: new data, not a copy of what v1 learned from.
    dropped_csv = deployment.data_dir / "dropped.csv"
    deployment.manage_concurrently(
        ("migrate", "--noinput"), generate(first_csv, seed=1), generate(dropped_csv, seed=2, drift=0.5)
    )
    deployment.manage("train_model", "--csv", str(first_csv), "--activate")
    # Creates the scan schedule due now, so the cluster's first scheduler pass runs it.
    deployment.manage("sync_schedules")
    assert deployment.active_version() == 1

    cluster = deployment.start("qcluster", MANAGE, "qcluster")
    started = time.monotonic()
    # The file arrives while the cluster runs, as uploads do; written under another name and
    # renamed, so the scan can never see half a file (an S3 upload appears whole, too).
    incoming = deployment.data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    partial = incoming / f"{DROPPED_NAME}.part"
    partial.write_bytes(dropped_csv.read_bytes())
    partial.rename(incoming / DROPPED_NAME)

    def new_version_active() -> int | None:
        if not cluster.is_running():
            pytest.fail(f"the cluster exited with {cluster.popen.returncode}\n{cluster.output()}")
        version = deployment.active_version()
        return version if version not in (None, 1) else None

    active = _wait_for(
        new_version_active,
        timeout=PICKUP_TIMEOUT,
        interval=1,
        failure=lambda: f"no new version became active\n{cluster.output()}",
    )
    print(f"v{active} active {time.monotonic() - started:.1f} s after the cluster started")

    # SIGTERM to the cluster's main process, as a supervisor stops it: django-q2 then stops its
    # pusher, lets the worker finish its task, stops the monitor, and the process exits with 0.
    returncode = cluster.stop(signal.SIGTERM, timeout=STOP_TIMEOUT)
    assert returncode == 0, f"the cluster exited with {returncode}\n{cluster.output()}"
    _wait_for(
        cluster.group_is_gone,
        timeout=5,
        interval=0.2,
        failure=lambda: f"the cluster's sentinel or workers outlived it\n{cluster.output()}",
    )
    # The retrain marks its data "used" after the activation: after a clean stop it has, because
    # the stop waited for the task instead of killing it half-way.
    statuses = deployment.query("SELECT status FROM modelops_datafile WHERE key = %s", (DROPPED_NAME,))
    assert statuses == [("used",)], cluster.output()
    assert deployment.active_version() == active


def test_after_a_rollback_two_separate_processes_serve_the_older_version(deployment):
    older_csv = deployment.data_dir / "older.csv"
    newer_csv = deployment.data_dir / "newer.csv"
    deployment.manage_concurrently(("migrate", "--noinput"), generate(older_csv, seed=1), generate(newer_csv, seed=3))
    deployment.manage("train_model", "--csv", str(older_csv), "--activate")
    deployment.manage("train_model", "--csv", str(newer_csv), "--activate")
    ids = dict(deployment.query("SELECT version, id FROM modelops_modelversion"))
    assert sorted(ids) == [1, 2]
    assert deployment.active_version() == 2

    # Two processes, not two workers of one: nothing in memory is shared, only the database.
    ports = free_ports(2)
    servers = [start_server(deployment, f"web{n}", port) for n, port in enumerate(ports, start=1)]
    before = [post_transaction(port) for port in ports]
    assert [answer.get("model_version") for answer in before] == [2, 2], f"{before}\n{deployment.outputs()}"

    # The rollback runs in a third process, as an operator's would.
    deployment.manage(
        "shell",
        "--no-imports",
        "-c",
        "from modelops.services import deployments; "
        f"deployments.activate_version(version_id={ids[1]}, actor='test', reason='rollback')",
    )
    assert deployment.active_version() == 1

    # Each process must notice on its next request; both have v2 loaded and cached.
    after = [post_transaction(port) for port in ports]
    assert [answer.get("model_version") for answer in after] == [1, 1], f"{after}\n{deployment.outputs()}"

    for server in servers:
        returncode = server.stop(signal.SIGTERM, timeout=STOP_TIMEOUT)
        assert returncode == 0, server.output()


def _migrated_with_a_scanned_file(deployment, *, seed: int) -> None:
    """A migrated database with one generated data file dropped into the bucket and scanned."""
    data_csv = deployment.data_dir / "data.csv"
    deployment.manage_concurrently(("migrate", "--noinput"), generate(data_csv, seed=seed))
    incoming = deployment.data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    (incoming / DROPPED_NAME).write_bytes(data_csv.read_bytes())
    deployment.manage("scan_bucket")


def test_two_retrains_started_at_once_never_train_side_by_side(deployment):
    _migrated_with_a_scanned_file(deployment, seed=4)

    # Two operators (or two machines' workers) asking at the same moment.
    commands = [
        subprocess.Popen(
            [sys.executable, MANAGE, "retrain"],
            cwd=ROOT,
            env=deployment.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = []
    for command in commands:
        try:
            stdout, stderr = command.communicate(timeout=COMMAND_TIMEOUT)
        finally:
            command.kill()
        outcomes.append((command.returncode, stdout + stderr))

    for returncode, output in outcomes:
        assert returncode == 0 or "another training run is running" in output, output
    runs = deployment.query("SELECT started_at, finished_at, status FROM modelops_trainingrun ORDER BY started_at")
    assert runs and all(status == "succeeded" for _, _, status in runs), runs
    # Whatever the timing, no run started before the one before it had finished.
    moments = [
        (datetime.fromisoformat(str(started)), datetime.fromisoformat(str(finished))) for started, finished, _ in runs
    ]
    for (_, finished), (started, _) in itertools.pairwise(moments):
        assert started >= finished, runs
    refused = sum(returncode != 0 for returncode, _ in outcomes)
    print(f"{len(runs)} run(s) recorded, {refused} request(s) refused while another ran")


def test_a_cluster_killed_mid_training_leaves_nothing_half_done_and_the_next_scan_trains_again(deployment):
    _migrated_with_a_scanned_file(deployment, seed=5)
    # A heartbeat a second, so a dead run is known dead after four; and a training long enough
    # to be killed in the middle of.
    deployment.env.update(TRAINING_HEARTBEAT_SECONDS="1", TRAIN_N_ESTIMATORS="3000")
    cluster = deployment.start("qcluster", MANAGE, "qcluster")
    deployment.manage(
        "shell", "--no-imports", "-c", "from modelops import tasks; tasks.enqueue_retrain(trigger='schedule')"
    )

    def training_under_way() -> bool:
        if not cluster.is_running():
            pytest.fail(f"the cluster exited with {cluster.popen.returncode}\n{cluster.output()}")
        # Beating since it started: the worker is inside the training, not before it.
        return bool(
            deployment.query(
                "SELECT id FROM modelops_trainingrun WHERE status = 'running' AND heartbeat_at > started_at"
            )
        )

    _wait_for(training_under_way, timeout=PICKUP_TIMEOUT, interval=0.2, failure=cluster.output)
    # SIGKILL for the cluster and every worker it forked: nothing runs a handler or a finally.
    os.killpg(cluster.pid, signal.SIGKILL)
    killed = time.monotonic()
    cluster.popen.wait(timeout=10)
    _wait_for(cluster.group_is_gone, timeout=10, interval=0.1, failure=cluster.output)

    # What the kill left: a run that says "running", no model, the data still new.
    assert deployment.query("SELECT status FROM modelops_trainingrun") == [("running",)]
    assert deployment.active_version() is None
    assert deployment.query("SELECT status FROM modelops_datafile") == [("new",)]

    # The cluster is restarted (a supervisor would); the next scheduled scan finds the data new
    # and queues a retrain, which must take the dead run's place rather than wait for it.
    deployment.env["TRAIN_N_ESTIMATORS"] = TREES
    time.sleep(5)  # four missed heartbeats: the dead run is now known dead
    second = deployment.start("qcluster2", MANAGE, "qcluster")
    deployment.manage(
        "shell",
        "--no-imports",
        "-c",
        "from django_q.tasks import async_task; async_task('modelops.tasks.scan_incoming')",
    )
    active = _wait_for(
        deployment.active_version,
        timeout=PICKUP_TIMEOUT,
        interval=0.5,
        failure=lambda: f"no version became active after the kill\n{second.output()}",
    )
    print(f"v{active} active {time.monotonic() - killed:.1f} s after the kill")
    # The run is marked finished just after its version is activated.
    finished = "SELECT status, error FROM modelops_trainingrun WHERE status != 'running' ORDER BY id"
    _wait_for(
        lambda: len(deployment.query(finished)) == 2,
        timeout=PICKUP_TIMEOUT,
        interval=0.5,
        failure=lambda: f"the second run did not finish\n{second.output()}",
    )
    runs = deployment.query("SELECT status, error FROM modelops_trainingrun ORDER BY id")
    assert runs == [
        ("failed", "abandoned: its worker stopped (no heartbeat) before the run finished"),
        ("succeeded", ""),
    ], runs
    assert deployment.query("SELECT status FROM modelops_datafile") == [("used",)]
    # Nothing the killed run started was left undecided.
    assert deployment.query("SELECT count(*) FROM modelops_modelversion WHERE status = 'candidate'") == [(0,)]
    assert second.stop(signal.SIGTERM, timeout=STOP_TIMEOUT) == 0, second.output()
