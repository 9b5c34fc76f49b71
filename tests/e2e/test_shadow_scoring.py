"""End to end: a shadow caught up by the real `manage.py qcluster`, killed with SIGKILL half-way.

The deployment (its DATA_DIR, its database, its processes, their teardown) is the one
tests/e2e/test_qcluster.py sets up for each test. The product runs in its own processes only: a
`manage.py shell` stores the traffic and deploys the versions, the cluster scores the shadow, a
gunicorn answers the API and serves the review queue; this module reads the database read-only.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import pickle
import re
import signal
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e import test_qcluster as e2e

pytestmark = pytest.mark.slow

deployment = e2e.deployment  # the fixture: a DATA_DIR, a database of its own, processes stopped after

# Stored before the shadow is deployed: it must never score these.
BEFORE = 300
# Stored after, in chunks of CHUNK_ROWS: enough chunks that the catch-up lasts a few seconds, so the
# kill lands while the watermark is on its way, whatever the machine's speed.
AFTER = 5_000
CHUNK_ROWS = 10
PASSWORD = "correct horse battery staple"
SHADOW_RUN = re.compile(r"v2: (\d+) scored")

# Run in the deployment's own process, after its migrations and static files: two small versions
# trained on generated data, v1 primary; the traffic before the shadow; v2 into shadow, alerting on
# everything (threshold 0), so that any of its rows reaching the queue or an answer would show; the
# traffic after it, each with an external id; an analyst; and the first catch-up queued, for the
# cluster to find when it starts.
SETUP = f"""
from dataclasses import replace
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django_q.tasks import async_task
from detection.parsing import Batch
from detection.roles import ANALYSTS
from detection.services import score_transactions
from modelops.ml import synthetic, training
from modelops.ml.schema import FEATURES
from modelops.models import ModelVersion
from modelops.services import deployments, versions

call_command("migrate", "--noinput", verbosity=0)
# The pages need the static files' manifest; the admin's and the API docs' files are not needed here.
call_command("collectstatic", "--noinput", verbosity=0, ignore_patterns=["admin", "rest_framework", "drf_*"])
frame = synthetic.generate(rows=5_000, fraud_rate=0.02, seed=1)
small = training.TrainConfig(n_estimators=20, strategies=("scale_pos_weight",))
v1 = versions.record_version(result=training.train(frame, small))
deployments.activate_version(version_id=v1.pk, actor="test", reason="primary")
v2 = versions.record_version(result=training.train(frame, replace(small, n_estimators=5)), parent=v1)
traffic = synthetic.generate(rows={BEFORE + AFTER}, fraud_rate=0.02, seed=2)[list(FEATURES)].to_numpy()
before, after = traffic[:{BEFORE}], traffic[{BEFORE}:]
score_transactions(batch=Batch(values=before, external_ids=[None] * len(before)), source="api", client="")
deployments.deploy_shadow(version_id=v2.pk, actor="test", reason="try it on live traffic")
ModelVersion.objects.filter(pk=v2.pk).update(threshold=0.0)
ids = [f"b-{{i}}" for i in range(len(after))]
score_transactions(batch=Batch(values=after, external_ids=ids), source="api", client="")
User.objects.create_user("ana", password={PASSWORD!r}).groups.add(Group.objects.get(name=ANALYSTS))
async_task("detection.tasks.score_shadows", task_name="catch-up-1")
"""
# After the kill: the catch-up the restarted cluster must finish, and one more that must add nothing.
REQUEUE = (
    "from django_q.tasks import async_task; "
    "async_task('detection.tasks.score_shadows', task_name='catch-up-2'); "
    "async_task('detection.tasks.score_shadows', task_name='catch-up-3')"
)


def shadow_ids(deployment) -> list[int]:
    rows = deployment.query(
        "SELECT p.transaction_id FROM detection_prediction p JOIN modelops_modelversion v "
        "ON v.id = p.model_version_id WHERE v.version = 2 ORDER BY p.transaction_id"
    )
    return [pk for (pk,) in rows]


def watermark(deployment) -> int | None:
    rows = deployment.query(
        "SELECT d.scored_through FROM modelops_deployment d JOIN modelops_modelversion v ON v.id = d.version_id "
        "WHERE v.version = 2 AND d.role = %s",
        ("shadow",),
    )
    return rows[0][0] if rows else None


def run_results(deployment) -> dict[str, str]:
    """The finished runs of the shadow scoring task, by name: what each said it scored."""
    rows = deployment.query(
        "SELECT name, result, success FROM django_q_task WHERE func = %s", ("detection.tasks.score_shadows",)
    )
    results = {}
    for name, result, success in rows:
        # django-q keeps a task's return value pickled and base64-encoded; this is our own database.
        results[name] = pickle.loads(base64.b64decode(result)) if success else f"failed: {result}"
    return results


def signed_in(port: int) -> urllib.request.OpenerDirector:
    """An HTTP client with the analyst's session, signed in through the login page as a browser is."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login = f"http://127.0.0.1:{port}/accounts/login/"
    with opener.open(login, timeout=e2e.HTTP_TIMEOUT) as response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode()).group(1)
    form = urllib.parse.urlencode({"username": "ana", "password": PASSWORD, "csrfmiddlewaretoken": token})
    with opener.open(login, data=form.encode(), timeout=e2e.HTTP_TIMEOUT) as response:
        assert "/accounts/login/" not in response.url, "the analyst could not sign in"
    return opener


