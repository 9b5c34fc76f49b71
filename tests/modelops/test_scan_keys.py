"""Odd names in the incoming storage: each one is recorded once as rejected with its reason, and
never read, while the files beside it are scanned as usual.

The S3 cases put their keys with boto3 straight into the bucket of a real S3 API server (moto's);
the local cases make real folders, symbolic links and names that only a shell script would.
"""

from __future__ import annotations

import hashlib
import logging
import os

import pytest

from modelops import retrain, scan
from modelops.models import DataFile, TrainingRun

from .conftest import csv_bytes, upload

GOOD = "creditcard_20260101_000000.csv"
KEY_LIMIT = DataFile._meta.get_field("key").max_length
LONG_NAME = "x" * 600 + ".csv"


@pytest.fixture(scope="module")
def good_csv() -> bytes:
    return csv_bytes(rows=500, seed=11)


# --- S3: keys put with boto3, listed by the scan through django-storages' own client.

# name below incoming/ -> (the key it is recorded under, the reason it is rejected with)
ODD_KEYS = {
    "../x.csv": ("../x.csv", "the name holds a .. folder name: not read"),
    "a//b.csv": ("a//b.csv", "the name holds an empty folder name (//): not read"),
    "/file.csv": ("/file.csv", "the name starts with / (an empty folder name after the prefix): not read"),
    "x/../../y.csv": ("x/../../y.csv", "the name holds a .. folder name: not read"),
    "a/./b.csv": ("a/./b.csv", "the name holds a . folder name: not read"),
    "a\\b.csv": ("a\\b.csv", "the storage would read the name as 'a/b.csv', another key: not read"),
    "a\x01b.csv": ("a\\x01b.csv", "the name holds a control character (U+0001): not read"),
}


@pytest.mark.parametrize("name", list(ODD_KEYS))
def test_an_odd_s3_key_is_rejected_with_its_reason_and_the_file_beside_it_is_accepted(s3, good_csv, name):
    key, reason = ODD_KEYS[name]
    etag = upload(s3, name, good_csv)
    upload(s3, GOOD, good_csv)

    result = scan.scan_incoming()
    assert (result.error, result.accepted, result.rejected) == ("", [GOOD], [key])
    odd = DataFile.objects.get(key=key)
    assert (odd.status, odd.error, odd.etag, odd.sha256, odd.rows) == (DataFile.Status.REJECTED, reason, etag, "", None)
    assert DataFile.objects.get(key=GOOD).status == DataFile.Status.NEW


@pytest.mark.parametrize("name", list(ODD_KEYS))
def test_an_odd_s3_key_is_recorded_once_however_often_the_scan_runs(s3, good_csv, name):
    upload(s3, name, good_csv)
    upload(s3, GOOD, good_csv)
    scan.scan_incoming()

    second = scan.scan_incoming()
    assert (second.error, second.accepted, second.rejected, second.already_seen) == ("", [], [], 2)
    assert DataFile.objects.count() == 2


def test_an_s3_key_over_the_key_limit_is_rejected_under_a_shortened_key(s3, good_csv):
    upload(s3, LONG_NAME, good_csv)
    upload(s3, GOOD, good_csv)

    result = scan.scan_incoming()
    assert result.accepted == [GOOD]
    (key,) = result.rejected
    assert len(key) <= KEY_LIMIT and key.startswith("x" * 400)
    assert DataFile.objects.get(key=key).error == f"the name is 604 characters, over the limit of {KEY_LIMIT}: not read"
    assert scan.scan_incoming().already_seen == 2


def test_all_odd_s3_keys_together_leave_the_good_file_accepted(s3, good_csv):
    for name in [*ODD_KEYS, LONG_NAME]:
        upload(s3, name, good_csv)
    upload(s3, GOOD, good_csv)

    result = scan.scan_incoming()
    assert (result.error, result.accepted, len(result.rejected)) == ("", [GOOD], len(ODD_KEYS) + 1)
    assert scan.scan_incoming().already_seen == len(ODD_KEYS) + 2


def test_a_scan_takes_etags_and_sizes_from_the_listing_and_sends_no_head_request(s3, good_csv):
    etag = upload(s3, GOOD, good_csv)
    upload(s3, "2026/01/other.CSV", csv_bytes(rows=300, seed=12))
    sent = []
    client = scan.incoming_storage().bucket.meta.client
    client.meta.events.register("before-call.s3", lambda model, **_: sent.append(model.name))

    assert scan.scan_incoming().accepted == ["2026/01/other.CSV", GOOD]
    assert "HeadObject" not in sent and sent.count("ListObjectsV2") == 1
    good = DataFile.objects.get(key=GOOD)
    assert (good.etag, good.size) == (etag, len(good_csv))

    sent.clear()
    assert scan.scan_incoming().already_seen == 2
    assert sent == ["ListObjectsV2"]  # a file already seen is not read again


