"""The labels/ prefix: each label file applied once, all or none, or rejected with its line."""

from __future__ import annotations

import pytest

from detection import label_feed, tasks
from detection.models import LabelFile, Review, Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from modelops.ml.schema import FEATURES


@pytest.fixture
def stored(active_version, training_frame) -> list[int]:
    values = training_frame.head(4)[list(FEATURES)].to_numpy()
    ids = [f"ord-{i}" for i in range(4)]
    return [
        r.transaction_id
        for r in score_transactions(batch=Batch(values=values, external_ids=ids), source="api", client="key:1")
    ]


@pytest.fixture
def folder(bucket):
    path = bucket / "labels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_a_label_file_is_applied_once_per_content(stored, folder):
    (folder / "chargebacks_20261201.csv").write_text(
        "external_id,label,reported_at\nord-0,fraud,2026-12-01T09:00:00Z\nord-1,legitimate,\n\n"
    )
    assert tasks.scan_labels() == "1 label files applied, 0 rejected"
    assert Transaction.objects.get(pk=stored[0]).label == "fraud"
    assert Review.objects.get(transaction_id=stored[0]).source == label_feed.SOURCE
    applied = LabelFile.objects.get()
    assert (applied.status, applied.rows, applied.recorded, applied.repeated) == ("applied", 2, 2, 0)
    assert tasks.scan_labels() == "0 label files applied, 0 rejected"  # the same content: skipped
    (folder / "copy.csv").write_bytes((folder / "chargebacks_20261201.csv").read_bytes())
    label_feed.scan_labels()
    copy = LabelFile.objects.get(key="copy.csv")
    assert (copy.recorded, copy.repeated) == (0, 2)  # the same labels from the same feed: once
    assert Review.objects.count() == 2


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("id,label\nord-0,fraud\n", "line 1: the header must be external_id,label,reported_at"),
        (
            "external_id,label,reported_at\nord-0,fraud,\nord-1,maybe,\n",
            "line 3: label must be one of fraud, legitimate",
        ),
        ("external_id,label,reported_at\nord-0,fraud\n", "line 2: 2 cells, 3 expected"),
        (
            "external_id,label,reported_at\nord-0,fraud,\n\nord-404,fraud,\n",
            "line 4: external_id no transaction with this external_id",
        ),
        ("external_id,label,reported_at\nord-0,fraud,soon\n", "line 2: reported_at must be an ISO 8601"),
        ("external_id,label,reported_at\n", "the file holds no label"),
        ('external_id,label,reported_at\n"ord-0,fraud,\n', "line"),
    ],
)
def test_a_bad_file_is_rejected_with_its_line_and_nothing_applied(stored, folder, content, error):
    (folder / "bad.csv").write_text(content)
    label_feed.scan_labels()
    rejected = LabelFile.objects.get()
    assert rejected.status == "rejected" and rejected.error.startswith(error), rejected.error
    assert not Review.objects.exists() and not Transaction.objects.filter(label__isnull=False).exists()


def test_bytes_that_are_not_text_and_a_linked_file_are_rejected_unread(stored, folder, tmp_path):
    (folder / "binary.csv").write_bytes(b"external_id,label,reported_at\n\xff\xfe,fraud,\n")
    outside = tmp_path / "secret.csv"
    outside.write_text("external_id,label,reported_at\nord-0,fraud,\n")
    (folder / "link.csv").symlink_to(outside)
    label_feed.scan_labels()
    errors = dict(LabelFile.objects.values_list("key", "error"))
    assert errors["binary.csv"].startswith("the file is not UTF-8 text")
    assert "symbolic link" in errors["link.csv"]
    assert not Review.objects.exists()
