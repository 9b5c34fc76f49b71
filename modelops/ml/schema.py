"""The ULB/Kaggle credit-card columns and their validation, one definition for training and scoring."""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

PCA_FEATURES: tuple[str, ...] = tuple(f"V{i}" for i in range(1, 29))
# The order the model sees its inputs in; artifacts record it and refuse any other.
FEATURES: tuple[str, ...] = ("Time", *PCA_FEATURES, "Amount")
LABEL = "Class"
COLUMNS: tuple[str, ...] = (*FEATURES, LABEL)

# Inclusive; they refuse typos and overflow, not outliers: the real data stays far inside.
BOUNDS: dict[str, tuple[float, float]] = {
    "Time": (0.0, 1e9),
    "Amount": (0.0, 1e9),
    **{name: (-1e4, 1e4) for name in PCA_FEATURES},
}


# ASCII digits only, as detection.openapi documents: float() also reads "1_000" and other scripts' digits.
# Each character matches only one way, so a refusal takes time linear in the text's length.
DECIMAL_TEXT = r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?"
# NaN and Infinity are read too, only to be refused by name.
_NUMBER_TEXT = re.compile(rf"{DECIMAL_TEXT}|[-+]?(nan|inf|infinity)", re.ASCII | re.IGNORECASE)
MAX_NUMBER_TEXT = 64


def is_number_text(text: str) -> bool:
    """Whether ``text`` (spaces around it allowed) is a number as scoring inputs accept it."""
    text = text.strip()
    return len(text) <= MAX_NUMBER_TEXT and _NUMBER_TEXT.fullmatch(text) is not None


class DataValidationError(ValueError):
    """A data file that cannot be used, with the 1-based line of the first problem if known."""

    def __init__(self, message: str, *, line: int | None = None):
        self.reason = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


def check_value(
    name: str, value: object, *, number_text: Callable[[str], bool] = is_number_text
) -> tuple[float | None, str | None]:
    """(float, None) or (None, reason); numbers in JSON strings are accepted, as /detect-fraud clients send them."""
    if value is None:
        return None, "is required"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, "must be a number"
    if isinstance(value, str) and not number_text(value):
        return None, "must be a number"
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None, "must be a number"
    if math.isnan(number):
        return None, "must not be NaN"
    if math.isinf(number):
        return None, "must be finite"
    low, high = BOUNDS[name]
    if not low <= number <= high:
        return None, f"must be between {low:g} and {high:g}"
    return number, None


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _line_of(row: int) -> int:
    return row + 2


# Refused before pandas sees it: pandas renames duplicate column names in quadratic time.
MAX_HEADER_BYTES = 4096
# Header and first row must fit: pandas takes a first row's extra cells as an index, so count them first.
HEAD_BYTES = 65_536
_GZIP_MAGIC = b"\x1f\x8b"
# pandas' C parser: "Error tokenizing data. C error: Expected 31 fields in line 6, saw 33"
_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _first_bytes(source: str | os.PathLike | bytes) -> bytes:
    if isinstance(source, bytes):
        return source[: HEAD_BYTES + 1]
    with open(source, "rb") as handle:
        return handle.read(HEAD_BYTES + 1)


def check_header(first: bytes, *, labelled: bool = True) -> None:
    """Refuse, from the first bytes alone, what is no CSV of this dataset: gzip, a bad header or first row."""
    if first.startswith(_GZIP_MAGIC):
        raise DataValidationError("the file is gzip-compressed: upload the CSV uncompressed")
    line = first.splitlines(keepends=True)[0] if first else b""
    if len(line.rstrip(b"\r\n")) > MAX_HEADER_BYTES:
        raise DataValidationError(f"the first line is over {MAX_HEADER_BYTES} bytes: not this dataset's header", line=1)
    if not line.strip():
        if first.strip():
            # pandas would take the next line as the header, and every line number would be off.
            raise DataValidationError("the first line is empty: it must be the header", line=1)
        return  # empty: pandas says so
    try:
        text = line.decode("utf-8-sig").rstrip("\r\n")  # -sig: a byte order mark is no part of the name
    except UnicodeDecodeError:
        raise DataValidationError("the file is not UTF-8 text", line=1) from None
    # Lines end at \n, \r\n or a lone \r, as pandas reads them; csv.reader refuses a lone \r inside one.
    header = check_columns(next(csv.reader([text])), labelled=labelled)
    _check_first_row(first[len(line) :], cells=len(header), whole_file=len(first) <= HEAD_BYTES)


def _check_first_row(rest: bytes, *, cells: int, whole_file: bool) -> None:
    """Refuse a first row with more cells than the header (even past the bytes read) or not whole in them."""
    try:
        # Incremental: the bytes read may end inside a character.
        text = codecs.getincrementaldecoder("utf-8")().decode(rest, final=whole_file)
    except UnicodeDecodeError:
        return  # the reading names the line
    if not text.strip():
        return
    # newline="": csv.reader sees each line end as it is, and reads quoted cells across lines as pandas does.
    records = csv.reader(io.StringIO(text, newline=""))
    try:
        row = next(records)
    except csv.Error:
        return  # pandas names what is wrong with the row
    try:
        whole = whole_file or next(records, None) is not None or text.endswith(("\n", "\r"))
    except csv.Error:
        whole = True  # a next row began
    if len(row) > cells:
        counted = f"{len(row)} cells" if whole else f"over {len(row) - 1} cells"
        raise DataValidationError(f"{counted}, expected {cells}", line=2)
    if not whole:
        raise DataValidationError(f"the first data row is over {HEAD_BYTES} bytes: not a row of this dataset", line=2)