def test_files_on_every_page_of_the_listing_are_found(s3, good_csv, monkeypatch):
    monkeypatch.setattr(scan, "LIST_PAGE_SIZE", 2)
    names = [f"creditcard_2026010{day}_000000.csv" for day in range(1, 6)]
    for name in names:
        upload(s3, name, good_csv)
    assert scan.scan_incoming().accepted == names


def test_an_s3_object_replaced_after_the_listing_is_read_at_the_next_scan(s3, good_csv, monkeypatch):
    # The listed ETag is recorded, so only that object's bytes may be read under it.
    upload(s3, GOOD, good_csv)
    listed = scan.list_incoming

    def replaced_after_listing(storage):
        entries = listed(storage)
        upload(s3, GOOD, csv_bytes(rows=300, seed=13))
        return entries

    monkeypatch.setattr(scan, "list_incoming", replaced_after_listing)
    result = scan.scan_incoming()
    assert (result.accepted, result.unreadable) == ([], [GOOD])
    assert not DataFile.objects.exists()

    monkeypatch.undo()
    assert scan.scan_incoming().accepted == [GOOD]
    assert DataFile.objects.get().rows == 300


def test_reading_an_s3_object_that_is_gone_raises_file_not_found(s3):
    # Retraining withdraws a file that is gone on this error.
    with pytest.raises(FileNotFoundError):
        scan.read_file(scan.incoming_storage(), GOOD)


def test_an_s3_folder_marker_and_other_names_are_not_data_files(s3, good_csv):
    client, bucket_name = s3
    client.put_object(Bucket=bucket_name, Key="incoming/2026/", Body=b"")
    client.put_object(Bucket=bucket_name, Key="incoming/notes.txt", Body=b"not data")
    client.put_object(Bucket=bucket_name, Key="elsewhere.csv", Body=good_csv)
    upload(s3, "2026/" + GOOD, good_csv)
    result = scan.scan_incoming()
    assert (result.accepted, result.rejected) == (["2026/" + GOOD], [])


# --- Local folders: real links, folders and names.


