"""Monitoring windows: known traffic gives known figures; drift is recorded once per streak; late
labels recompute their window; the pages draw it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from detection import monitoring, tasks
from detection.models import MonitorWindow, Prediction, Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from modelops.ml import synthetic
from modelops.ml.schema import FEATURES, LABEL
from modelops.models import DataFile, ModelEvent, ModelVersion

HOUR = timedelta(hours=1)
# Four whole hours ago, so that the task's own clock finds those four windows closed.
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 4 * HOUR


@pytest.fixture(autouse=True)
def hourly(settings):
    settings.MONITOR_WINDOW_MINUTES = 60
    settings.MONITOR_ALERT_WINDOWS = 2
    settings.MONITOR_PSI_ALERT = 0.2


def store(frame, at: datetime) -> list[int]:
    """Score and store ``frame`` as if it arrived in the hour from ``at``."""
    values = frame[list(FEATURES)].to_numpy()
    results = score_transactions(batch=Batch(values=values, external_ids=[None] * len(values)), source="api", client="")
    ids = [r.transaction_id for r in results]
    Transaction.objects.filter(pk__in=ids).update(created_at=at + timedelta(minutes=30))
    return ids


@pytest.fixture
def deployed_since_start(active_version):
    active_version.deployment.since = START
    active_version.deployment.save(update_fields=["since"])
    return active_version


def test_a_window_counts_alerts_quantiles_and_labelled_outcomes(deployed_since_start, training_frame):
    frame = training_frame.iloc[:2_000]
    ids = store(frame, START)
    frauds = [pk for pk, c in zip(ids, frame[LABEL], strict=True) if c][:10]
    Transaction.objects.filter(pk__in=frauds).update(label="fraud", reviewed_at=START + HOUR)
    done = monitoring.monitor(now=START + HOUR + timedelta(minutes=1))
    assert done["new"] == 1
    window = MonitorWindow.objects.get()
    assert (window.start, window.end, window.role) == (START, START + HOUR, "primary")
    scored = Prediction.objects.filter(transaction_id__in=ids)
    alerts = scored.filter(is_fraud=True)
    assert (window.transactions, window.alerts) == (2_000, alerts.count())
    scores = np.array(scored.values_list("score", flat=True))
    assert window.score_quantiles["p90"] == pytest.approx(np.quantile(scores, 0.9), abs=0.0011)
    flagged = set(alerts.values_list("transaction_id", flat=True))
    assert window.decided_alerts == window.confirmed_alerts == len(flagged & set(frauds))
    assert window.missed_frauds == len(set(frauds) - flagged)
    amounts = dict(Transaction.objects.filter(pk__in=frauds).values_list("pk", "amount"))
    assert window.confirmed_amount == pytest.approx(sum(amounts[pk] for pk in set(frauds) & flagged))
    # Traffic like the training data: no feature moved.
    assert window.top_feature_psi < 0.1 and window.score_psi < 0.1
    assert monitoring.monitor(now=START + HOUR + timedelta(minutes=2))["new"] == 0  # summarised once


def test_drifted_traffic_records_one_drift_event_per_streak_and_can_queue_a_retrain(
    deployed_since_start, settings, monkeypatch
):
    settings.MONITOR_DRIFT_ACTION = "retrain"
    queued = []
    monkeypatch.setattr(monitoring, "enqueue_retrain", lambda **kwargs: queued.append(kwargs))
    DataFile.objects.create(key="incoming/new.csv", etag="e", status=DataFile.Status.NEW)
    for hour in range(3):
        drifted = synthetic.generate(rows=1_500, fraud_rate=0.01, seed=40 + hour, drift=4.0, start_time=hour * 3600.0)
        store(drifted, START + hour * HOUR)
    monitoring.monitor(now=START + 3 * HOUR + timedelta(minutes=1))
    windows = list(MonitorWindow.objects.order_by("start"))
    assert len(windows) == 3 and all(w.drift > 0.2 for w in windows)
    events = ModelEvent.objects.filter(kind=ModelEvent.Kind.DRIFT)
    assert events.count() == 1  # the streak is one event, however many runs see it
    assert "PSI past 0.2" in events.get().reason and "a retrain is queued" in events.get().reason
    assert queued == [{"trigger": "schedule", "actor": "monitoring"}]
    monitoring.monitor(now=START + 3 * HOUR + timedelta(minutes=5))
    assert events.count() == 1
    assert monitoring.state(deployed_since_start, "primary") == "drifting"


def test_a_late_label_recomputes_its_window(deployed_since_start, training_frame):
    frame = training_frame.iloc[:500]
    ids = store(frame, START)
    monitoring.monitor(now=START + HOUR + timedelta(minutes=1))
    window = MonitorWindow.objects.get()
    assert window.decided_alerts == 0
    flagged = list(
        Prediction.objects.filter(transaction_id__in=ids, is_fraud=True).values_list("transaction_id", flat=True)
    )
    assert flagged, "the generated data has frauds the model flags"
    Transaction.objects.filter(pk=flagged[0]).update(label="legitimate", reviewed_at=timezone.now())
    assert monitoring.monitor(now=START + HOUR + timedelta(minutes=5))["recomputed"] == 1
    window.refresh_from_db()
    assert (window.decided_alerts, window.confirmed_alerts) == (1, 0)
    assert monitoring.monitor(now=START + HOUR + timedelta(minutes=6))["recomputed"] == 0


def test_a_version_without_a_reference_has_windows_but_no_psi(deployed_since_start, training_frame, analyst_client):
    ModelVersion.objects.filter(pk=deployed_since_start.pk).update(reference={})
    store(training_frame.iloc[:300], START)
    monitoring.monitor(now=START + HOUR + timedelta(minutes=1))
    window = MonitorWindow.objects.get()
    assert window.transactions == 300 and window.score_psi is None and window.feature_psi == {}
    page = analyst_client.get(f"/models/{deployed_since_start.version}/").content.decode()
    assert "backfill_reference" in page
    page = analyst_client.get(f"/monitoring/{deployed_since_start.version}/").content.decode()
    assert 'id="no-reference"' in page


def test_backfill_reference_computes_it_from_a_file(deployed_since_start, training_csv):
    ModelVersion.objects.filter(pk=deployed_since_start.pk).update(reference={})
    call_command("backfill_reference", str(deployed_since_start.version), "--csv", str(training_csv))
    found = ModelVersion.objects.get(pk=deployed_since_start.pk).reference
    assert set(found["features"]) == set(FEATURES) and found["rows"] == 30_000  # jsonb keeps no key order


def test_the_pages_draw_the_windows(deployed_since_start, training_frame, analyst_client):
    for hour in range(3):
        store(training_frame.iloc[hour * 300 : (hour + 1) * 300], START + hour * HOUR)
    summary = tasks.monitor_windows()
    assert summary.startswith("4 windows summarised")
    page = analyst_client.get(f"/monitoring/{deployed_since_start.version}/").content.decode()
    assert page.count("<svg") == 6
    overview = analyst_client.get("/monitoring/").content.decode()
    assert f"v{deployed_since_start.version}</a>" in overview and "No window closed yet" not in overview


def test_a_shadows_window_waits_until_the_shadow_scored_all_of_it(
    deployed_since_start, training_frame, trained, settings
):
    from detection import shadow_scoring
    from modelops.models import Deployment
    from modelops.services import deployments, versions

    settings.SHADOW_SETTLE_SECONDS = 0
    shadow = versions.record_version(result=trained)
    deployments.deploy_shadow(version_id=shadow.pk, actor="test")
    Deployment.objects.filter(version=shadow).update(since=START)
    store(training_frame.iloc[:200], START)
    store(training_frame.iloc[200:400], START + HOUR)
    now = START + 2 * HOUR + timedelta(minutes=1)
    monitoring.monitor(now=now)
    assert not MonitorWindow.objects.filter(role="shadow").exists()  # nothing scored by it yet
    shadow_scoring.score_shadows(max_seconds=30)
    monitoring.monitor(now=now)
    # The second hour holds the watermark: only the first is known whole.
    assert list(MonitorWindow.objects.filter(role="shadow").values_list("start", "transactions")) == [(START, 200)]


def test_windows_too_small_to_measure_never_count_as_drift(deployed_since_start):
    for hour in range(3):
        drifted = synthetic.generate(rows=50, fraud_rate=0.02, seed=60 + hour, drift=4.0)
        store(drifted, START + hour * HOUR)
    monitoring.monitor(now=START + 3 * HOUR + timedelta(minutes=1))
    assert all(w.drift > 0.2 for w in MonitorWindow.objects.all())
    assert not ModelEvent.objects.filter(kind=ModelEvent.Kind.DRIFT).exists()


def test_an_alert_rate_off_by_chance_alone_is_not_drift(deployed_since_start, settings):
    # An expected rate of 0.12 %: 400 transactions expect half an alert, so none or two are chance.
    ModelVersion.objects.filter(pk=deployed_since_start.pk).update(
        reference={**deployed_since_start.reference, "alert_rate": 0.0012}
    )
    version = ModelVersion.objects.get(pk=deployed_since_start.pk)
    windows = [
        MonitorWindow(version=version, role="primary", start=START, end=START, transactions=400, alerts=alerts)
        for alerts in (0, 2, 0)
    ]
    assert monitoring._drifted(windows, version) is None
    windows = [
        MonitorWindow(version=version, role="primary", start=START, end=START, transactions=400, alerts=alerts)
        for alerts in (9, 11, 8)
    ]
    assert monitoring._drifted(windows, version).startswith("alert rate 0.0225 against 0.0012")
