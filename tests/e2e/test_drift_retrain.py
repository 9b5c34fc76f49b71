"""End to end: drifted traffic makes the real `manage.py qcluster` record drift and retrain.

The deployment (its DATA_DIR, its database, its processes, their teardown) is the one
tests/e2e/test_qcluster.py sets up for each test. A `manage.py shell` deploys a primary, stores
drifted traffic in the last closed windows of one minute (created_at in the past, as a deployment
that has been receiving it would hold it), leaves an accepted data file waiting in the bucket and
queues the monitor-windows task, as its schedule would; the cluster must summarise the windows,
record the drift event and, with MONITOR_DRIFT_ACTION=retrain, run the retrain it queues. This
module reads the database read-only.
"""

from __future__ import annotations

import base64
import pickle
import signal
import time

import pytest

from tests.e2e import test_qcluster as e2e

pytestmark = pytest.mark.slow

deployment = e2e.deployment  # the fixture: a DATA_DIR, a database of its own, processes stopped after

ROWS = 500  # per window: enough for a PSI, and for the alert rate to count
CLOSED = 3  # closed windows of drifted traffic: MONITOR_ALERT_WINDOWS in a row

# Run in the deployment's own process, once it is migrated. The drifted generated file is both
# the traffic (its rows scored by v1 and stored, CLOSED windows and the open one) and the labelled
# data that waits to be trained on. The created_at are set after the scoring, from one clock
# reading: the task, run seconds later, finds the CLOSED windows closed, or, if a minute has
# turned since, the open one closed too and just as drifted; either way the newest CLOSED windows
# it summarises are drifted.
SETUP = """
import shutil
from datetime import timedelta
import pandas as pd
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from django_q.tasks import async_task
from detection import monitoring
from detection.models import Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from modelops.ml import synthetic, training
from modelops.ml.schema import FEATURES
from modelops.models import Deployment
from modelops.services import deployments, versions

frame = synthetic.generate(rows=5_000, fraud_rate=0.02, seed=1)
small = training.TrainConfig(n_estimators=20, strategies=("scale_pos_weight",))
v1 = versions.record_version(result=training.train(frame, small))
deployments.activate_version(version_id=v1.pk, actor="test", reason="primary")
assert v1.reference, "a version trained now has its monitoring reference"

drifted = pd.read_csv({drifted!r})[list(FEATURES)].to_numpy()[: {windows} * {rows}]
results = score_transactions(batch=Batch(values=drifted, external_ids=[None] * len(drifted)), source="api", client="")
ids = [r.transaction_id for r in results]
now = timezone.now()
width = timedelta(minutes=monitoring.window_minutes())
current = monitoring.floor_to_window(now)
for k in range({windows}):
    start = current - ({closed} - k) * width
    at = start + width / 2 if k < {closed} else now
    Transaction.objects.filter(pk__in=ids[k * {rows} : (k + 1) * {rows}]).update(created_at=at)
Deployment.objects.filter(version=v1).update(since=current - {closed} * width)

incoming = settings.DATA_DIR / "bucket" / "incoming"
incoming.mkdir(parents=True, exist_ok=True)
shutil.copyfile({drifted!r}, incoming / {name!r})
call_command("scan_bucket")
async_task("detection.tasks.monitor_windows", task_name="monitor-windows")
"""


def task_results(deployment, func: str) -> list[tuple[str, object, bool]]:
    """The finished runs of ``func``: name, return value (or error), success."""
    rows = deployment.query("SELECT name, result, success FROM django_q_task WHERE func = %s ORDER BY started", (func,))
    # django-q keeps a task's return value pickled and base64-encoded; this is our own database.
    return [(name, pickle.loads(base64.b64decode(result)), bool(success)) for name, result, success in rows]


