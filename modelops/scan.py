"""Scanning the incoming storage for new labelled data files."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import unicodedata
from dataclasses import dataclass, field

import s3transfer.constants
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import IntegrityError, transaction
from django.utils import timezone
from storages.utils import clean_name

from .artifact_store import STORAGE_ERRORS
from .ml import schema
from .models import DataFile

log = logging.getLogger(__name__)


class StorageUnavailable(Exception):
    """The incoming storage, or some files in it, could not be read; the next scan tries again."""


@dataclass
class ScanResult:
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
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


LIST_PAGE_SIZE = 1000
KEY_LIMIT = DataFile._meta.get_field("key").max_length
SYMLINK = "a symbolic link: not read"
NOT_A_FILE = "not a regular file: not read"
# Characters that end a line, reorder or hide text, or stand for bytes that are no UTF-8.
_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs"}


@dataclass(frozen=True)
class Listed:
    """One entry of the incoming storage's listing, relative to its root."""

    name: str
    size: int = 0
    etag: str = ""  # S3 only; local files are fingerprinted by content
    problem: str = ""  # why it is rejected without being read
    failure: str = ""  # a folder that could not be listed


def _is_csv(name: str) -> bool:
    return name.lower().endswith(".csv")


def is_local(storage) -> bool:
    return isinstance(storage, FileSystemStorage)


def list_incoming(storage) -> list[Listed]:
    """Every *.csv of the storage, subfolders too, listed flat; FileNotFoundError for a missing local folder."""
    return _list_local(storage.location) if is_local(storage) else _list_s3(storage)


def _list_s3(storage) -> list[Listed]:
    """The listing holds each ETag and size, so no file costs a HEAD request."""
    prefix = storage._normalize_name("")
    client = storage.bucket.meta.client
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=storage.bucket.name, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
    )
    return [
        Listed(item["Key"][len(prefix) :], size=item["Size"], etag=item["ETag"].strip('"'))
        for page in pages
        for item in page.get("Contents", ())
        if _is_csv(item["Key"])
    ]


def _list_local(root: str) -> list[Listed]:
    """Walks the folder through no symbolic link: a link is listed as rejected, never entered."""
    found, folders = [], [""]
    while folders:
        folder = folders.pop()
        try:
            entries = _entries_of(root, folder)
        except FileNotFoundError:
            if not folder:
                raise
            continue  # removed since its parent was listed
        except OSError as exc:
            if not folder:
                raise
            found.append(Listed(folder, failure=str(exc)))
            continue
        for name, kind, size in entries:
            if kind == "folder":
                folders.append(f"{name}/")
            elif kind == "file":
                found.append(Listed(name, size=size))
            else:
                found.append(Listed(name, problem=kind))
    return found


def _entries_of(root: str, folder: str) -> list[tuple[str, str, int]]:
    """(name, "folder", "file" or why it is not read, size) for each entry of ``folder``."""
    descriptor = _open_below(root, folder, folder=True)
    try:
        with os.scandir(descriptor) as entries:
            return [kept for entry in entries if (kept := _entry(entry, f"{folder}{entry.name}"))]
    finally:
        os.close(descriptor)


def _entry(entry: os.DirEntry, name: str) -> tuple[str, str, int] | None:
    try:
        if entry.is_symlink():
            return (name, SYMLINK, 0) if _is_csv(name) or entry.is_dir() else None
        if entry.is_dir(follow_symlinks=False):
            return name, "folder", 0
        if not _is_csv(name):
            return None
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # removed since the folder was listed
    if not stat.S_ISREG(info.st_mode):
        return name, NOT_A_FILE, 0  # a pipe would hold the scan forever
    return name, "file", info.st_size


