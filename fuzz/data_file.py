"""Data files (modelops.ml.schema.read_training_csv): the labelled files the scan takes in for
training, and, unlabelled, the CSV files uploaded to /score-file/.

The property: a DataValidationError with a reason, and a line that the file has, or a frame
that holds only what the schema allows. A file accepted as labelled is also a file to score,
with the same values.
"""

from __future__ import annotations

import gzip
import io
import random

import numpy as np

from modelops.ml import synthetic
from modelops.ml.schema import BOUNDS, COLUMNS, FEATURES, HEAD_BYTES, LABEL, DataValidationError, read_training_csv

from .harness import Budget
from .mutations import mutate_bytes, mutate_csv

# pandas reads each file twice at most (as floats, then as text to name a bad cell).
BUDGET = Budget(constant=2.0, per_byte=20e-6)
# Past HEAD_BYTES, so that the checks of a first row too long to count are reached.
MAX_LEN = HEAD_BYTES + 4096


def _clean(rows: int) -> bytes:
    buffer = io.StringIO()
    synthetic.write_csv(synthetic.generate(rows=rows, fraud_rate=0.3, seed=rows), buffer)
    return buffer.getvalue().encode()


def seeds() -> list[bytes]:
    clean = _clean(4)
    header, first, *rest = clean.splitlines(keepends=True)
    unlabelled = b"".join(line.rsplit(b",", 1)[0] + b"\n" for line in clean.splitlines())
    return [
        clean,
        unlabelled,
        b"\xef\xbb\xbf" + clean,
        clean.replace(b"\n", b"\r\n"),
        clean.replace(b"\n", b"\r"),
        b"".join(b",".join(b'"' + cell + b'"' for cell in line.split(b",")) + b"\n" for line in clean.splitlines()),
        header + first.replace(b",", b",1e309,", 1) + b"".join(rest),
        header + first.rstrip(b"\n") + b"," + b"1," * 200 + b"\n",
        header + first.rstrip(b"\n") + b"9" * (HEAD_BYTES - len(header)) + b"\n",
        header,
        b"\n" + clean,
        gzip.compress(clean)[:200],
    ]


def mutate(data: bytes, rng: random.Random, max_size: int) -> bytes:
    return mutate_csv(data, rng, max_size) if rng.random() < 0.7 else mutate_bytes(data, rng, max_size)


def _accepted(frame, *, labelled: bool) -> np.ndarray:
    """The frame's features, after checking it holds only what the schema allows."""
    assert list(frame.columns) == list(COLUMNS if labelled else FEATURES), list(frame.columns)[:40]
    assert len(frame) > 0
    values = frame[list(FEATURES)].to_numpy(dtype=np.float64)
    assert np.isfinite(values).all()
    low = np.array([BOUNDS[name][0] for name in FEATURES])
    high = np.array([BOUNDS[name][1] for name in FEATURES])
    assert ((values >= low) & (values <= high)).all()
    if labelled:
        assert set(frame[LABEL].unique()) <= {0, 1}
    return values


def _refused(exc: DataValidationError, data: bytes) -> None:
    assert isinstance(exc.reason, str) and exc.reason.strip(), repr(exc.reason)
    # pandas ends a line at \n, \r\n or a lone \r; blank lines it skips still count.
    lines = data.count(b"\n") + data.count(b"\r") + 1
    assert exc.line is None or 1 <= exc.line <= lines, f"line {exc.line} of a file of at most {lines}: {exc}"


def check(data: bytes) -> None:
    read = {}
    for labelled in (True, False):
        try:
            frame = read_training_csv(data, require_fraud=False, labelled=labelled)
        except DataValidationError as exc:
            _refused(exc, data)
        else:
            read[labelled] = _accepted(frame, labelled=labelled)
    if True in read:
        assert False in read, "a labelled file accepted for training was refused for scoring"
        assert np.array_equal(read[True], read[False])