def test_drifted_traffic_records_drift_and_the_cluster_retrains_on_the_waiting_data(deployment):
    started = time.monotonic()
    deployment.env.update(
        MONITOR_WINDOW_MINUTES="1",
        MONITOR_ALERT_WINDOWS=str(CLOSED),
        MONITOR_PSI_ALERT="0.2",
        MONITOR_DRIFT_ACTION="retrain",
        Q_WORKERS="1",
    )
    drifted_csv = deployment.data_dir / "drifted.csv"
    # Smaller than the other e2e tests' files: the retrain is most of this test's time.
    generate = ("generate_data", "--rows", "8000", "--fraud-rate", "0.03", "--seed", "2", "--drift", "4.0")
    deployment.manage_concurrently(("migrate", "--noinput"), (*generate, "--out", str(drifted_csv)))
    setup = SETUP.format(drifted=str(drifted_csv), rows=ROWS, closed=CLOSED, windows=CLOSED + 1, name=e2e.DROPPED_NAME)
    deployment.manage("shell", "--no-imports", "-c", setup)
    assert deployment.query("SELECT count(*) FROM detection_transaction") == [((CLOSED + 1) * ROWS,)]
    assert deployment.query("SELECT key, status FROM modelops_datafile") == [(e2e.DROPPED_NAME, "new")]
    assert deployment.query("SELECT count(*) FROM modelops_trainingrun") == [(0,)]
    print(f"set up in {time.monotonic() - started:.1f} s")

    cluster = deployment.start("qcluster", e2e.MANAGE, "qcluster")

    def finished_run() -> list[tuple]:
        if not cluster.is_running():
            pytest.fail(f"the cluster exited with {cluster.popen.returncode}\n{cluster.output()}")
        return deployment.query("SELECT id, trigger, status, log FROM modelops_trainingrun WHERE status != 'running'")

    ((run_id, trigger, status, log),) = e2e._wait_for(
        finished_run,
        timeout=e2e.PICKUP_TIMEOUT,
        interval=0.5,
        failure=lambda: f"no training run finished\n{cluster.output()}",
    )
    print(f"run {run_id} {status} {time.monotonic() - started:.1f} s in")

    # The drift event: once, by the monitoring, naming the PSI and the retrain it queued.
    drift = deployment.query(
        "SELECT v.version, e.actor, e.reason FROM modelops_modelevent e "
        "JOIN modelops_modelversion v ON v.id = e.to_version_id WHERE e.kind = %s",
        ("drift",),
    )
    assert len(drift) == 1, drift
    ((version, actor, reason),) = drift
    assert (version, actor) == (1, "monitoring"), drift
    assert reason.startswith("primary v1: PSI past 0.2 (score PSI "), reason
    assert f"in the last {CLOSED} windows of 1 minute" in reason, reason
    assert reason.endswith("; a retrain is queued (MONITOR_DRIFT_ACTION=retrain)"), reason
    windows = deployment.query(
        "SELECT transactions, score_psi, top_feature_psi FROM detection_monitorwindow ORDER BY start DESC"
    )
    assert len(windows) in (CLOSED, CLOSED + 1), windows  # the open window too if a minute turned
    assert all(n == ROWS and max(score, feature) > 0.2 for n, score, feature in windows), windows
    (monitored,) = task_results(deployment, "detection.tasks.monitor_windows")
    assert monitored[0] == "monitor-windows" and monitored[2], monitored
    assert monitored[1].startswith(f"{len(windows)} windows summarised, 0 recomputed; drift: primary v1"), monitored

    # The retrain it queued ran in the cluster: the schedule's trigger, the monitoring as actor.
    assert (trigger, status) == ("schedule", "succeeded"), (trigger, status, log)
    ((retrain_name, retrain_result, retrain_ok),) = task_results(deployment, "modelops.tasks.retrain_models")
    assert retrain_ok and retrain_result.startswith(f"run {run_id}: succeeded"), (retrain_name, retrain_result)
    made = deployment.query(
        "SELECT v.version, e.kind, e.actor FROM modelops_modelevent e JOIN modelops_modelversion v "
        "ON v.id = e.to_version_id WHERE v.training_run_id = %s ORDER BY e.id",
        (run_id,),
    )
    assert made and all(actor == "monitoring" for _, _, actor in made), made
    assert {kind for _, kind, _ in made} <= {"activate", "reject"}, made
    assert e2e.DROPPED_NAME in log, log
    assert deployment.query("SELECT status FROM modelops_datafile") == [("used",)]
    # Trained on the drifted data, it beats v1 on the drifted hold-out and takes its place.
    active = deployment.active_version()
    assert (active, "activate", "monitoring") in made, (active, made, log)
    print(f"after the retrain v{active} is primary: {made}")

    assert cluster.stop(signal.SIGTERM, timeout=e2e.STOP_TIMEOUT) == 0, cluster.output()
    print(f"{time.monotonic() - started:.1f} s in all")
