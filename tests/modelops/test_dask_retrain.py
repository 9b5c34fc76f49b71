"""Retraining and training on a real Dask cluster (a LocalCluster of 2 workers, 1 thread each): the
workers read the bucket (moto's S3 server on 127.0.0.1, through s3fs) and the Django process only the
figures; a worker killed mid-training fails the run cleanly."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from django.core.management import CommandError, call_command

from modelops import retrain, scan
from modelops.ml import dask_training, synthetic
from modelops.models import DataFile, ModelVersion, TrainingRun

from .conftest import csv_bytes, upload


@pytest.fixture(scope="module")
def dask_cluster():
    """A cluster the runs connect to by address (DASK_SCHEDULER_ADDRESS), and the test's own client."""
    with dask_training.open_cluster(workers=2, threads=1, memory_limit="2GiB") as client:
        yield client


@pytest.fixture
def on_cluster(settings, dask_cluster):
    settings.DASK_SCHEDULER_ADDRESS = dask_cluster.scheduler.address
    settings.FRAUD_TRAINING = {**settings.FRAUD_TRAINING, "n_estimators": 20}
    dask_cluster.wait_for_workers(2, timeout=60)
    return dask_cluster


def _no_reads_here(monkeypatch):
    """The Django process must not read a data file: only the workers do."""

    def refuse(*args, **kwargs):
        raise AssertionError("a data file was read by the Django process")

    monkeypatch.setattr(retrain, "read_file", refuse)


def _bad_csv() -> bytes:
    lines = csv_bytes(rows=300, seed=5).decode().splitlines()
    cells = lines[4].split(",")
    cells[3] = "abc"  # line 5, column V3
    lines[4] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


def test_retrain_on_the_cluster_reads_the_bucket_on_the_workers_records_and_activates(
    s3, on_cluster, monkeypatch, settings, capsys
):
    settings.RETRAIN_WINDOW_DAYS = 10
    upload(s3, "creditcard_20251201_000000.csv", csv_bytes(rows=1_000, seed=40))  # outside the window
    upload(s3, "creditcard_20260101_000000.csv", csv_bytes(rows=5_000, seed=41))
    upload(s3, "creditcard_20260105_000000.csv", csv_bytes(rows=5_000, seed=42))
    upload(s3, "bad.csv", _bad_csv())
    result = scan.scan_incoming()
    assert result.rejected == ["bad.csv"]
    assert DataFile.objects.get(key="bad.csv").error == "line 5: column V3 is not a number: 'abc'"
    # A file that passed the checks of its day: the workers' check rejects it, with its reason and line.
    stale = upload(s3, "creditcard_20260103_000000.csv", _bad_csv())
    DataFile.objects.create(key="creditcard_20260103_000000.csv", etag=stale, sha256="0" * 64, size=1)

    _no_reads_here(monkeypatch)
    call_command("retrain", "--backend", "dask")
    out, err = capsys.readouterr()
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    version = ModelVersion.objects.primary().get()
    assert run.result_version == version
    assert f"v{version.version} activated" in out
    assert version.params["training_backend"]["backend"] == "dask"
    assert version.params["training_backend"]["workers"] == 2
    assert f"the Dask scheduler at {on_cluster.scheduler.address}: 2 workers, 2 threads" in run.log

    used = set(DataFile.objects.filter(status=DataFile.Status.USED).values_list("key", flat=True))
    assert used == {"creditcard_20260101_000000.csv", "creditcard_20260105_000000.csv"}
    assert sorted(f.key for f in version.data_files.all()) == sorted(used)
    assert version.training_rows + version.metrics["rows"] == 10_000
    stale_file = DataFile.objects.get(key="creditcard_20260103_000000.csv")
    assert stale_file.status == DataFile.Status.REJECTED
    assert stale_file.error == "it no longer passes validation: line 5: column V3 is not a number: 'abc'"
    old = DataFile.objects.get(key="creditcard_20251201_000000.csv")
    assert (old.status, old.error) == (
        DataFile.Status.REJECTED,
        "its time is over 10 days before the newest file's (RETRAIN_WINDOW_DAYS)",
    )
    assert "checked on the workers" in err