def get_page(opener: urllib.request.OpenerDirector, port: int, path: str) -> str:
    with opener.open(f"http://127.0.0.1:{port}{path}", timeout=e2e.HTTP_TIMEOUT) as response:
        assert response.status == 200, path
        return response.read().decode()


def post_json(port: int, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/detect-fraud",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=e2e.HTTP_TIMEOUT) as response:
        return json.loads(response.read())


def test_a_shadow_killed_mid_catch_up_scores_each_transaction_once_and_never_answers(deployment):
    started = time.monotonic()
    # One worker (the default, stated): the two catch-ups queued after the kill run one after the
    # other. A run stops after SHADOW_MAX_SECONDS: one that never caught up fails here in time.
    deployment.env.update(
        SHADOW_CHUNK_ROWS=str(CHUNK_ROWS), SHADOW_SETTLE_SECONDS="0", SHADOW_MAX_SECONDS="30", Q_WORKERS="1"
    )
    deployment.manage("shell", "--no-imports", "-c", SETUP)
    stored = [pk for (pk,) in deployment.query("SELECT id FROM detection_transaction ORDER BY id")]
    assert len(stored) == BEFORE + AFTER
    before, after = stored[:BEFORE], stored[BEFORE:]
    last = after[-1]
    print(f"set up in {time.monotonic() - started:.1f} s")
    assert shadow_ids(deployment) == [] and watermark(deployment) is None

    cluster = deployment.start("qcluster", e2e.MANAGE, "qcluster")

    def half_way() -> int | None:
        if not cluster.is_running():
            pytest.fail(f"the cluster exited with {cluster.popen.returncode}\n{cluster.output()}")
        through = watermark(deployment)
        if through is not None and through >= last:
            pytest.fail(f"the catch-up finished before it could be killed: raise AFTER\n{cluster.output()}")
        return through if through is not None and through > before[-1] else None

    e2e._wait_for(half_way, timeout=e2e.PICKUP_TIMEOUT, interval=0.05, failure=cluster.output)
    # SIGKILL for the cluster and every worker it forked, most likely inside a chunk's transaction.
    os.killpg(cluster.pid, signal.SIGKILL)
    cluster.popen.wait(timeout=10)
    e2e._wait_for(cluster.group_is_gone, timeout=10, interval=0.1, failure=cluster.output)

    # What the kill left: the watermark part of the way, and exactly the rows up to it scored, as
    # a chunk's predictions and its watermark are committed together or not at all.
    killed_at = watermark(deployment)
    assert before[-1] < killed_at < last, (killed_at, before[-1], last)
    done = [pk for pk in after if pk <= killed_at]
    assert shadow_ids(deployment) == done
    print(f"killed with {len(done)} of {AFTER} transactions scored ({time.monotonic() - started:.1f} s in)")

    # A supervisor restarts the cluster; the web server comes up beside it.
    (port,) = e2e.free_ports(1)
    second = deployment.start("qcluster2", e2e.MANAGE, "qcluster")
    with ThreadPoolExecutor(1) as pool:
        requeued = pool.submit(deployment.manage, "shell", "--no-imports", "-c", REQUEUE)
        server = e2e.start_server(deployment, "web", port)
        requeued.result()
    e2e._wait_for(
        lambda: {"catch-up-2", "catch-up-3"} <= run_results(deployment).keys(),
        timeout=e2e.PICKUP_TIMEOUT,
        interval=0.2,
        failure=lambda: f"the restarted cluster did not run both catch-ups\n{second.output()}",
    )

    # Exactly once per transaction stored after the shadow started: none skipped, none before it,
    # none twice (the unique index would hide a row scored twice, so it is counted below as well).
    assert shadow_ids(deployment) == after
    assert watermark(deployment) == last
    duplicates = deployment.query(
        "SELECT transaction_id, model_version_id FROM detection_prediction "
        "GROUP BY transaction_id, model_version_id HAVING count(*) > 1"
    )
    assert duplicates == []
    roles = deployment.query(
        "SELECT v.version, p.role, count(*) FROM detection_prediction p JOIN modelops_modelversion v "
        "ON v.id = p.model_version_id GROUP BY v.version, p.role ORDER BY v.version"
    )
    assert roles == [(1, "primary", BEFORE + AFTER), (2, "shadow", AFTER)], roles
    # What each run says it scored counts the rows it sent, including any the unique index dropped:
    # a watermark that went back (repeating rows) would make the restarted run say more than the
    # rows left after the kill; one that did not stick would make the last run score again.
    results = run_results(deployment)
    counts = {name: SHADOW_RUN.fullmatch(results[name]) for name in ("catch-up-2", "catch-up-3")}
    assert all(counts.values()), results
    assert sorted(int(match.group(1)) for match in counts.values()) == [0, AFTER - len(done)], results

    # The answers are the primary's: a new transaction, and the replay of a stored external id
    # (the shadow's row for it is newer, and alerts, as all of its rows do).
    assert e2e.post_transaction(port)["model_version"] == 1
    pk, external_id, when, v, amount = deployment.query(
        "SELECT id, external_id, time, v, amount FROM detection_transaction WHERE id = %s", (after[7],)
    )[0]
    features = dict(zip([f"V{i}" for i in range(1, 29)], json.loads(v) if isinstance(v, str) else v, strict=True))
    replay = post_json(port, {"Time": when, **features, "Amount": amount, "external_id": external_id})
    ((stored_score, stored_flag),) = deployment.query(
        "SELECT score, is_fraud FROM detection_prediction WHERE transaction_id = %s AND role = %s", (pk, "primary")
    )
    assert (replay["repeated"], replay["transaction_id"], replay["model_version"]) == (True, pk, 1), replay
    assert (replay["fraud_probability"], replay["is_fraud"]) == (stored_score, bool(stored_flag)), replay

    # The analyst's queue counts the primary's alerts only, and holds no row of v2.
    ((primary_alerts,),) = deployment.query(
        "SELECT count(*) FROM detection_prediction p JOIN detection_transaction t ON t.id = p.transaction_id "
        "WHERE p.role = %s AND p.is_fraud AND t.label IS NULL",
        ("primary",),
    )
    assert primary_alerts < AFTER  # the shadow's alerts, had they leaked, would be many more
    analyst = signed_in(port)
    queue = get_page(analyst, port, "/review/")
    awaiting = re.search(r'id="count-awaiting"><strong>(\d+)</strong>', queue)
    assert awaiting, queue
    assert int(awaiting.group(1)) == primary_alerts, (awaiting.group(1), primary_alerts)
    assert "Nothing here with these filters." in get_page(analyst, port, "/review/?version=2&state=all&flagged=all")

    for process in (second, server):
        assert process.stop(signal.SIGTERM, timeout=e2e.STOP_TIMEOUT) == 0, process.output()
    print(f"{time.monotonic() - started:.1f} s in all")
