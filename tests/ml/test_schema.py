from __future__ import annotations

import gzip
import time

import pytest

from modelops.ml import schema, synthetic
from modelops.ml.schema import DataValidationError


@pytest.fixture(scope="module")
def good_csv(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("csv") / "good.csv"
    synthetic.write_csv(synthetic.generate(rows=200, fraud_rate=0.05, seed=1), path)
    return path.read_bytes()


def replace_cell(data: bytes, row: int, column: str, value: str) -> bytes:
    lines = data.decode().splitlines()
    header = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[header.index(column)] = value
    lines[row + 1] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


def refusal(data: bytes) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        schema.read_training_csv(data)
    return caught.value


def test_it_reads_a_good_file_in_schema_order(good_csv):
    frame = schema.read_training_csv(good_csv)
    assert list(frame.columns) == list(schema.COLUMNS)
    assert len(frame) == 200
    assert frame["Class"].sum() == 10


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc", "column V3 is not a number: 'abc'"),
        ("nan", "column V3 is empty or NaN"),
        ("", "column V3 is empty or NaN"),
        ("inf", "column V3 is infinite"),
        ("-inf", "column V3 is infinite"),
        ("1e9", "column V3 must be between -10000 and 10000, got 1e+09"),
    ],
)
def test_it_names_the_bad_value_and_its_line(good_csv, value, reason):
    error = refusal(replace_cell(good_csv, 4, "V3", value))
    assert error.reason == reason
    assert error.line == 6  # header is line 1, row 0 is line 2


@pytest.mark.parametrize("label", ["2", "-1", "0.5"])
def test_it_refuses_labels_other_than_0_and_1(good_csv, label):
    error = refusal(replace_cell(good_csv, 0, "Class", label))
    assert error.reason.startswith("column Class must be 0 or 1")
    assert error.line == 2


def test_it_refuses_a_missing_column(good_csv):
    lines = good_csv.decode().splitlines()
    without_amount = "\n".join(",".join(line.split(",")[:-2] + line.split(",")[-1:]) for line in lines)
    error = refusal(without_amount.encode())
    assert error.reason == "missing column(s): Amount"
    assert error.line == 1


def test_it_refuses_an_unknown_column(good_csv):
    lines = good_csv.decode().splitlines()
    extra = "\n".join([lines[0] + ",Note", *(line + ",x" for line in lines[1:])])
    assert refusal(extra.encode()).reason == "unknown column(s): Note"


def test_it_refuses_an_empty_file():
    assert refusal(b"").reason == "the file is empty"


def test_it_refuses_a_header_without_rows():
    assert refusal((",".join(schema.COLUMNS) + "\n").encode()).reason == "the file has a header but no data rows"


def test_it_refuses_a_file_without_frauds(good_csv):
    frame = schema.read_training_csv(good_csv)
    legit_only = frame[frame["Class"] == 0].to_csv(index=False).encode()
    assert "no fraud rows" in refusal(legit_only).reason


def test_it_accepts_a_file_without_frauds_when_asked(good_csv):
    frame = schema.read_training_csv(good_csv)
    legit_only = frame[frame["Class"] == 0].to_csv(index=False).encode()
    assert len(schema.read_training_csv(legit_only, require_fraud=False)) == 190


def test_it_refuses_a_gzip_file_named_csv(good_csv):
    assert refusal(gzip.compress(good_csv)).reason == "the file is gzip-compressed: upload the CSV uncompressed"


def test_it_accepts_quoted_cells_as_in_the_kaggle_file(good_csv):
    lines = good_csv.decode().splitlines()
    quoted = "\n".join([",".join(f'"{c}"' for c in lines[0].split(",")), *lines[1:]])
    assert len(schema.read_training_csv(quoted.encode())) == 200


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("V1", "-1.5", (-1.5, None)),
        ("V1", 2, (2.0, None)),
        ("V1", None, (None, "is required")),
        ("V1", "x", (None, "must be a number")),
        ("V1", " 2.5e1 ", (25.0, None)),
        ("V1", "\u00a01.5\u2003", (1.5, None)),  # any whitespace around, as the API schema allows
        ("V1", ".5", (0.5, None)),
        # float() reads these, JSON and the CSV files do not: digit separators, other scripts'
        # digits, hexadecimal.
        ("V1", "1_000", (None, "must be a number")),
        ("V1", "\u0661\u0662", (None, "must be a number")),
        ("V1", "0x10", (None, "must be a number")),
        ("V1", True, (None, "must be a number")),
        ("V1", [1], (None, "must be a number")),
        ("V1", float("nan"), (None, "must not be NaN")),
        ("V1", "NaN", (None, "must not be NaN")),
        ("V1", "Infinity", (None, "must be finite")),
        ("Amount", -1, (None, "must be between 0 and 1e+09")),
        ("Time", 1e10, (None, "must be between 0 and 1e+09")),
    ],
)
def test_check_value_converts_or_explains(name, value, expected):
    assert schema.check_value(name, value) == expected


