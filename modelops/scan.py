"""Scanning the incoming storage for new labelled data files."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.utils import timezone

from .artifacts import STORAGE_ERRORS
from .ml import schema
from .models import DataFile

log = logging.getLogger(__name__)


class StorageUnavailable(Exception):
    """The incoming storage, or some files in it, could not be read; the next scan tries again."""


@dataclass
class ScanResult:
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # storage errors: tried again next scan
    already_seen: int = 0
    error: str = ""  # the storage could not be listed: nothing was scanned

    def summary(self) -> str:
        if self.error:
            return f"scan failed: {self.error}"
        return (
            f"{len(self.accepted)} accepted, {len(self.rejected)} rejected, {len(self.unreadable)} unreadable, "
            f"{self.already_seen} already seen"
        )

    @property
    def storage_failed(self) -> bool:
        return bool(self.error or self.unreadable)


def incoming_storage():
    return storages["incoming"]


def _csv_names(storage, path: str = "") -> list[str]:
    """Every *.csv below ``path``, recursively (S3 "folders" included)."""
    directories, files = storage.listdir(path)
    names = [f"{path}{name}" for name in files if name.lower().endswith(".csv")]
    for directory in directories:
        names += _csv_names(storage, f"{path}{directory}/")
    return names


def fingerprint(storage, name: str) -> str:
    """What identifies the file's content: its ETag on S3 (no download needed), else sha256."""
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        return bucket.Object(storage._normalize_name(name)).e_tag.strip('"')
    digest = hashlib.sha256()
    with storage.open(name, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_file(storage, name: str) -> bytes:
    with storage.open(name, "rb") as handle:
        return handle.read()


def _check(data: bytes) -> tuple[dict, str]:
    """(fields for the DataFile row, error) after validating the file's content."""
    try:
        # All-legitimate files are accepted: they teach the model what normal looks like.
        frame = schema.read_training_csv(data, require_fraud=False)
    except schema.DataValidationError as exc:
        return {}, str(exc)
    return {"rows": len(frame), "frauds": int(frame[schema.LABEL].sum())}, ""


def scan_incoming() -> ScanResult:
    """Record every new data file once per content and validate it.

    A file already recorded with the same content is skipped, however often the scan runs and
    however it was uploaded. A bad file is recorded as rejected with the exact reason and never
    retried; a file that cannot be read (storage error) is not recorded, so the next scan tries
    it again, and a storage that cannot be listed records nothing (``error``). One file's
    failure never stops the scan of the others. The same content under two names is recorded
    under each (retraining reads it once, modelops.retrain), as used already if a training used
    it under either; a file withdrawn before a training used it (DataFile.withdrawn) is taken up
    again when its content comes back under its name.
    """
    storage = incoming_storage()
    result = ScanResult()
    limit = settings.MAX_DATA_FILE_BYTES
    try:
        names = sorted(_csv_names(storage))
    except FileNotFoundError:
        names = []  # a local folder not created yet: nothing has arrived
    except STORAGE_ERRORS as exc:
        log.warning("the incoming storage could not be listed: %s", exc)
        result.error = f"the incoming storage could not be listed: {exc}"
        return result
    for name in names:
        try:
            etag = fingerprint(storage, name)
            known = DataFile.objects.filter(key=name, etag=etag).first()
            if known is not None and not known.withdrawn:
                result.already_seen += 1
                continue
            size = storage.size(name)
            data = read_file(storage, name) if size <= limit else None
        except STORAGE_ERRORS as exc:
            log.warning("data file %s could not be read: %s", name, exc)
            result.unreadable.append(name)
            continue
        sha256 = hashlib.sha256(data).hexdigest() if data is not None else ""
        if known is None and sha256:
            known = DataFile.objects.filter(key=name, sha256=sha256).first()
            if known is not None and not known.withdrawn:
                DataFile.objects.filter(pk=known.pk).update(etag=etag)
                result.already_seen += 1  # same bytes uploaded again: remember the new ETag
                continue
        if data is None:
            fields, error = {}, f"the file is {size} bytes, over the limit of {limit} (MAX_DATA_FILE_BYTES)"
        else:
            fields, error = _check(data)
        if error:
            status = DataFile.Status.REJECTED
        elif DataFile.objects.filter(sha256=sha256, status=DataFile.Status.USED).exists():
            status = DataFile.Status.USED  # moved or copied from a file a training learned: no new rows
        else:
            status = DataFile.Status.NEW
        values = {
            "etag": etag,
            "sha256": sha256,
            "size": size,
            "status": status,
            "error": error,
            "processed_at": timezone.now() if status != DataFile.Status.NEW else None,
            "rows": fields.get("rows"),
            "frauds": fields.get("frauds"),
        }
        try:
            with transaction.atomic():
                if known is not None:  # withdrawn, and its content is back under its name
                    DataFile.objects.filter(pk=known.pk).update(**values)
                else:
                    DataFile.objects.create(key=name, **values)
        except IntegrityError:
            result.already_seen += 1  # a concurrent scan recorded it first
            continue
        (result.rejected if error else result.accepted).append(name)
        log.info("data file %s %s%s", name, status, f": {error}" if error else "")
    return result
