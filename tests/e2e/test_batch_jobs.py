"""End to end: a batch job posted to the real web server, scored by the real `manage.py qcluster`,
which is killed with SIGKILL half-way and restarted; the scheduled sweep queues the job again and
it finishes with every row stored exactly once.

The deployment (its DATA_DIR, its database, its processes, their teardown) is the one
tests/e2e/test_qcluster.py sets up for each test. The product runs in its own processes only;
this module talks to it over HTTP and reads its database read-only.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import urllib.request

import pytest

from tests.e2e import test_qcluster as e2e

pytestmark = pytest.mark.slow

deployment = e2e.deployment  # the fixture: a DATA_DIR, a database of its own, processes stopped after

# Enough chunks of CHUNK_ROWS that the job lasts a few seconds, so the kill lands while the
# watermark is on its way, whatever the machine's speed.
ROWS = 4_000
CHUNK_ROWS = 10
# A job silent for this long is queued again by the sweep, scheduled every minute; the restarted
# cluster's scheduler runs it about 30 s after the cluster starts.
STALL_SECONDS = 3
FEATURES = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount")


def transactions(count: int, *, seed: int) -> list[dict]:
    """Distinct transactions in the dataset's ranges, as clients post them."""
    rng = random.Random(seed)
    return [
        {
            "Time": float(i),
            **{f"V{j}": round(rng.gauss(0, 1.5), 6) for j in range(1, 29)},
            "Amount": round(rng.expovariate(1 / 80), 2),
        }
        for i in range(count)
    ]


def call(port: int, path: str, body: bytes | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=e2e.HTTP_TIMEOUT) as response:
        return response.status, dict(response.headers), json.loads(response.read())


def progress(deployment, job_id: str) -> tuple[str, int, int]:
    # The id's 32 hex digits: how Django stores a UUID on SQLite, and a form PostgreSQL reads too.
    rows = deployment.query(
        "SELECT status, chunks_done, rows_scored FROM detection_batchjob WHERE id = %s", (job_id.replace("-", ""),)
    )
    return rows[0]


def task_results(deployment) -> list[tuple[str, bool]]:
    return deployment.query("SELECT func, success FROM django_q_task ORDER BY started")


def test_a_batch_job_survives_a_killed_cluster_and_stores_every_row_once(deployment):
    started = time.monotonic()
    deployment.env.update(
        BATCH_CHUNK_ROWS=str(CHUNK_ROWS),
        BATCH_STALL_SECONDS=str(STALL_SECONDS),
        Q_WORKERS="1",
        # Posted from one address: the status polls must not run into the limit.
        SCORING_RATE_LIMIT="off",
    )
    deployment.manage("migrate", "--noinput")
    deployment.manage_concurrently(("ensure_model", "--rows", "20000"), ("sync_schedules",))
    (port,) = e2e.free_ports(1)
    server = e2e.start_server(deployment, "web", port)

    rows = transactions(ROWS, seed=3)
    status, headers, job = call(port, "/api/batches", json.dumps(rows).encode())
    assert status == 202, job
    job_id = job["id"]
    assert headers["Location"] == job["status_url"] == f"http://127.0.0.1:{port}/api/batches/{job_id}"
    assert (job["status"], job["rows_total"], job["rows_scored"]) == ("queued", ROWS, 0)
    chunks = ROWS // CHUNK_ROWS
    assert deployment.query("SELECT count(*) FROM detection_transaction") == [(0,)]
    print(f"posted in {time.monotonic() - started:.1f} s")

    cluster = deployment.start("qcluster", e2e.MANAGE, "qcluster")

    def half_way() -> bool:
        if not cluster.is_running():
            pytest.fail(f"the cluster exited with {cluster.popen.returncode}\n{cluster.output()}")
        _, done, _ = progress(deployment, job_id)
        if done >= chunks:
            pytest.fail(f"the job finished before it could be killed: raise ROWS\n{cluster.output()}")
        return done >= chunks // 10

    e2e._wait_for(half_way, timeout=e2e.PICKUP_TIMEOUT, interval=0.05, failure=cluster.output)
    # SIGKILL for the cluster and every worker it forked, most likely inside a chunk's transaction.
    os.killpg(cluster.pid, signal.SIGKILL)
    cluster.popen.wait(timeout=10)
    e2e._wait_for(cluster.group_is_gone, timeout=10, interval=0.1, failure=cluster.output)

    # What the kill left: the watermark part of the way, and exactly its chunks' rows stored, as a
    # chunk's transactions and the watermark's move are committed together or not at all.
    state, done, scored = progress(deployment, job_id)
    assert state == "running" and 0 < done < chunks, (state, done)
    assert scored == done * CHUNK_ROWS
    assert deployment.query("SELECT count(*) FROM detection_transaction") == [(scored,)]
    _, _, body = call(port, f"/api/batches/{job_id}")
    assert (body["status"], body["rows_scored"]) == ("running", scored), body
    print(f"killed with {scored} of {ROWS} rows scored ({time.monotonic() - started:.1f} s in)")

    # A supervisor restarts the cluster. Its task was taken by the dead worker, and the broker would
    # hand it out again only after Q_RETRY: the sweep queues the job again, as it is stalled.
    second = deployment.start("qcluster2", e2e.MANAGE, "qcluster")

    def finished() -> dict | None:
        if not second.is_running():
            pytest.fail(f"the restarted cluster exited with {second.popen.returncode}\n{second.output()}")
        _, _, body = call(port, f"/api/batches/{job_id}")
        return body if body["status"] in ("done", "failed") else None

    final = e2e._wait_for(
        finished,
        timeout=e2e.PICKUP_TIMEOUT + 60,
        interval=0.5,
        failure=lambda: f"the job did not finish after the restart\n{second.output()}",
    )
    print(f"done {time.monotonic() - started:.1f} s in")
    assert (final["status"], final["rows_scored"], final["error"]) == ("done", ROWS, None), final
    assert final["finished_at"] is not None

    # Every row exactly once: as many transactions as rows, each with one prediction, and the
    # results, page by page, name each row's own transaction, in input order.
    assert deployment.query("SELECT count(*), count(DISTINCT id) FROM detection_transaction") == [(ROWS, ROWS)]
    assert deployment.query("SELECT role, count(*) FROM detection_prediction GROUP BY role") == [("primary", ROWS)]
    assert deployment.query("SELECT DISTINCT source FROM detection_transaction") == [("batch",)]
    results, path = [], f"/api/batches/{job_id}/results?page_size=1000"
    while path:
        _, _, page = call(port, path)
        results.extend(page["results"])
        path = page["next"] and page["next"].removeprefix(f"http://127.0.0.1:{port}")
    assert [r["row"] for r in results] == list(range(ROWS))
    ids = [r["transaction_id"] for r in results]
    assert len(set(ids)) == ROWS
    stored = dict(
        (pk, (when, amount))
        for pk, when, amount in deployment.query("SELECT id, time, amount FROM detection_transaction")
    )
    assert [stored[pk] for pk in ids] == [(row["Time"], row["Amount"]) for row in rows]
    # The sweep queued it, and the restarted cluster's run finished it.
    tasks = task_results(deployment)
    assert ("detection.tasks.sweep_batches", True) in tasks, tasks
    assert tasks.count(("detection.tasks.run_batch", True)) >= 1, tasks

    for process in (second, server):
        assert process.stop(signal.SIGTERM, timeout=e2e.STOP_TIMEOUT) == 0, process.output()
    print(f"{time.monotonic() - started:.1f} s in all")