@pytest.fixture
def incoming(bucket, db):
    folder = bucket / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def outside(tmp_path, good_csv):
    """A folder beside the incoming one holding a valid data file: read, it would be accepted."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.csv").write_bytes(good_csv)
    return folder


SYMLINK = "a symbolic link: not read"


def rejected_unread(key: str) -> tuple:
    data_file = DataFile.objects.get(key=key)
    return data_file.status, data_file.error, data_file.sha256, data_file.rows


def test_a_symlinked_file_is_rejected_unread_and_the_file_beside_it_is_accepted(incoming, outside, good_csv):
    (incoming / "linked.csv").symlink_to(outside / "secret.csv")
    (incoming / "passwd.csv").symlink_to("/etc/passwd")
    (incoming / GOOD).write_bytes(good_csv)

    result = scan.scan_incoming()
    assert (result.accepted, result.rejected) == ([GOOD], ["linked.csv", "passwd.csv"])
    for key in ("linked.csv", "passwd.csv"):
        assert rejected_unread(key) == (DataFile.Status.REJECTED, SYMLINK, "", None)
    second = scan.scan_incoming()
    assert (second.rejected, second.already_seen) == ([], 3)


def test_a_symlinked_folder_is_rejected_and_nothing_in_it_is_read(incoming, outside, good_csv):
    (incoming / "exports").symlink_to(outside, target_is_directory=True)
    (incoming / GOOD).write_bytes(good_csv)

    result = scan.scan_incoming()
    assert (result.accepted, result.rejected) == ([GOOD], ["exports"])
    assert rejected_unread("exports") == (DataFile.Status.REJECTED, SYMLINK, "", None)
    assert not DataFile.objects.filter(key__contains="secret").exists()


def test_a_symlink_loop_does_not_stop_the_scan(incoming, good_csv):
    (incoming / "2026").mkdir()
    (incoming / "2026" / "again").symlink_to("..", target_is_directory=True)
    (incoming / "self.csv").symlink_to("self.csv")
    (incoming / "2026" / GOOD).write_bytes(good_csv)

    result = scan.scan_incoming()
    assert (result.error, result.accepted, result.rejected) == ("", ["2026/" + GOOD], ["2026/again", "self.csv"])
    assert scan.scan_incoming().already_seen == 3


def test_a_fifo_named_like_a_data_file_is_rejected_without_blocking_the_scan(incoming, good_csv):
    os.mkfifo(incoming / "pipe.csv")
    (incoming / GOOD).write_bytes(good_csv)
    result = scan.scan_incoming()
    assert (result.accepted, result.rejected) == ([GOOD], ["pipe.csv"])
    assert DataFile.objects.get(key="pipe.csv").error == "not a regular file: not read"


def test_a_name_holding_a_newline_is_rejected_under_an_escaped_key_and_forges_no_log_line(incoming, good_csv, caplog):
    (incoming / "a.csv\nINFO forged.csv").write_bytes(good_csv)
    (incoming / GOOD).write_bytes(good_csv)

    with caplog.at_level(logging.INFO, logger="modelops"):
        result = scan.scan_incoming()
    assert (result.accepted, result.rejected) == ([GOOD], ["a.csv\\nINFO forged.csv"])
    odd = DataFile.objects.get(key="a.csv\\nINFO forged.csv")
    assert odd.error == "the name holds a control character (U+000A): not read"
    assert caplog.records and all("\n" not in record.getMessage() for record in caplog.records)


def test_a_name_that_is_not_utf8_is_rejected_under_an_escaped_key(incoming, good_csv):
    with open(os.path.join(os.fsencode(incoming), b"caf\xe9.csv"), "wb") as handle:
        handle.write(good_csv)
    (incoming / GOOD).write_bytes(good_csv)

    result = scan.scan_incoming()
    assert (result.accepted, result.rejected) == ([GOOD], ["caf\\udce9.csv"])
    assert DataFile.objects.get(key="caf\\udce9.csv").error == "the name is not valid UTF-8: not read"


def test_two_names_over_the_key_limit_are_rejected_under_distinct_shortened_keys(incoming, good_csv):
    folder = incoming / ("d" * 200) / ("e" * 200)
    folder.mkdir(parents=True)
    for name in ("f" * 150 + "1.csv", "f" * 150 + "2.csv"):
        (folder / name).write_bytes(good_csv)
    (incoming / GOOD).write_bytes(good_csv)

    result = scan.scan_incoming()
    assert result.accepted == [GOOD] and len(set(result.rejected)) == 2
    for key in result.rejected:
        assert len(key) <= KEY_LIMIT
        assert (
            DataFile.objects.get(key=key).error
            == f"the name is 557 characters, over the limit of {KEY_LIMIT}: not read"
        )
    assert scan.scan_incoming().already_seen == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_a_folder_that_cannot_be_listed_is_unreadable_and_the_others_are_scanned(incoming, good_csv):
    (incoming / "locked").mkdir()
    (incoming / GOOD).write_bytes(good_csv)
    (incoming / "locked").chmod(0)
    try:
        result = scan.scan_incoming()
    finally:
        (incoming / "locked").chmod(0o755)
    assert (result.accepted, result.unreadable) == ([GOOD], ["locked/"])


def test_reading_a_data_file_follows_no_symbolic_link(incoming, outside):
    # A file or folder swapped for a link after the scan recorded it: retraining must not read it.
    (incoming / "swapped.csv").symlink_to(outside / "secret.csv")
    (incoming / "folder").symlink_to(outside, target_is_directory=True)
    storage = scan.incoming_storage()
    for name in ("swapped.csv", "folder/secret.csv"):
        with pytest.raises(FileNotFoundError):
            scan.read_file(storage, name)


def test_a_regular_file_is_read_through_a_linked_incoming_folder(tmp_path, settings, outside, good_csv, db):
    # Deployments may mount the incoming folder through a link: only links inside it are refused.
    (tmp_path / "mounted").symlink_to(outside, target_is_directory=True)
    settings.STORAGES = {
        **settings.STORAGES,
        "incoming": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "mounted")},
        },
    }
    assert scan.scan_incoming().accepted == ["secret.csv"]
    assert DataFile.objects.get().sha256 == hashlib.sha256(good_csv).hexdigest()


def test_a_retrain_logs_a_recorded_key_holding_a_newline_on_one_line(incoming, caplog):
    # A key recorded before names were checked still reaches the run's log lines.
    DataFile.objects.create(key="old.csv\nINFO forged", etag="e", sha256="0" * 64, status=DataFile.Status.NEW)
    with caplog.at_level(logging.INFO, logger="modelops.retrain"):
        run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert "old.csv\nINFO forged" in run.log
    lines = [record.getMessage() for record in caplog.records if record.name == "modelops.retrain"]
    assert any("old.csv\\nINFO forged" in line for line in lines)
    assert all("\n" not in line for line in lines)