def _open_below(root: str, name: str, *, folder: bool = False) -> int:
    """A descriptor for ``name`` under ``root``, opened part by part through no symbolic link, so a link
    swapped in after the listing cannot lead outside. The root itself may be a link (a mount)."""
    parts = [part for part in name.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise OSError(errno.EINVAL, "not a name in the folder", name)
    descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            # Non-blocking: a pipe in a file's place opens at once, for _open_local to refuse.
            kind = os.O_NONBLOCK if last and not folder else os.O_DIRECTORY
            child = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | kind, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = child
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


class NotAFile(FileNotFoundError):
    """A local name that no longer holds a regular file: as good as gone."""


def _open_local(root: str, name: str):
    try:
        descriptor = _open_below(root, name)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotAFile(errno.ENOENT, f"{SYMLINK} on the way", name) from None
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise NotAFile(errno.ENOENT, NOT_A_FILE, name)
    return os.fdopen(descriptor, "rb")


def _open(storage, name: str):
    return _open_local(storage.location, name) if is_local(storage) else storage.open(name, "rb")


def fingerprint(storage, entry: Listed) -> str:
    """What identifies the file's content: its ETag on S3 (from the listing), else sha256."""
    if entry.etag:
        return entry.etag
    digest = hashlib.sha256()
    with _open(storage, entry.name) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_file(storage, name: str, etag: str = "") -> bytes:
    """The file's bytes, locally through no symbolic link; on S3 with ``etag``, that object only."""
    if not is_local(storage):
        return _read_s3(storage, name, etag)
    with _open(storage, name) as handle:
        return handle.read()


def _read_s3(storage, name: str, etag: str) -> bytes:
    """One GET: the storage's own open sends HEAD requests first and reads whatever is there."""
    key = storage._normalize_name(clean_name(name))
    allowed = s3transfer.constants.ALLOWED_DOWNLOAD_ARGS
    params = {option: value for option, value in storage.get_object_parameters(name).items() if option in allowed}
    if etag:
        params["IfMatch"] = f'"{etag}"'
    try:
        response = storage.bucket.meta.client.get_object(Bucket=storage.bucket.name, Key=key, **params)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise FileNotFoundError(errno.ENOENT, "no such object in the bucket", name) from None
        raise
    with response["Body"] as body:
        return body.read()


def name_problem(storage, name: str) -> str:
    """Why ``name`` cannot be read and recorded as it is, or "" when it can."""
    for char in name:
        kind = unicodedata.category(char)
        if kind == "Cs":
            return "the name is not valid UTF-8"
        if kind in _HIDDEN:
            return f"the name holds a control character (U+{ord(char):04X})"
    parts = name.split("/")
    if name.startswith("/"):
        return "the name starts with / (an empty folder name after the prefix)"
    if "" in parts:
        return "the name holds an empty folder name (//)"
    if ".." in parts:
        return "the name holds a .. folder name"
    if "." in parts:
        return "the name holds a . folder name"
    if len(name) > KEY_LIMIT:
        return f"the name is {len(name)} characters, over the limit of {KEY_LIMIT}"
    if not is_local(storage):
        # django-storages cleans a name before use: it must not turn into another key.
        prefix = storage._normalize_name("")
        read_as = storage._normalize_name(clean_name(name))
        if read_as != prefix + name:
            return f"the storage would read the name as {read_as[len(prefix) :]!r}, another key"
    return ""


def printable(text: str) -> str:
    """``text`` with characters that could end a log line or hide text escaped as repr would."""
    return "".join(repr(char)[1:-1] if unicodedata.category(char) in _HIDDEN else char for char in text)


def storable(name: str) -> str:
    """The key a name is recorded under: escaped, and cut to fit with a hash keeping long names apart."""
    key = printable(name)
    if len(key) <= KEY_LIMIT:
        return key
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{key[: KEY_LIMIT - len(digest) - 2]}…#{digest}"


def _check(data: bytes) -> tuple[dict, str]:
    """(fields for the DataFile row, error) after validating the file's content."""
    try:
        # All-legitimate files are accepted: they teach the model what normal looks like.
        frame = schema.read_training_csv(data, require_fraud=False)
    except schema.DataValidationError as exc:
        return {}, str(exc)
    return {"rows": len(frame), "frauds": int(frame[schema.LABEL].sum())}, ""


def scan_incoming() -> ScanResult:
    """Record and validate every new data file once per content. A bad file is rejected and never
    retried; an unreadable one is not recorded, so the next scan retries it. No file stops the rest."""
    storage = incoming_storage()
    result = ScanResult()
    try:
        entries = sorted(list_incoming(storage), key=lambda entry: entry.name)
    except FileNotFoundError:
        entries = []  # a local folder not created yet: nothing has arrived
    except STORAGE_ERRORS as exc:
        log.warning("the incoming storage could not be listed: %s", printable(str(exc)))
        result.error = f"the incoming storage could not be listed: {exc}"
        return result
    for entry in entries:
        if entry.failure:
            log.warning("folder %r could not be listed: %s", entry.name, printable(entry.failure))
            result.unreadable.append(storable(entry.name))
            continue
        problem = entry.problem or name_problem(storage, entry.name)
        if problem:
            _reject_unread(entry, problem if entry.problem else f"{problem}: not read", result)
        else:
            _scan_file(storage, entry, result)
    return result


def _reject_unread(entry: Listed, error: str, result: ScanResult) -> None:
    key = storable(entry.name)
    if DataFile.objects.filter(key=key, etag=entry.etag).exists():
        result.already_seen += 1
        return
    values = {"size": entry.size, "status": DataFile.Status.REJECTED, "error": error, "processed_at": timezone.now()}
    _record(key, entry.etag, values, None, result)


def _scan_file(storage, entry: Listed, result: ScanResult) -> None:
    name, size, limit = entry.name, entry.size, settings.MAX_DATA_FILE_BYTES
    try:
        etag = fingerprint(storage, entry)
        known = DataFile.objects.filter(key=name, etag=etag).first()
        if known is not None and not known.withdrawn:
            result.already_seen += 1
            return
        data = read_file(storage, name, entry.etag) if size <= limit else None
    except STORAGE_ERRORS as exc:
        log.warning("data file %r could not be read: %s", name, printable(str(exc)))
        result.unreadable.append(name)
        return
    sha256 = hashlib.sha256(data).hexdigest() if data is not None else ""
    if known is None and sha256:
        known = DataFile.objects.filter(key=name, sha256=sha256).first()
        if known is not None and not known.withdrawn:
            DataFile.objects.filter(pk=known.pk).update(etag=etag)
            result.already_seen += 1  # same bytes uploaded again: a new ETag
            return
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
        "sha256": sha256,
        "size": size,
        "status": status,
        "error": error,
        "processed_at": timezone.now() if status != DataFile.Status.NEW else None,
        "rows": fields.get("rows"),
        "frauds": fields.get("frauds"),
    }
    _record(name, etag, values, known, result)


def _record(key: str, etag: str, values: dict, known: DataFile | None, result: ScanResult) -> None:
    """Store what the scan found: over ``known`` when a withdrawn file's content is back."""
    try:
        with transaction.atomic():
            if known is not None:
                DataFile.objects.filter(pk=known.pk).update(etag=etag, **values)
            else:
                DataFile.objects.create(key=key, etag=etag, **values)
    except IntegrityError:
        result.already_seen += 1  # a concurrent scan recorded it first
        return
    error = values["error"]
    (result.rejected if error else result.accepted).append(key)
    log.info("data file %r %s%s", key, values["status"], f": {printable(error)}" if error else "")
