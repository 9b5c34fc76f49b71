"""Shadow versions: scored off the request path from a watermark, once per transaction, never
reaching an answer, the queue, the counts, retraining labels or a repeated id's replay."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from detection import reviews, selectors, shadow_promotion, shadow_scoring, tasks
from detection.feedback import labelled_rows
from detection.models import Prediction, Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from modelops.ml import training
from modelops.ml.schema import FEATURES, LABEL
from modelops.models import Deployment, ModelEvent, ModelVersion
from modelops.services import deployments, versions
from tests.conftest import SMALL_CONFIG


@pytest.fixture(scope="module")
def challenger_result(training_frame) -> training.TrainResult:
    """Another model of the same data: fewer trees, so its scores differ from the primary's."""
    return training.train(training_frame, replace(SMALL_CONFIG, n_estimators=8))


@pytest.fixture
def shadow(active_version, challenger_result, settings) -> ModelVersion:
    settings.SHADOW_SETTLE_SECONDS = 0.0
    version = versions.record_version(result=challenger_result)
    deployments.deploy_shadow(version_id=version.pk, actor="alice", reason="try it")
    return version


def score(frame, *, client: str = "", external_ids=None):
    values = frame[list(FEATURES)].to_numpy()
    ids = external_ids or [None] * len(values)
    return score_transactions(batch=Batch(values=values, external_ids=ids), source="api", client=client)


def catch_up() -> dict[int, int]:
    return shadow_scoring.score_shadows(max_seconds=60)


def test_a_shadow_scores_what_is_stored_after_it_started_once_each(shadow, training_frame, settings):
    before = score(training_frame.head(5))
    deployment = Deployment.objects.get(version=shadow)
    Deployment.objects.filter(pk=deployment.pk).update(since=timezone.now())
    after = score(training_frame.iloc[5:2_005])
    settings.SHADOW_CHUNK_ROWS = 300  # several chunks
    assert catch_up() == {shadow.version: 2_000}
    assert catch_up() == {shadow.version: 0}  # a second run finds nothing new

    rows = Prediction.objects.filter(model_version=shadow)
    assert rows.count() == 2_000
    assert set(rows.values_list("role", flat=True)) == {"shadow"}
    assert not rows.filter(transaction_id__in=[r.transaction_id for r in before]).exists()
    expected = shadow.threshold
    scored = dict(rows.values_list("transaction_id", "score"))
    direct = ModelVersion.objects.get(pk=shadow.pk)
    from modelops import model_cache

    bundle = model_cache.loaded(version_id=direct.pk, sha256=direct.sha256, name=direct.artifact)
    values = training_frame.iloc[5:2_005][list(FEATURES)].to_numpy()
    np.testing.assert_allclose([scored[r.transaction_id] for r in after], bundle.predict_proba(values))
    assert all(p.is_fraud == (p.score >= expected) for p in rows)
    assert Deployment.objects.get(pk=deployment.pk).scored_through == after[-1].transaction_id


def test_a_chunk_overtaken_by_another_run_is_dropped_and_nothing_is_scored_twice(shadow, training_frame):
    score(training_frame.head(50))
    deployment = Deployment.objects.get(version=shadow)
    assert shadow_scoring.score_chunk(deployment.pk, size=20) == 20
    # Another worker's run moves the watermark back to before the chunk it is also scoring: the
    # unique index keeps each transaction once per version, whatever the watermark says.
    Deployment.objects.filter(pk=deployment.pk).update(scored_through=0)
    assert shadow_scoring.score_chunk(deployment.pk, size=50) == 50
    assert Prediction.objects.filter(model_version=shadow).count() == 50


def test_the_newest_rows_wait_until_they_settle(shadow, training_frame, settings):
    score(training_frame.head(10))
    settings.SHADOW_SETTLE_SECONDS = 3600
    assert catch_up() == {shadow.version: 0}
    settings.SHADOW_SETTLE_SECONDS = 0
    assert catch_up() == {shadow.version: 10}


def test_shadow_predictions_never_reach_the_queue_counts_labels_or_replays(shadow, training_frame):
    frauds = training_frame[training_frame[LABEL] == 1].head(20)
    first = score(frauds, client="key:1", external_ids=[f"t{i}" for i in range(20)])
    # The shadow alerts on everything: if its rows leaked, the queue and counts would double.
    ModelVersion.objects.filter(pk=shadow.pk).update(threshold=0.0)
    catch_up()
    assert Prediction.objects.filter(role="shadow", is_fraud=True).count() == 20

    queue = list(selectors.queue_rows(filters={"flagged": "", "state": "", "version": None}))
    assert len(queue) == 20 and {p.role for p in queue} == {"primary"}
    primary_alerts = sum(r.is_fraud for r in first)
    assert reviews.counts()["awaiting"] == primary_alerts

    again = score(frauds, client="key:1", external_ids=[f"t{i}" for i in range(20)])
    assert [(r.repeated, r.model_version, r.fraud_probability) for r in again] == [
        (True, r.model_version, r.fraud_probability) for r in first
    ]
    Transaction.objects.filter(pk=first[0].transaction_id).update(label="fraud")
    frame, _ = labelled_rows(None)
    assert len(frame) == 1  # one row per labelled transaction, not one per prediction


