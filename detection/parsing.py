"""Request bodies into validated transactions, or exactly what is wrong with them; shared by the
API and the form. No DRF serializers: they would build a field object per value of a batch."""

from __future__ import annotations

import itertools
import json
import operator
from dataclasses import dataclass

import numpy as np
import orjson
from django.conf import settings

from modelops.ml.schema import BOUNDS, FEATURES, check_value, is_number_text

EXTERNAL_ID_MAX = 100
_LOW = np.array([BOUNDS[name][0] for name in FEATURES])
_HIGH = np.array([BOUNDS[name][1] for name in FEATURES])
_FEATURE_VALUES = operator.itemgetter(*FEATURES)


class InvalidInput(Exception):
    """Input refused as a whole; ``detail`` is the body of the 400 answer."""

    def __init__(self, message: str, *, fields: dict | None = None, items: list | None = None):
        super().__init__(message)
        self.detail: dict = {"code": "invalid_input", "message": message}
        if fields:
            self.detail["fields"] = fields
        if items:
            self.detail["items"] = items


class TooLarge(InvalidInput):
    """Input over a size limit: 413 from the API, shown as any other refusal on a page."""

    def __init__(self, message: str):
        super().__init__(message)
        self.detail["code"] = "payload_too_large"


@dataclass(frozen=True)
class Batch:
    """Validated transactions: a (n, len(FEATURES)) matrix in schema order, and their client ids."""

    values: np.ndarray
    external_ids: list[str | None]

    def __len__(self) -> int:
        return len(self.external_ids)


def decode(body: bytes | str) -> object:
    """JSON from a request body; NaN and Infinity pass, so that validation can name their field."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            raise InvalidInput("the body is nested too deeply") from None
    # Compatible clients may send the object double-encoded, as a JSON string.
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"the body is a JSON string that does not hold JSON: {exc}") from None
        except RecursionError:
            raise InvalidInput("the body is nested too deeply") from None
    return data


def _external_id_error(item: dict) -> str | None:
    external_id = item.get("external_id")
    if external_id is None:
        return None
    if isinstance(external_id, bool) or not isinstance(external_id, (str, int)):
        return "must be a string"
    text = str(external_id).strip()
    if not 0 < len(text) <= EXTERNAL_ID_MAX:
        return f"must be 1 to {EXTERNAL_ID_MAX} characters"
    # NUL cannot be stored in PostgreSQL text, and lone surrogates cannot be encoded.
    if any(ch < " " or ch == "\x7f" or "\ud800" <= ch <= "\udfff" for ch in text):
        return "must be printable text (no control characters or lone surrogates)"
    return None


class _NumberTexts(dict):
    """Whether each distinct string of one body holds a number, worked out once for both paths."""

    def __call__(self, text: str) -> bool:
        verdict = self.get(text)
        if verdict is None:
            verdict = self[text] = is_number_text(text)
        return verdict


def _item_errors(item: object, number_text: _NumberTexts) -> dict[str, str]:
    """Every problem of one item, by field (empty if it is valid)."""
    if not isinstance(item, dict):
        return {"non_field_errors": "must be a JSON object"}
    errors = {
        name: error for name in FEATURES if (error := check_value(name, item.get(name), number_text=number_text)[1])
    }
    if error := _external_id_error(item):
        errors["external_id"] = error
    return errors


def _fast_matrix(items: list, number_text: _NumberTexts) -> np.ndarray | None:
    """The items' features as floats, checked in one numpy pass, if every value is plainly valid;
    else None, and the item-by-item path names each problem."""
    try:
        cells = list(map(_FEATURE_VALUES, items))
    except (KeyError, TypeError):
        return None
    types = set(map(type, itertools.chain.from_iterable(cells)))
    # float(True) is 1.0, and numpy's float() takes more text than numbers: both checked first.
    if bool in types:
        return None
    if str in types and not all(
        map(number_text, filter(lambda v: type(v) is str, itertools.chain.from_iterable(cells)))
    ):
        return None
    try:
        matrix = np.array(cells, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    if matrix.shape != (len(items), len(FEATURES)):
        return None  # some values were lists of one shape, which numpy stacks into more dimensions
    if not ((matrix >= _LOW) & (matrix <= _HIGH)).all():  # also false for NaN
        return None
    return matrix


def _external_id(item: dict) -> str | None:
    value = item.get("external_id")
    return None if value is None else str(value).strip()


def parse(data: object, *, max_items: int | None = None) -> tuple[Batch, bool]:
    """Validated transactions and whether the input was a list; any bad item refuses the whole list.
    A list holds at most ``max_items`` (default SCORING_MAX_BATCH)."""
    is_list = isinstance(data, list)
    if not is_list and not isinstance(data, dict):
        raise InvalidInput("the body must be a transaction (JSON object) or a list of them")
    items = data if is_list else [data]
    if not items:
        raise InvalidInput("the list of transactions is empty")
    limit = settings.SCORING_MAX_BATCH if max_items is None else max_items
    if len(items) > limit:
        raise InvalidInput(f"a batch holds at most {limit} transactions, this one has {len(items)}")

    number_text = _NumberTexts()
    matrix = _fast_matrix(items, number_text)
    if matrix is None or (any("external_id" in item for item in items) and any(map(_external_id_error, items))):
        bad = [(i, errors) for i, item in enumerate(items) if (errors := _item_errors(item, number_text))]
    else:
        bad = []
    if bad:
        if not is_list:
            raise InvalidInput("the transaction is invalid", fields=bad[0][1])
        raise InvalidInput(
            f"{len(bad)} of {len(items)} transactions are invalid (first: index {bad[0][0]})",
            items=[{"index": i, "fields": e} for i, e in bad[:100]],
        )
    if matrix is None:
        matrix = np.array([[float(item[name]) for name in FEATURES] for item in items], dtype=np.float64)
    return Batch(values=matrix, external_ids=[_external_id(item) for item in items]), is_list
