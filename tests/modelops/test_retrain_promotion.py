"""RETRAIN_PROMOTION=shadow: the best candidate that passes the gate is put into shadow, and the
primary keeps serving until a person (or SHADOW_AUTO_PROMOTE) promotes it."""

from __future__ import annotations

import pytest

from modelops import retrain, scan
from modelops.ml import synthetic
from modelops.models import DataFile, ModelEvent, ModelVersion, TrainingRun


@pytest.fixture
def new_file(bucket, db, settings):
    settings.FRAUD_TRAINING = {**settings.FRAUD_TRAINING, "n_estimators": 40}
    folder = bucket / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    frame = synthetic.generate(rows=20_000, fraud_rate=0.02, seed=21, drift=0.3)
    synthetic.write_csv(frame, folder / "creditcard_20260102_000000.csv")
    scan.scan_incoming()
    return DataFile.objects.get()


def test_with_shadow_promotion_the_best_candidate_goes_into_shadow(active_version, new_file, settings):
    settings.RETRAIN_PROMOTION = "shadow"
    settings.RETRAIN_TOLERANCE = 1.0  # the best candidate passes whatever it scores
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert ModelVersion.objects.primary().get() == active_version
    shadow = run.result_version
    assert (shadow.state, shadow.status) == ("shadow", ModelVersion.Status.ACCEPTED)
    event = ModelEvent.objects.get(kind=ModelEvent.Kind.SHADOW)
    assert (event.to_version, event.actor) == (shadow, "scheduler")
    assert "RETRAIN_PROMOTION=shadow" in event.reason
    others = ModelVersion.objects.exclude(pk__in=[active_version.pk, shadow.pk])
    assert {v.status for v in others} == {ModelVersion.Status.REJECTED}
    assert "put into shadow" in run.log
    new_file.refresh_from_db()
    assert new_file.status == DataFile.Status.USED


def test_without_a_primary_shadow_promotion_still_activates_the_first_model(new_file, settings):
    settings.RETRAIN_PROMOTION = "shadow"
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.result_version.state == "primary"