def check_columns(names: list[str], *, labelled: bool = True) -> list[str]:
    """The stripped names; DataValidationError unless exactly COLUMNS (or FEATURES, Class optional)."""
    columns = [str(c).strip() for c in names]
    required = COLUMNS if labelled else FEATURES
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataValidationError(f"missing column(s): {', '.join(missing)}", line=1)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise DataValidationError(f"unknown column(s): {shown}", line=1)
    if len(set(columns)) != len(columns):
        raise DataValidationError("a column appears twice in the header", line=1)
    return columns


def _not_utf8(source: str | os.PathLike | bytes) -> DataValidationError:
    data = source if isinstance(source, bytes) else None
    if data is None:
        with open(source, "rb") as handle:
            data = handle.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DataValidationError("the file is not UTF-8 text", line=data.count(b"\n", 0, exc.start) + 1)
    return DataValidationError("the file is not UTF-8 text")


def read_training_csv(
    source: str | os.PathLike | bytes, *, require_fraud: bool = True, labelled: bool = True
) -> pd.DataFrame:
    """A validated data file (path or bytes) in schema order; DataValidationError names the first problem."""
    check_header(_first_bytes(source), labelled=labelled)

    def read(**kwargs) -> pd.DataFrame:
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        # compression=None: a gzip file named .csv is refused, never unpacked. Blank lines stay rows,
        # so row numbers stay line numbers and a first row after them is checked against the header.
        return pd.read_csv(handle, compression=None, encoding="utf-8", skip_blank_lines=False, **kwargs)

    try:
        try:
            frame = read(dtype=np.float64)
        except ValueError as exc:
            if isinstance(exc, UnicodeDecodeError | pd.errors.ParserError):
                raise
            # Some cell is not a number: read again as text to say which one and where.
            frame = read(dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise DataValidationError("the file is empty") from None
    except pd.errors.ParserError as exc:
        counted = _FIELD_COUNT.search(str(exc))
        if counted:
            expected, line, seen = counted.groups()
            raise DataValidationError(f"{seen} cells, expected {expected}", line=int(line)) from None
        raise DataValidationError(f"not a valid CSV file ({str(exc).strip()})") from None
    except UnicodeDecodeError:
        raise _not_utf8(source) from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas took a first row's extra cells as an index: check_header failed to count them.
        raise DataValidationError("the first data row has more cells than the header", line=2)
    return validate_frame(_without_trailing_blank_lines(frame), require_fraud=require_fraud, labelled=labelled)


def _without_trailing_blank_lines(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without trailing blank lines (a common slip); a blank line between rows is refused."""
    blank = (frame.isna() | (frame == "")).all(axis=1).to_numpy()
    kept = len(blank) - int(np.argmin(blank[::-1])) if not blank.all() else 0
    if blank[:kept].any():
        raise DataValidationError("the line is empty", line=_line_of(_first_bad_row(blank[:kept])))
    return frame.iloc[:kept]


def validate_frame(frame: pd.DataFrame, *, require_fraud: bool = True, labelled: bool = True) -> pd.DataFrame:
    """Validate a frame of strings or numbers read from a data file; see read_training_csv."""
    columns = check_columns(list(frame.columns), labelled=labelled)
    required = COLUMNS if labelled else FEATURES
    frame = frame.set_axis(columns, axis=1)
    if frame.empty:
        raise DataValidationError("the file has a header but no data rows")

    out = {}
    for name in required:
        raw = frame[name]
        if not pd.api.types.is_numeric_dtype(raw):
            text = raw.astype(str).str.strip()
            empty = (text == "").to_numpy()
            if empty.any():
                raise DataValidationError(f"column {name} is empty", line=_line_of(_first_bad_row(empty)))
            values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
            # to_numeric turns text into NaN; tell that apart from a literal "nan".
            bad_text = np.isnan(values) & ~text.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
            if bad_text.any():
                row = _first_bad_row(bad_text)
                raise DataValidationError(f"column {name} is not a number: {text.iloc[row][:40]!r}", line=_line_of(row))
        else:
            values = raw.to_numpy(dtype=np.float64)
        if np.isnan(values).any():
            raise DataValidationError(f"column {name} is empty or NaN", line=_line_of(_first_bad_row(np.isnan(values))))
        if np.isinf(values).any():
            raise DataValidationError(f"column {name} is infinite", line=_line_of(_first_bad_row(np.isinf(values))))
        out[name] = values

    if not labelled:
        _check_bounds(out)
        return pd.DataFrame({name: out[name] for name in FEATURES})
    labels = out[LABEL]
    bad_label = (labels != 0) & (labels != 1)
    if bad_label.any():
        row = _first_bad_row(bad_label)
        raise DataValidationError(f"column Class must be 0 or 1, got {labels[row]:g}", line=_line_of(row))
    _check_bounds(out)
    if require_fraud and not labels.any():
        raise DataValidationError("the file has no fraud rows (Class = 1); a model cannot learn from it")

    result = pd.DataFrame({name: out[name] for name in FEATURES})
    result[LABEL] = labels.astype(np.int8)
    return result


def _check_bounds(columns: dict[str, np.ndarray]) -> None:
    for name in FEATURES:
        low, high = BOUNDS[name]
        outside = (columns[name] < low) | (columns[name] > high)
        if outside.any():
            row = _first_bad_row(outside)
            raise DataValidationError(
                f"column {name} must be between {low:g} and {high:g}, got {columns[name][row]:g}", line=_line_of(row)
            )