def test_the_api_answers_with_the_primary_only_whatever_the_shadows(client, shadow, original_rows):
    body = client.post("/detect-fraud", json.dumps(original_rows["legit"]), content_type="application/json").json()
    catch_up()
    assert body["model_version"] == ModelVersion.objects.primary().get().version
    assert Prediction.objects.filter(transaction_id=body["transaction_id"]).count() == 2
    page = client.get(f"/api/models/{shadow.version}").json()
    assert (page["status"], page["role"]) == ("shadow", "shadow")


def test_putting_into_shadow_and_stopping_are_audited_and_refused_twice(active_version, challenger_result):
    version = versions.record_version(result=challenger_result)
    deployments.deploy_shadow(version_id=version.pk, actor="alice", reason="try it")
    with pytest.raises(deployments.ShadowError, match="deployed already"):
        deployments.deploy_shadow(version_id=version.pk, actor="alice")
    with pytest.raises(deployments.ShadowError, match="deployed already"):
        deployments.deploy_shadow(version_id=active_version.pk, actor="alice")
    deployments.stop_shadow(version_id=version.pk, actor="bob", reason="enough")
    with pytest.raises(deployments.ShadowError, match="not in shadow"):
        deployments.stop_shadow(version_id=version.pk, actor="bob")
    kinds = list(ModelEvent.objects.order_by("id").values_list("kind", "actor", "reason"))
    assert kinds[-2:] == [("shadow", "alice", "try it"), ("unshadow", "bob", "enough")]


def test_promoting_a_shadow_makes_it_primary_and_keeps_the_old_one_as_a_rollback_target(shadow, active_version):
    deployments.activate_version(version_id=shadow.pk, actor="max", reason="it wins")
    assert ModelVersion.objects.primary().get() == shadow
    assert not Deployment.objects.shadows().exists()
    event = ModelEvent.objects.first()
    assert (event.kind, event.from_version, event.reason) == (
        "activate",
        active_version,
        "promoted from shadow: it wins",
    )
    deployments.activate_version(version_id=active_version.pk, actor="max", reason="back")
    assert ModelVersion.objects.primary().get() == active_version


def test_auto_promotion_needs_enough_labels_and_a_margin(shadow, active_version, training_frame, settings):
    settings.SHADOW_AUTO_PROMOTE = True
    settings.SHADOW_MIN_LABELLED = 40
    sample = pd.concat([training_frame[training_frame[LABEL] == c].head(30) for c in (1, 0)])
    results = score(sample)
    catch_up()
    # Too few labels: nothing decided.
    assert "promoted" not in tasks.score_shadows()
    labels = ["fraud" if c else "legitimate" for c in sample[LABEL]]
    for result, label in zip(results, labels, strict=True):
        Transaction.objects.filter(pk=result.transaction_id).update(label=label)
    figures = shadow_promotion.labelled_figures(shadow.pk)
    assert figures["labelled"] == 60 and figures["labelled_frauds"] == 30
    # The primary's stored decisions are made worse than the shadow's: it must win.
    Prediction.objects.filter(role="primary").update(score=0.5, is_fraud=False)
    settings.RETRAIN_METRIC = "f1"
    summary = tasks.score_shadows()
    assert f"v{shadow.version} promoted" in summary
    assert ModelVersion.objects.primary().get() == shadow
    event = ModelEvent.objects.first()
    assert event.actor == "scheduler" and "f1" in event.reason and "60 labelled" in event.reason


def test_the_shadow_page_compares_it_with_the_primary(manager_client, shadow, training_frame):
    frauds = training_frame[training_frame[LABEL] == 1].head(10)
    results = score(pd.concat([frauds, training_frame[training_frame[LABEL] == 0].head(90)]))
    Transaction.objects.filter(pk__in=[r.transaction_id for r in results[:10]]).update(label="fraud")
    catch_up()
    page = manager_client.get(f"/models/{shadow.version}/shadow/").content.decode()
    assert "On 10 labelled transactions (10 frauds)" in page
    assert 'id="promote"' in page and 'id="stop"' in page
    assert page.count("<svg") == 2
    assert "Behind: <b>0</b>" in page
    version_page = manager_client.get(f"/models/{shadow.version}/").content.decode()
    assert f'href="/models/{shadow.version}/shadow/"' in version_page and "Promote v" in version_page


def test_a_manager_puts_a_version_into_shadow_and_stops_it_from_the_pages(
    manager_client, active_version, challenger_result
):
    version = versions.record_version(result=challenger_result)
    assert 'id="shadow"' in manager_client.get(f"/models/{version.version}/").content.decode()
    response = manager_client.post(f"/models/{version.version}/shadow/start", {"reason": "see how it does"})
    assert response.status_code == 302 and response.url == f"/models/{version.version}/shadow/"
    assert ModelVersion.objects.get(pk=version.pk).role == "shadow"
    response = manager_client.post(f"/models/{version.version}/shadow/stop", {"reason": "done"})
    assert ModelVersion.objects.get(pk=version.pk).role is None
    assert list(ModelEvent.objects.filter(to_version=version).values_list("kind", flat=True)) == ["shadow"]


def test_an_analyst_reads_the_shadow_page_but_cannot_change_deployments(analyst_client, shadow):
    assert analyst_client.get(f"/models/{shadow.version}/shadow/").status_code == 200
    assert analyst_client.post(f"/models/{shadow.version}/shadow/stop").status_code == 403
    assert ModelVersion.objects.get(pk=shadow.pk).role == "shadow"
