"""A model artifact altered, truncated or deleted in the bucket: refused by its checksum wherever
it is loaded, the active version left as it was, and the fact recorded once in the audit trail."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import storages

from modelops import artifact_store, model_cache, retrain, scan, tasks
from modelops.ml import synthetic
from modelops.models import DataFile, ModelEvent, ModelVersion, TrainingRun
from modelops.services import versions


@pytest.fixture
def artifact_path(active_version, bucket):
    return bucket / "models" / active_version.artifact


def tamper(path) -> bytes:
    """Change one value of the stored file, as a careless or malicious edit would: still valid
    JSON, different bytes. Returns the original bytes."""
    original = path.read_bytes()
    document = json.loads(original)
    document["threshold"] = 0.0  # flags every transaction as fraud if it were ever served
    path.write_bytes(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())
    return original


def score(client, original_rows):
    return client.post("/detect-fraud", json.dumps(original_rows["legit"]), content_type="application/json")


def integrity_events():
    return list(ModelEvent.objects.filter(kind=ModelEvent.Kind.INTEGRITY))


def test_a_tampered_active_artifact_is_refused_the_version_stays_active_and_it_is_recorded_once(
    client, active_version, artifact_path, original_rows
):
    tamper(artifact_path)
    # A worker starting now (nothing cached) must not serve the altered model.
    answers = [score(client, original_rows) for _ in range(5)]
    assert [a.status_code for a in answers] == [503] * 5
    assert answers[0].json()["error"]["code"] == "model_unavailable"
    assert "checksum" not in answers[0].json()["error"]["message"]  # the client is told no detail; the log is
    assert ModelVersion.objects.primary().get() == active_version
    # Five refusals, one audit row.
    [event] = integrity_events()
    assert (event.to_version, event.actor) == (active_version, "serving")
    assert "checksum does not match" in event.reason


def test_a_restored_artifact_is_served_again_without_a_restart(
    client, active_version, artifact_path, original_rows, monkeypatch
):
    original = tamper(artifact_path)
    assert score(client, original_rows).status_code == 503
    artifact_path.write_bytes(original)
    # Within the retry window the failure is remembered, so the bucket is not hammered...
    assert score(client, original_rows).status_code == 503
    # ...after it, the artifact is fetched again.
    monkeypatch.setattr(model_cache, "RETRY_FAILED_LOAD_SECONDS", 0.0)
    answer = score(client, original_rows)
    assert answer.status_code == 200
    assert answer.json()["model_version"] == active_version.version


def test_a_worker_serving_from_memory_keeps_serving_and_the_scheduled_scan_finds_the_tampering(
    client, active_version, artifact_path, original_rows
):
    assert score(client, original_rows).status_code == 200  # loaded and cached
    tamper(artifact_path)
    assert score(client, original_rows).status_code == 200  # the verified copy in memory
    assert integrity_events() == []

    summary = tasks.scan_incoming()
    assert f"active v{active_version.version} FAILED verification" in summary
    [event] = integrity_events()
    assert (event.to_version, event.actor) == (active_version, "scheduler")
    assert ModelVersion.objects.primary().get() == active_version


def test_an_intact_artifact_passes_the_scheduled_check_without_an_event(active_version):
    assert tasks.scan_incoming().endswith(f"active v{active_version.version} verified")
    assert integrity_events() == []


def test_a_deleted_artifact_is_an_integrity_failure(client, active_version, artifact_path, original_rows):
    artifact_path.unlink()
    assert score(client, original_rows).status_code == 503
    [event] = integrity_events()
    assert "missing from the models storage" in event.reason


def test_the_integrity_event_is_listed_in_the_admin(client, active_version, artifact_path, original_rows):
    tamper(artifact_path)
    score(client, original_rows)
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    page = client.get("/admin/modelops/modelevent/?kind__exact=integrity")
    assert page.status_code == 200
    assert b"Integrity failure" in page.content
    assert b"checksum does not match" in page.content


def test_retraining_stops_when_the_active_artifact_is_tampered_and_keeps_its_data_new(
    active_version, artifact_path, bucket
):
    folder = bucket / "incoming"
    folder.mkdir(parents=True)
    synthetic.write_csv(synthetic.generate(rows=5_000, fraud_rate=0.02, seed=3), folder / "new.csv")
    scan.scan_incoming()
    tamper(artifact_path)

    with pytest.raises(Exception, match="checksum"):
        retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.FAILED and "checksum" in run.error
    assert ModelVersion.objects.primary().get() == active_version
    assert list(ModelVersion.objects.all()) == [active_version]
    assert DataFile.objects.get().status == DataFile.Status.NEW
    [event] = integrity_events()
    assert event.actor == "scheduler"


def test_a_corrupt_copy_under_the_content_name_is_replaced_when_the_same_model_is_stored_again(db, trained, bucket):
    # An interrupted upload leaves half a file under the name; storing the same model again
    # must not reuse it (the version would name a file that fails its checksum).
    name, _ = artifact_store.store(trained.bundle)
    path = bucket / "models" / name
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])

    version = versions.record_version(result=trained)
    assert version.artifact == name
    assert path.read_bytes() == whole
    assert artifact_store.load(version.artifact, version.sha256).threshold == trained.bundle.threshold
    assert storages["models"].listdir("")[1] == [name]