def _kill_a_training_worker(client, killed: list[str]) -> threading.Thread:
    """Kill (SIGKILL) the first worker seen running one of XGBoost's training tasks."""
    pids = client.run(os.getpid)

    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for worker, keys in client.processing().items():
                if any(str(key).startswith("fn-") for key in keys):
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_worker_killed_mid_training_fails_the_run_cleanly_and_the_next_run_succeeds(
    active_version, bucket, on_cluster
):
    folder = bucket / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    frame = synthetic.generate(rows=12_000, fraud_rate=0.02, seed=21, drift=0.3)
    synthetic.write_csv(frame, folder / "creditcard_20260102_000000.csv")
    scan.scan_incoming()
    new_file = DataFile.objects.get()

    killed: list[str] = []
    watcher = _kill_a_training_worker(on_cluster, killed)
    with pytest.raises(dask_training.ClusterError):
        retrain.retrain(trigger=TrainingRun.Trigger.MANUAL, backend="dask")
    watcher.join()
    assert killed, "no training task was seen to kill"
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.FAILED
    assert run.error.startswith("training on the Dask cluster failed: ")
    assert "failed: training on the Dask cluster failed" in run.log
    new_file.refresh_from_db()
    assert new_file.status == DataFile.Status.NEW
    assert ModelVersion.objects.primary().get() == active_version
    assert ModelVersion.objects.count() == 1  # no candidate was recorded

    # The nanny restarts the worker; the next run trains on the same file.
    on_cluster.wait_for_workers(2, timeout=60)
    again = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL, backend="dask")
    assert again.status == TrainingRun.Status.SUCCEEDED, again.error
    new_file.refresh_from_db()
    assert new_file.status == DataFile.Status.USED
    kinds = set(ModelVersion.objects.filter(training_run=again).values_list("kind", flat=True))
    assert kinds == {"warm_start", "full_retrain"}


def test_train_model_on_a_local_cluster_started_for_the_run(tmp_path, db, settings, capsys):
    path = tmp_path / "creditcard_20260101_000000.csv"
    path.write_bytes(csv_bytes(rows=6_000, seed=43))
    settings.DASK_SCHEDULER_ADDRESS = ""
    settings.DASK_LOCAL_WORKERS, settings.DASK_LOCAL_THREADS = 2, 1
    call_command("train_model", "--csv", str(path), "--backend", "dask", "--activate", "--trees", "20")
    out, err = capsys.readouterr()
    version = ModelVersion.objects.primary().get()
    assert out.startswith(f"v{version.version} ")
    assert "a local Dask cluster started for this run: 2 workers, 2 threads" in err
    assert version.params["training_backend"]["backend"] == "dask"
    assert version.training_rows == 6_000


def test_train_model_on_the_cluster_names_a_bad_files_line(tmp_path, db, on_cluster):
    path = tmp_path / "bad.csv"
    path.write_bytes(_bad_csv())
    with pytest.raises(CommandError, match="line 5: column V3 is not a number: 'abc'"):
        call_command("train_model", "--csv", str(path), "--backend", "dask")
    assert TrainingRun.objects.get().status == TrainingRun.Status.FAILED
    assert not ModelVersion.objects.exists()


def test_the_window_keeps_the_newest_files_for_the_local_backend_too(bucket, db, settings):
    settings.RETRAIN_WINDOW_DAYS = 3
    settings.FRAUD_TRAINING = {**settings.FRAUD_TRAINING, "n_estimators": 20}
    folder = bucket / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    for day, seed in (("20260101", 1), ("20260106", 2), ("20260108", 3)):
        frame = synthetic.generate(rows=6_000, fraud_rate=0.02, seed=seed)
        synthetic.write_csv(frame, folder / f"creditcard_{day}_000000.csv")
    scan.scan_incoming()
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL, backend="local")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    statuses = dict(DataFile.objects.values_list("key", "status"))
    assert statuses == {
        "creditcard_20260101_000000.csv": DataFile.Status.REJECTED,
        "creditcard_20260106_000000.csv": DataFile.Status.USED,
        "creditcard_20260108_000000.csv": DataFile.Status.USED,
    }
    assert "creditcard_20260101_000000.csv: rejected, its time is over 3 days" in run.log
