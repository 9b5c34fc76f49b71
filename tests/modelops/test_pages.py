"""The model pages: versions, their charts, activation and rollback, data files, training runs."""

from __future__ import annotations

import pytest

from modelops.models import DataFile, ModelEvent, ModelVersion, TrainingRun
from modelops.services import deployments, training_runs, versions


@pytest.fixture
def two_versions(active_version, trained) -> tuple[ModelVersion, ModelVersion]:
    """v1 retired, v2 active."""
    newer = versions.record_version(result=trained, parent=active_version)
    deployments.activate_version(version_id=newer.pk, actor="test", reason="newer")
    active_version.refresh_from_db()
    newer.refresh_from_db()
    return active_version, newer


def test_the_version_list_shows_every_version_and_its_status(analyst_client, two_versions):
    page = analyst_client.get("/models/").content.decode()
    for version in two_versions:
        assert f'href="/models/{version.version}/"' in page
    assert "retired" in page and "primary" in page


def test_a_version_page_draws_its_four_charts(analyst_client, active_version):
    response = analyst_client.get(f"/models/{active_version.version}/")
    page = response.content.decode()
    assert response.status_code == 200
    for title in ("Precision-recall curve", "Confusion matrix", "Score distribution", "Feature importance"):
        assert f'aria-label="{title}' in page
    confusion = active_version.metrics["confusion"]
    assert f">{confusion['tp']:,}<" in page
    assert "<polyline" in page


def test_a_version_page_shows_the_run_that_recorded_it_not_one_running_meanwhile(analyst_client, trained):
    mine = TrainingRun.objects.create(trigger=TrainingRun.Trigger.MANUAL, log="my run's log")
    version = versions.record_version(result=trained, training_run=mine, kind=ModelVersion.Kind.FULL_RETRAIN)
    TrainingRun.objects.filter(pk=mine.pk).update(status=TrainingRun.Status.SUCCEEDED)
    TrainingRun.objects.create(trigger=TrainingRun.Trigger.SCHEDULE, log="another run's log")
    page = analyst_client.get(f"/models/{version.version}/").content.decode()
    assert "my run&#x27;s log" in page and "another run" not in page
    assert "Full retrain, recorded" in page


def test_an_analyst_cannot_activate(analyst_client, two_versions):
    older, newer = two_versions
    assert "Roll back" not in analyst_client.get(f"/models/{older.version}/").content.decode()
    assert analyst_client.post(f"/models/{older.version}/activate", {"reason": "x"}).status_code == 403
    assert ModelVersion.objects.primary().get() == newer


def test_a_model_manager_rolls_back_with_a_reason(manager_client, manager, two_versions):
    older, newer = two_versions
    confirm = manager_client.get(f"/models/{older.version}/activate")
    assert "Roll back to v1?" in confirm.content.decode()
    assert ModelVersion.objects.primary().get() == newer  # nothing changes before the POST

    response = manager_client.post(f"/models/{older.version}/activate", {"reason": "precision dropped"})
    assert response.url == f"/models/{older.version}/"
    assert ModelVersion.objects.primary().get() == older
    event = ModelEvent.objects.latest("id")
    assert (event.kind, event.from_version, event.to_version, event.user, event.reason) == (
        "rollback",
        newer,
        older,
        manager,
        "precision dropped",
    )
    assert "precision dropped" in manager_client.get(f"/models/{older.version}/").content.decode()


def test_a_tampered_version_is_not_activated_from_the_pages(manager_client, two_versions, bucket):
    older, newer = two_versions
    (bucket / "models" / older.artifact).write_bytes(b'{"tampered": true}')
    manager_client.post(f"/models/{older.version}/activate", {"reason": "try"})
    assert ModelVersion.objects.primary().get() == newer
    assert ModelEvent.objects.latest("id").kind == "reject"


def test_the_activation_form_is_csrf_protected(manager, two_versions):
    from django.test import Client

    older, newer = two_versions
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(manager)
    assert strict.post(f"/models/{older.version}/activate", {"reason": "x"}).status_code == 403
    assert ModelVersion.objects.primary().get() == newer


def test_the_data_files_page_shows_each_rejection_reason(analyst_client):
    DataFile.objects.create(key="incoming/good.csv", etag="a", status="used", rows=10, frauds=1)
    DataFile.objects.create(
        key="incoming/bad.csv", etag="b", status="rejected", error="line 7: column V3 is not a number"
    )
    page = analyst_client.get("/models/data-files/").content.decode()
    assert "incoming/good.csv" in page and "line 7: column V3 is not a number" in page
    rejected = analyst_client.get("/models/data-files/?status=rejected").content.decode()
    assert "incoming/good.csv" not in rejected


def test_the_data_files_page_says_which_new_files_wait_for_more_data(analyst_client):
    from django.utils import timezone

    DataFile.objects.create(key="incoming/looked-at.csv", etag="a", status="new", processed_at=timezone.now())
    DataFile.objects.create(key="incoming/just-arrived.csv", etag="b", status="new")
    page = analyst_client.get("/models/data-files/").content.decode()
    assert page.count("waiting for more data") == 1


def test_the_training_runs_page_shows_logs_and_errors(analyst_client, active_version):
    TrainingRun.objects.create(trigger="schedule", status="failed", error="no new data", log="scanned 0 files")
    page = analyst_client.get("/models/training-runs/").content.decode()
    assert "no new data" in page and "scanned 0 files" in page


def test_the_training_runs_page_says_when_the_schedule_is_paused(analyst_client, active_version, settings):
    settings.TRAINING_MAX_ABANDONED = 2
    page = analyst_client.get("/models/training-runs/").content.decode()
    assert 'id="paused"' not in page
    for _ in range(2):
        TrainingRun.objects.create(trigger="schedule", status="failed", error=training_runs.ABANDONED)
    page = analyst_client.get("/models/training-runs/").content.decode()
    assert 'id="paused"' in page and "Scheduled training is paused: the last 2 runs were abandoned" in page
