"""Number text (modelops.ml.schema.is_number_text): a number as the API and the form take it in
a string.

The property is exact: a text is a number when float() reads it, it is ASCII, has no digit
separator and is at most MAX_NUMBER_TEXT characters once stripped. Invalid UTF-8 is read as
lone surrogates, which JSON escapes can also carry.
"""

from __future__ import annotations

from modelops.ml.schema import MAX_NUMBER_TEXT, is_number_text

from .harness import Budget

BUDGET = Budget(constant=0.5, per_byte=2e-6)
MAX_LEN = 8192


def seeds() -> list[bytes]:
    texts = ["0", "-1.5", " 2.5e-3 ", "+.5", "5.", "1E+05", "nan", "-Infinity", "1" * MAX_NUMBER_TEXT, "1_0", "\u0661"]
    return [text.encode() for text in texts]


def _float_reads(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    verdict = is_number_text(text)
    assert type(verdict) is bool
    core = text.strip()
    expected = len(core) <= MAX_NUMBER_TEXT and core.isascii() and "_" not in core and _float_reads(core)
    assert verdict == expected, f"is_number_text({text[:100]!r}) is {verdict}, expected {expected}"