def test_it_reads_a_file_that_starts_with_a_byte_order_mark(good_csv):
    assert len(schema.read_training_csv(b"\xef\xbb\xbf" + good_csv)) == 200


@pytest.mark.parametrize("extra", [",4", ","])
def test_a_first_data_row_with_a_cell_too_many_is_named(good_csv, extra):
    # pandas would take the first column for an index and read every row shifted by one.
    lines = good_csv.decode().splitlines()
    lines[1] += extra
    error = refusal(("\n".join(lines) + "\n").encode())
    assert (error.line, error.reason) == (2, "32 cells, expected 31")


def test_a_first_data_row_with_a_cell_too_few_is_named_by_its_empty_cell(good_csv):
    lines = good_csv.decode().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0]
    error = refusal(("\n".join(lines) + "\n").encode())
    assert (error.line, error.reason) == (2, "column Class is empty or NaN")


def test_it_refuses_an_empty_first_line_rather_than_miscount_lines(good_csv):
    error = refusal(b"\n" + good_csv)
    assert (error.line, error.reason) == (1, "the first line is empty: it must be the header")


def test_it_reads_a_file_whose_lines_end_in_a_lone_carriage_return(good_csv):
    assert len(schema.read_training_csv(good_csv.replace(b"\n", b"\r"))) == 200


@pytest.mark.parametrize("blank", [b"\n", b"\r\n", b"\n\r\n"])
def test_a_first_data_row_with_cells_too_many_after_blank_lines_is_named_by_its_line(good_csv, blank):
    # Found by the fuzzer: pandas skipped the blank lines, took the row's extra cells for a
    # MultiIndex and accepted the file, slowly.
    header, first, *rest = good_csv.splitlines(keepends=True)
    data = header + blank + first.rstrip(b"\n") + b",1" * 50 + b"\n" + b"".join(rest)
    lines = 2 + blank.count(b"\n")
    for labelled in (True, False):
        with pytest.raises(DataValidationError) as caught:
            schema.read_training_csv(data, labelled=labelled)
        assert (caught.value.line, caught.value.reason) == (lines, "81 cells, expected 31")


def test_a_blank_line_between_rows_is_refused_with_its_line(good_csv):
    header, first, *rest = good_csv.splitlines(keepends=True)
    error = refusal(header + first + b"\r\n" + b"".join(rest))
    assert (error.line, error.reason) == (3, "the line is empty")


def test_blank_lines_after_the_last_row_are_ignored(good_csv):
    assert len(schema.read_training_csv(good_csv + b"\n\r\n\n")) == 200


class PatternSpy:
    """Stands in for the number pattern and records what it is asked to match."""

    def __init__(self, pattern):
        self.pattern, self.texts = pattern, []

    def fullmatch(self, text):
        self.texts.append(text)
        return self.pattern.fullmatch(text)


def test_number_text_over_the_length_cap_is_refused_without_matching_the_pattern(monkeypatch):
    spy = PatternSpy(schema._NUMBER_TEXT)
    monkeypatch.setattr(schema, "_NUMBER_TEXT", spy)
    assert schema.is_number_text(" " + "1" * schema.MAX_NUMBER_TEXT + " ")
    assert not schema.is_number_text("1" * (schema.MAX_NUMBER_TEXT + 1))
    assert [len(t) for t in spy.texts] == [schema.MAX_NUMBER_TEXT]


@pytest.mark.parametrize("text", ["1" * 20_000 + "x", "1" * 20_000 + "e", "1" * 20_000 + ".5x"])
def test_the_number_pattern_refuses_a_long_digit_run_in_linear_time(text):
    # Matched only under the length cap, the pattern must still be linear on its own: one that can
    # split a digit run many ways took seconds on 20,000 digits, thousands of times this bound.
    started = time.perf_counter()
    assert schema._NUMBER_TEXT.fullmatch(text) is None
    assert time.perf_counter() - started < 0.5
