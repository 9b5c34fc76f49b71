from __future__ import annotations

import pytest

from modelops import scan, tasks
from modelops.ml import synthetic
from modelops.models import DataFile


@pytest.fixture
def incoming(bucket):
    folder = bucket / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def drop(folder, name: str, *, seed: int = 1, rows: int = 2_000) -> None:
    synthetic.write_csv(synthetic.generate(rows=rows, fraud_rate=0.02, seed=seed), folder / name)


def test_a_new_file_is_recorded_with_its_rows_and_frauds(db, incoming):
    drop(incoming, "creditcard_20260101_000000.csv")
    result = scan.scan_incoming()
    data_file = DataFile.objects.get()
    assert result.accepted == ["creditcard_20260101_000000.csv"]
    assert (data_file.status, data_file.rows, data_file.frauds) == (DataFile.Status.NEW, 2_000, 40)
    assert len(data_file.etag) == 64  # sha256 of the content on local folders


def test_a_file_seen_twice_is_recorded_once(db, incoming):
    drop(incoming, "creditcard_20260101_000000.csv")
    scan.scan_incoming()
    second = scan.scan_incoming()
    assert second.accepted == [] and second.already_seen == 1
    assert DataFile.objects.count() == 1


def test_new_content_under_the_same_name_is_a_new_file(db, incoming):
    drop(incoming, "creditcard_20260101_000000.csv", seed=1)
    scan.scan_incoming()
    drop(incoming, "creditcard_20260101_000000.csv", seed=2)
    scan.scan_incoming()
    assert DataFile.objects.count() == 2


def test_a_bad_file_is_rejected_with_its_reason_and_the_good_one_beside_it_is_accepted(db, incoming):
    drop(incoming, "good.csv")
    (incoming / "bad.csv").write_text("Time,V1\n0,abc\n")
    result = scan.scan_incoming()
    assert result.accepted == ["good.csv"] and result.rejected == ["bad.csv"]
    bad = DataFile.objects.get(key="bad.csv")
    assert bad.status == DataFile.Status.REJECTED
    assert bad.error.startswith("line 1: missing column(s): V2")
    assert bad.processed_at is not None
    # Rejected once, not retried on every scan.
    assert scan.scan_incoming().rejected == []


def test_files_in_subfolders_and_any_csv_name_are_found(db, incoming):
    (incoming / "2026" / "01").mkdir(parents=True)
    drop(incoming / "2026" / "01", "labelled-export.CSV")
    (incoming / "notes.txt").write_text("not data")
    assert scan.scan_incoming().accepted == ["2026/01/labelled-export.CSV"]


def test_an_all_legitimate_file_is_accepted(db, incoming):
    frame = synthetic.generate(rows=500, fraud_rate=0.0, seed=3)
    synthetic.write_csv(frame, incoming / "legit.csv")
    scan.scan_incoming()
    assert DataFile.objects.get().frauds == 0


def test_a_file_over_the_size_limit_is_rejected_unread(db, incoming, settings):
    settings.MAX_DATA_FILE_BYTES = 100
    drop(incoming, "big.csv")
    scan.scan_incoming()
    assert "over the limit of 100" in DataFile.objects.get().error


@pytest.fixture
def broker(db):
    """The configured task broker (the ORM, or Redis when REDIS_URL is set), emptied."""
    from django_q.brokers import get_broker

    queue = get_broker()
    queue.purge_queue()
    yield queue
    queue.purge_queue()


def queued_functions(queue) -> list[str]:
    from django_q.signing import SignedPackage

    names = []
    while (message := queue.dequeue()) is not None:
        for _ack_id, payload in message:
            names.append(SignedPackage.loads(payload)["func"])
    return names


def test_the_scan_task_queues_one_retrain_when_accepted_data_awaits(
    incoming, broker, django_capture_on_commit_callbacks
):
    drop(incoming, "a.csv")
    with django_capture_on_commit_callbacks(execute=True):
        summary = tasks.scan_incoming()
    assert summary.startswith("1 accepted")
    assert queued_functions(broker) == ["modelops.tasks.retrain_models"]


def test_the_scan_task_queues_nothing_without_new_data(incoming, broker, django_capture_on_commit_callbacks):
    (incoming / "bad.csv").write_text("nope\n")
    with django_capture_on_commit_callbacks(execute=True):
        tasks.scan_incoming()
    assert queued_functions(broker) == []


def test_the_same_content_under_two_names_is_recorded_under_each(db, incoming):
    # Retraining reads it once (test_retrain.py); either name may be deleted later.
    drop(incoming, "creditcard_20260101_000000.csv")
    original = (incoming / "creditcard_20260101_000000.csv").read_bytes()
    (incoming / "creditcard_20260102_000000.csv").write_bytes(original)
    result = scan.scan_incoming()
    assert result.accepted == ["creditcard_20260101_000000.csv", "creditcard_20260102_000000.csv"]
    assert scan.scan_incoming().already_seen == 2


def test_a_file_moved_after_training_is_recorded_as_learned(db, incoming):
    # Its rows were learned: under its new name it is read by the next retrain, not judged on,
    # and it calls for no retrain.
    drop(incoming, "upload_tmp.csv")
    scan.scan_incoming()
    DataFile.objects.update(status=DataFile.Status.USED)
    (incoming / "upload_tmp.csv").rename(incoming / "creditcard_20260101_000000.csv")
    scan.scan_incoming()
    assert DataFile.objects.get(key="creditcard_20260101_000000.csv").status == DataFile.Status.USED
    assert not tasks._awaiting_training()
