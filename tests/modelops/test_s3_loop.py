"""The model-operations loop against a real S3 API over HTTP: moto's server on 127.0.0.1, reached
through django-storages and boto3 as production reaches its bucket.

Files are uploaded with boto3 as an upstream job would; scanning, retraining, artifact upload and
scoring then run on the storages configured as fraudsite/settings.py builds them for S3.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from boto3.s3.transfer import TransferConfig

from modelops import retrain, scan
from modelops.models import DataFile, ModelVersion, TrainingRun

from .conftest import csv_bytes, upload

FIRST = "creditcard_20260101_000000.csv"


@pytest.fixture(scope="module")
def good_csv() -> bytes:
    """A labelled file big enough to train on: 20,000 rows, 400 frauds."""
    return csv_bytes(rows=20_000, seed=31)


def test_an_uploaded_file_is_scanned_trained_on_stored_in_the_bucket_and_served(s3, good_csv, client, original_rows):
    s3_client, bucket_name = s3
    etag = upload(s3, FIRST, good_csv)

    result = scan.scan_incoming()
    assert result.accepted == [FIRST] and result.rejected == result.unreadable == []
    data_file = DataFile.objects.get()
    assert (data_file.key, data_file.etag, data_file.status) == (FIRST, etag, DataFile.Status.NEW)
    assert (data_file.size, data_file.rows, data_file.frauds) == (len(good_csv), 20_000, 400)

    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED
    version = ModelVersion.objects.primary().get()
    assert run.result_version == version
    assert list(version.data_files.all()) == [data_file]
    data_file.refresh_from_db()
    assert data_file.status == DataFile.Status.USED

    # The artifact is an object under the models prefix, and its bytes are the recorded ones.
    key = f"models/{version.artifact}"
    assert s3_client.head_object(Bucket=bucket_name, Key=key)["ContentLength"] > 0
    stored = s3_client.get_object(Bucket=bucket_name, Key=key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == version.sha256

    # Scoring downloads that artifact from the bucket and answers with the version's number.
    response = client.post("/detect-fraud", json.dumps(original_rows["fraud"]), content_type="application/json")
    assert response.status_code == 200
    assert response.json()["model_version"] == version.version


def test_a_file_seen_twice_is_recorded_once_and_new_content_under_its_key_is_a_new_file(s3):
    first = csv_bytes(rows=2_000, seed=1)
    etag = upload(s3, FIRST, first)
    assert scan.scan_incoming().accepted == [FIRST]
    second = scan.scan_incoming()
    assert (second.accepted, second.already_seen) == ([], 1)
    assert DataFile.objects.count() == 1

    # The same bytes again under the same key: the same ETag, so the same file.
    assert upload(s3, FIRST, first) == etag
    third = scan.scan_incoming()
    assert (third.accepted, third.already_seen) == ([], 1)
    assert DataFile.objects.count() == 1

    # Other bytes under the same key: another file.
    changed = upload(s3, FIRST, csv_bytes(rows=2_000, seed=2))
    assert changed != etag
    assert scan.scan_incoming().accepted == [FIRST]
    assert sorted(DataFile.objects.values_list("key", "etag")) == sorted([(FIRST, etag), (FIRST, changed)])
    # Moved after a training used it (aws s3 mv: a copy, then a delete): learned under its new key.
    client, bucket = s3
    DataFile.objects.filter(etag=changed).update(status=DataFile.Status.USED)
    client.copy_object(
        Bucket=bucket, Key="incoming/moved.csv", CopySource={"Bucket": bucket, "Key": f"incoming/{FIRST}"}
    )
    client.delete_object(Bucket=bucket, Key=f"incoming/{FIRST}")
    assert scan.scan_incoming().accepted == ["moved.csv"]
    assert DataFile.objects.get(key="moved.csv").status == DataFile.Status.USED


def test_the_active_artifact_is_named_in_the_bucket(s3):
    from modelops import artifact_store

    assert artifact_store.pointed_at() is None
    artifact_store.point_at("a.json")
    artifact_store.point_at("b.json")
    client, bucket = s3
    assert client.get_object(Bucket=bucket, Key="models/active.txt")["Body"].read() == b"b.json"
    assert artifact_store.pointed_at() == "b.json"


def test_the_same_content_reuploaded_in_parts_is_not_a_new_file(s3, good_csv):
    # aws s3 cp and boto3's upload_file switch to multipart uploads above 8 MB; the real dataset
    # is 150 MB. Local folders fingerprint the content itself, so there this file is skipped.
    client, bucket_name = s3
    single = upload(s3, FIRST, good_csv)
    assert scan.scan_incoming().accepted == [FIRST]
    parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    client.upload_fileobj(io.BytesIO(good_csv), bucket_name, f"incoming/{FIRST}", Config=parts)
    stored = client.get_object(Bucket=bucket_name, Key=f"incoming/{FIRST}")
    assert stored["Body"].read() == good_csv and stored["ETag"].strip('"') != single

    result = scan.scan_incoming()
    assert result.accepted == []
    assert DataFile.objects.exclude(status=DataFile.Status.REJECTED).count() == 1


def test_a_bad_file_is_rejected_with_its_line_and_the_good_one_beside_it_is_trained_on(s3, good_csv):
    lines = csv_bytes(rows=200, seed=5).decode().splitlines()
    cells = lines[4].split(",")  # line 5 of the file: the header is line 1
    cells[3] = "abc"  # column V3
    lines[4] = ",".join(cells)
    upload(s3, "bad.csv", ("\n".join(lines) + "\n").encode())
    good_etag = upload(s3, FIRST, good_csv)

    result = scan.scan_incoming()
    assert (result.accepted, result.rejected) == ([FIRST], ["bad.csv"])
    bad = DataFile.objects.get(key="bad.csv")
    assert bad.status == DataFile.Status.REJECTED
    assert bad.error == "line 5: column V3 is not a number: 'abc'"
    assert bad.processed_at is not None
    good = DataFile.objects.get(key=FIRST)
    assert (good.status, good.etag) == (DataFile.Status.NEW, good_etag)
    # Rejected once, not retried on the next scan.
    assert scan.scan_incoming().rejected == []

    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED
    version = ModelVersion.objects.primary().get()
    assert list(version.data_files.all()) == [good]
    assert version.training_rows + version.metrics["rows"] == 20_000
    assert FIRST in run.log and "bad.csv" not in run.log
    bad.refresh_from_db()
    assert bad.status == DataFile.Status.REJECTED


def test_a_second_retrain_warm_starts_from_the_active_artifact_read_back_from_the_bucket(s3, good_csv):
    upload(s3, FIRST, good_csv)
    scan.scan_incoming()
    first = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL).result_version

    upload(s3, "creditcard_20260102_000000.csv", csv_bytes(rows=20_000, seed=32))
    assert scan.scan_incoming().accepted == ["creditcard_20260102_000000.csv"]
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED
    warm = ModelVersion.objects.get(kind="warm_start")
    assert warm.parent == first
    assert warm.training_run == run
