"""The bucket's labels/ prefix: CSVs of external_id,label,reported_at from other systems, each
content applied once, all its rows or none, or rejected with the exact reason and line. Listed and
read as the data files are (modelops/scan.py): flat, through no symbolic link, anything in the
bucket being untrusted."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import storages
from django.db import IntegrityError

from modelops import scan

from . import labels
from .models import LabelFile
from .parsing import InvalidInput

log = logging.getLogger(__name__)

HEADER = ["external_id", "label", "reported_at"]
SOURCE = "chargeback-feed"


@dataclass
class FeedResult:
    applied: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    error: str = ""

    def summary(self) -> str:
        if self.error:
            return self.error
        return f"{len(self.applied)} label files applied, {len(self.rejected)} rejected"


def scan_labels() -> FeedResult:
    storage = storages["labels"]
    result = FeedResult()
    try:
        entries = sorted(scan.list_incoming(storage), key=lambda entry: entry.name)
    except FileNotFoundError:
        return result  # a local folder not created yet: nothing has arrived
    except scan.STORAGE_ERRORS as exc:
        result.error = f"the labels storage could not be listed: {exc}"
        return result
    for entry in entries:
        if entry.failure:
            continue  # a folder that could not be listed: tried again next time
        key = scan.storable(entry.name)
        problem = entry.problem or scan.name_problem(storage, entry.name)
        if not problem and entry.size > settings.MAX_DATA_FILE_BYTES:
            problem = f"{entry.size} bytes, over MAX_DATA_FILE_BYTES ({settings.MAX_DATA_FILE_BYTES}): not read"
        if problem:
            _record(key, entry.etag or "-", {"status": LabelFile.Status.REJECTED, "error": problem}, result)
            continue
        try:
            etag = scan.fingerprint(storage, entry)
            if LabelFile.objects.filter(key=key, etag=etag).exists():
                continue
            data = scan.read_file(storage, entry.name, entry.etag)
        except (OSError, *scan.STORAGE_ERRORS) as exc:
            log.warning("label file %s not read: %s", key, scan.printable(str(exc)))
            continue  # not recorded: the next scan tries again
        _record(key, etag, _apply(data, name=key), result)
    return result


def _apply(data: bytes, *, name: str) -> dict:
    """The LabelFile fields after applying the file's rows (all or none)."""
    lines: list[int] = []
    try:
        items, lines = _rows(data)
        found, _ = labels.parse(items, max_items=max(1, len(items)))
        done = labels.apply(found, is_list=True, recorded_by=f"label file {name}")
    except InvalidInput as exc:
        return {"status": LabelFile.Status.REJECTED, "error": _with_line(exc, lines)}
    return {
        "status": LabelFile.Status.APPLIED,
        "rows": done["received"],
        "recorded": done["recorded"],
        "repeated": done["repeated"],
    }


def _rows(data: bytes) -> tuple[list[dict], list[int]]:
    """The rows as labels' items, and the file line of each."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the file is not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidInput("the file is empty")
        if [cell.strip() for cell in header] != HEADER:
            raise InvalidInput(f"line 1: the header must be {','.join(HEADER)}")
        items = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            if len(row) != len(HEADER):
                raise InvalidInput(f"line {reader.line_num}: {len(row)} cells, {len(HEADER)} expected")
            external_id, label, reported_at = (cell.strip() for cell in row)
            items.append(
                {
                    "external_id": external_id,
                    "label": label,
                    "source": SOURCE,
                    "reported_at": reported_at or None,
                    "_line": reader.line_num,
                }
            )
    except csv.Error as exc:
        raise InvalidInput(f"line {reader.line_num}: {exc}") from None
    if not items:
        raise InvalidInput("the file holds no label")
    return items, [item.pop("_line") for item in items]


def _with_line(exc: InvalidInput, lines: list[int]) -> str:
    problems = exc.detail.get("items")
    if not problems:
        return str(exc)
    first = problems[0]
    line = lines[first["index"]]
    name, reason = next(iter(first["fields"].items()))
    more = f" (and {len(problems) - 1} more rows)" if len(problems) > 1 else ""
    return f"line {line}: {name} {reason}{more}"


def _record(key: str, etag: str, values: dict, result: FeedResult) -> None:
    try:
        LabelFile.objects.create(key=key, etag=etag, **values)
    except IntegrityError:
        return  # a concurrent scan recorded it; the labels themselves are recorded once either way
    (result.applied if values["status"] == LabelFile.Status.APPLIED else result.rejected).append(key)
