"""Hostile data files in the bucket: each one is rejected (or accepted) with a reason an operator
can act on, quickly and in bounded memory, and the scan goes on with the files beside it.

The 1 GB case is drills/hostile_files.py (it measures peak memory); here the size limit is set
small instead.
"""

from __future__ import annotations

import gzip
import io
import time

import pytest

from modelops import scan
from modelops.ml import synthetic
from modelops.models import DataFile

GOOD = "good.csv"


def _csv(*, rows: int = 50, fraud_rate: float = 0.1, seed: int = 1) -> str:
    buffer = io.StringIO()
    synthetic.write_csv(synthetic.generate(rows=rows, fraud_rate=fraud_rate, seed=seed), buffer)
    return buffer.getvalue()


CLEAN = _csv()
LINES = CLEAN.splitlines()
HEADER = LINES[0]


def _join(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _cell(line: int, column: int, value: str) -> bytes:
    """The clean file with one cell replaced; ``line`` counts from 1 (the header)."""
    lines = list(LINES)
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    return _join(lines)


# name -> (bytes, the reason it is rejected with)
REJECTED = {
    "wrong_header.csv": (CLEAN.replace("Amount", "amount", 1).encode(), "line 1: missing column(s): Amount"),
    "extra_column.csv": (
        _join([f"{HEADER},Note"] + [f"{line},x" for line in LINES[1:]]),
        "line 1: unknown column(s): Note",
    ),
    "missing_column.csv": (
        _join([line.rsplit(",", 2)[0] + "," + line.rsplit(",", 1)[1] for line in LINES]),
        "line 1: missing column(s): Amount",
    ),
    "extra_cells.csv": (_join([*LINES[:4], LINES[4] + ",1,2", *LINES[5:]]), "line 5: 33 cells, expected 31"),
    "missing_cells.csv": (
        _join([*LINES[:4], LINES[4].rsplit(",", 5)[0], *LINES[5:]]),
        "line 5: column V26 is empty or NaN",
    ),
    "text_in_number.csv": (_cell(3, 2, "abc"), "line 3: column V2 is not a number: 'abc'"),
    "nan.csv": (_cell(3, 2, "NaN"), "line 3: column V2 is empty or NaN"),
    "inf.csv": (_cell(4, 29, "inf"), "line 4: column Amount is infinite"),
    "label_2.csv": (_cell(5, 30, "2"), "line 5: column Class must be 0 or 1, got 2"),
    "label_minus_1.csv": (_cell(6, 30, "-1"), "line 6: column Class must be 0 or 1, got -1"),
    "empty.csv": (b"", "the file is empty"),
    "header_only.csv": (f"{HEADER}\n".encode(), "the file has a header but no data rows"),
    "one_huge_line.csv": (
        b"1," * 100_000 + b"\n",
        "line 1: the first line is over 4096 bytes: not this dataset's header",
    ),
    "huge_first_row.csv": (
        _cell(2, 1, "9" * 1_000_000),
        "line 2: the first data row is over 65536 bytes: not a row of this dataset",
    ),
    "huge_cell.csv": (_cell(4, 1, "9" * 1_000_000), "line 4: column V1 is infinite"),
    # 2,131 cells a row (the header has 31): pandas took the first 2,100 as an index.
    "wide_rows.csv": (_join([HEADER, *[",".join(["1"] * 2_131)] * 40]), "line 2: 2131 cells, expected 31"),
    # Extra cells counted in the bytes read, though the row goes on past them.
    "wide_long_first_row.csv": (
        _join([HEADER, ",".join(["1.5"] * 20_000), *LINES[1:]]),
        "line 2: over 16354 cells, expected 31",
    ),
    "gzipped.csv": (gzip.compress(CLEAN.encode()), "the file is gzip-compressed: upload the CSV uncompressed"),
    "latin1.csv": (
        _join(LINES[:6]) + LINES[6].encode() + b"\xe9\n" + _join(LINES[7:]),
        "line 7: the file is not UTF-8 text",
    ),
}


@pytest.fixture
def incoming(bucket, db):
    folder = bucket / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_every_hostile_file_is_rejected_with_its_reason_and_the_good_file_beside_them_is_accepted(incoming):
    for name, (data, _reason) in REJECTED.items():
        (incoming / name).write_bytes(data)
    (incoming / GOOD).write_text(CLEAN)

    started = time.monotonic()
    result = scan.scan_incoming()
    elapsed = time.monotonic() - started

    assert result.accepted == [GOOD]
    assert sorted(result.rejected) == sorted(REJECTED)
    errors = dict(DataFile.objects.filter(status=DataFile.Status.REJECTED).values_list("key", "error"))
    assert errors == {name: reason for name, (_data, reason) in REJECTED.items()}
    # A 200 KB header line used to hold the scan for minutes (pandas renaming 100,000 duplicate
    # column names); the whole corpus takes well under a second.
    assert elapsed < 10, f"the scan took {elapsed:.1f} s"


def test_duplicate_rows_and_an_all_legitimate_file_are_accepted(incoming):
    # The real dataset holds 1,081 duplicated rows: repeats are data, not an error.
    (incoming / "duplicates.csv").write_bytes(_join([HEADER, *([LINES[1]] * 100), *LINES[1:]]))
    (incoming / "all_legit.csv").write_text(_csv(rows=40, fraud_rate=0.0, seed=2))
    assert sorted(scan.scan_incoming().accepted) == ["all_legit.csv", "duplicates.csv"]
    counts = dict(DataFile.objects.values_list("key", "rows"))
    assert counts == {"duplicates.csv": 150, "all_legit.csv": 40}
    assert DataFile.objects.get(key="all_legit.csv").frauds == 0


def test_a_file_over_the_size_limit_is_rejected_unread_beside_a_good_one(incoming, settings):
    settings.MAX_DATA_FILE_BYTES = len(CLEAN.encode())
    (incoming / "big.csv").write_bytes(CLEAN.encode() + LINES[1].encode() + b"\n")
    (incoming / GOOD).write_text(CLEAN)
    result = scan.scan_incoming()
    assert (result.accepted, result.rejected) == ([GOOD], ["big.csv"])
    big = DataFile.objects.get(key="big.csv")
    assert big.error == f"the file is {big.size} bytes, over the limit of {len(CLEAN.encode())} (MAX_DATA_FILE_BYTES)"
    assert big.sha256 == ""  # never read
