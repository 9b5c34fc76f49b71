"""The bucket goes away in the middle of a scan, an upload or an activation: the S3 API server
(moto's, on 127.0.0.1) is really stopped at that moment and started again on the same port, so
boto3 meets a refused connection as it would meet an S3 outage.

What must hold: nothing is recorded as read that was not read, no version names an artifact that
was not uploaded, no run leaves data "used" or candidates undecided, the active model keeps
serving from memory, and the next scan or retrain after the outage does the work.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from django.core.management import CommandError, call_command
from moto.server import ThreadedMotoServer

from modelops import model_cache, retrain, scan, tasks
from modelops.models import DataFile, ModelEvent, ModelVersion, TrainingRun
from modelops.services import deployments, versions

# The s3 fixture (conftest) runs here against the restartable server below, which overrides its
# s3_server in this module.
from .conftest import csv_bytes, upload


class RestartableServer:
    """moto's S3 server, stoppable and startable again on the same port. Its buckets live in
    this process, so they outlive a stop, as a real bucket outlives an outage."""

    def __init__(self):
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        self.host, self.port = self.server.get_host_and_port()
        self.running = True

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.running:
            self.server.stop()
            self.running = False

    def start(self) -> None:
        if not self.running:
            self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self.server.start()
            self.running = True


@pytest.fixture(scope="module")
def s3_control():
    server = RestartableServer()
    yield server
    server.start()
    urllib.request.urlopen(urllib.request.Request(f"{server.endpoint}/moto-api/reset", method="POST")).close()
    server.stop()


@pytest.fixture(scope="module")
def s3_server(s3_control):
    return s3_control.endpoint


@pytest.fixture
def outage(s3_control):
    """The server, running again after each test whatever the test did to it."""
    yield s3_control
    s3_control.start()


@pytest.fixture
def serving(s3, active_version, client, original_rows):
    """An active model stored in the bucket and loaded by this worker (it answered once)."""
    assert score(client, original_rows).status_code == 200
    return active_version


def score(client, original_rows):
    return client.post("/detect-fraud", json.dumps(original_rows["legit"]), content_type="application/json")


def stop_after(outage, monkeypatch, module, name: str, *, calls: int = 1) -> None:
    """Replace module.name with a wrapper that stops the server after its ``calls``-th call."""
    original = getattr(module, name)
    count = 0

    def wrapper(*args, **kwargs):
        nonlocal count
        result = original(*args, **kwargs)
        count += 1
        if count == calls:
            outage.stop()
        return result

    monkeypatch.setattr(module, name, wrapper)


def test_a_scan_that_loses_the_bucket_half_way_records_only_what_it_read(s3, outage, monkeypatch):
    upload(s3, "a.csv", csv_bytes(rows=1_000, seed=1))
    upload(s3, "b.csv", csv_bytes(rows=1_000, seed=2))
    stop_after(outage, monkeypatch, scan, "read_file")  # the bucket goes once a.csv is read

    with pytest.raises(scan.StorageUnavailable, match=r"1 accepted, 0 rejected, 1 unreadable"):
        tasks.scan_incoming()
    assert list(DataFile.objects.values_list("key", "status")) == [("a.csv", DataFile.Status.NEW)]

    outage.start()
    result = scan.scan_incoming()
    assert (result.accepted, result.already_seen, result.unreadable) == (["b.csv"], 1, [])
    assert DataFile.objects.count() == 2


def test_the_scan_command_fails_when_a_file_could_not_be_read(s3, outage, monkeypatch, capsys):
    upload(s3, "a.csv", csv_bytes(rows=1_000, seed=1))
    upload(s3, "b.csv", csv_bytes(rows=1_000, seed=2))
    stop_after(outage, monkeypatch, scan, "read_file")  # listed, then the bucket goes
    with pytest.raises(CommandError, match="1 unreadable"):
        call_command("scan_bucket")
    assert "could not read b.csv" in capsys.readouterr().err


def test_a_scan_with_the_bucket_down_records_nothing_and_the_next_one_scans(s3, outage):
    upload(s3, "a.csv", csv_bytes(rows=1_000, seed=1))
    outage.stop()
    with pytest.raises(scan.StorageUnavailable, match="could not be listed"):
        tasks.scan_incoming()
    assert not DataFile.objects.exists()

    outage.start()
    assert scan.scan_incoming().accepted == ["a.csv"]


def test_an_upload_that_fails_leaves_no_version_the_data_new_and_the_model_serving(
    serving, s3, outage, monkeypatch, client, original_rows
):
    upload(s3, "new.csv", csv_bytes(rows=8_000, seed=41))
    scan.scan_incoming()
    # The bucket goes once the first candidate is stored: the second one's upload fails.
    stop_after(outage, monkeypatch, versions.artifact_store, "store")

    with pytest.raises(Exception, match="Could not connect to the endpoint URL"):
        retrain.retrain(trigger=TrainingRun.Trigger.SCHEDULE)
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.FAILED
    assert DataFile.objects.get().status == DataFile.Status.NEW
    assert ModelVersion.objects.primary().get() == serving
    # The candidate stored before the outage was recorded; the run's failure rejected it.
    others = ModelVersion.objects.exclude(pk=serving.pk)
    assert [v.status for v in others] == [ModelVersion.Status.REJECTED]
    assert "failed" in ModelEvent.objects.get(to_version=others.get()).reason
    answer = score(client, original_rows)  # the bucket is still down
    assert (answer.status_code, answer.json()["model_version"]) == (200, serving.version)

    outage.start()
    monkeypatch.undo()
    # Every version names an artifact that is in the bucket.
    s3_client, bucket_name = s3
    for version in ModelVersion.objects.all():
        assert s3_client.head_object(Bucket=bucket_name, Key=f"models/{version.artifact}")["ContentLength"] > 0
    # The next scheduled retrain finds the data still new and trains.
    summary = tasks.retrain_models()
    assert summary.startswith("run ") and ": succeeded" in summary, summary
    assert DataFile.objects.get().status == DataFile.Status.USED


def test_an_activation_that_cannot_reach_the_bucket_fails_the_run_and_keeps_the_data_new(
    serving, s3, outage, monkeypatch, settings
):
    settings.RETRAIN_TOLERANCE = 1.0  # the best candidate is activated whatever it scores
    upload(s3, "new.csv", csv_bytes(rows=8_000, seed=41))
    scan.scan_incoming()
    # Both candidates are stored and recorded; the bucket goes before the activation reads one.
    stop_after(outage, monkeypatch, versions, "record_version", calls=2)

    with pytest.raises(deployments.ActivationUnavailable, match="cannot be read"):
        retrain.retrain(trigger=TrainingRun.Trigger.SCHEDULE)
    assert TrainingRun.objects.get().status == TrainingRun.Status.FAILED
    assert DataFile.objects.get().status == DataFile.Status.NEW
    assert ModelVersion.objects.primary().get() == serving
    assert set(ModelVersion.objects.exclude(pk=serving.pk).values_list("status", flat=True)) == {
        ModelVersion.Status.REJECTED
    }
    assert not ModelEvent.objects.filter(kind=ModelEvent.Kind.INTEGRITY).exists()
    # Each candidate is rejected once, because its run failed; the outage is not held against it.
    for version in ModelVersion.objects.exclude(pk=serving.pk):
        reasons = list(
            ModelEvent.objects.filter(kind=ModelEvent.Kind.REJECT, to_version=version).values_list("reason", flat=True)
        )
        assert len(reasons) == 1 and "failed" in reasons[0], reasons


def test_a_worker_starting_during_an_outage_answers_503_and_serves_once_the_bucket_is_back(
    serving, outage, monkeypatch, client, original_rows
):
    model_cache.clear()  # a worker that has not loaded the model yet
    outage.stop()
    answer = score(client, original_rows)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "model_unavailable"
    assert "127.0.0.1" not in answer.content.decode() and "bucket" not in answer.content.decode()
    # An outage says nothing about the artifact: no integrity event.
    assert not ModelEvent.objects.filter(kind=ModelEvent.Kind.INTEGRITY).exists()

    outage.start()
    monkeypatch.setattr(model_cache, "RETRY_FAILED_LOAD_SECONDS", 0.0)
    assert score(client, original_rows).status_code == 200
