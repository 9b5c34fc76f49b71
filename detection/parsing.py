"""Turn a request body into validated transactions, or say exactly what is wrong with it.

Shared by the JSON API and the HTML form, so both accept and refuse the same inputs. Written as
plain loops rather than DRF serializers: a 10,000-row batch validates in milliseconds this way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings

from modelops.ml.schema import FEATURES, check_value

EXTERNAL_ID_MAX = 100


class InvalidInput(Exception):
    """Input refused as a whole; ``detail`` is the body of the 400 answer."""

    def __init__(self, message: str, *, fields: dict | None = None, items: list | None = None):
        super().__init__(message)
        self.detail: dict = {"code": "invalid_input", "message": message}
        if fields:
            self.detail["fields"] = fields
        if items:
            self.detail["items"] = items


@dataclass(frozen=True)
class TransactionInput:
    values: tuple[float, ...]  # in schema.FEATURES order
    external_id: str | None = None


def decode(body: bytes | str) -> object:
    """JSON from a request body. NaN and Infinity literals are let through here so that the
    validation can name the field that holds them."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    # The original client sent json.dumps(row) as the JSON body: a JSON string holding the object.
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"the body is a JSON string that does not hold JSON: {exc}") from None
    return data


def parse_item(item: object) -> tuple[TransactionInput | None, dict[str, str]]:
    if not isinstance(item, dict):
        return None, {"non_field_errors": "must be a JSON object"}
    errors: dict[str, str] = {}
    values = []
    for name in FEATURES:
        value, error = check_value(name, item.get(name))
        if error:
            errors[name] = error
        values.append(value)
    external_id = item.get("external_id")
    if external_id is not None:
        if isinstance(external_id, bool) or not isinstance(external_id, (str, int)):
            errors["external_id"] = "must be a string"
        else:
            external_id = str(external_id).strip()
            if not external_id or len(external_id) > EXTERNAL_ID_MAX:
                errors["external_id"] = f"must be 1 to {EXTERNAL_ID_MAX} characters"
    if errors:
        return None, errors
    return TransactionInput(values=tuple(values), external_id=external_id or None), {}


def parse(data: object) -> tuple[list[TransactionInput], bool]:
    """Validated transactions and whether the input was a list. A list with any bad item is
    refused whole, naming each bad item's index and fields."""
    if isinstance(data, dict):
        item, errors = parse_item(data)
        if errors:
            raise InvalidInput("the transaction is invalid", fields=errors)
        return [item], False
    if not isinstance(data, list):
        raise InvalidInput("the body must be a transaction (JSON object) or a list of them")
    if not data:
        raise InvalidInput("the list of transactions is empty")
    limit = settings.SCORING_MAX_BATCH
    if len(data) > limit:
        raise InvalidInput(f"a batch holds at most {limit} transactions, this one has {len(data)}")
    items, bad = [], []
    for index, raw in enumerate(data):
        item, errors = parse_item(raw)
        if errors:
            bad.append({"index": index, "fields": errors})
        items.append(item)
    if bad:
        first = bad[0]["index"]
        raise InvalidInput(
            f"{len(bad)} of {len(data)} transactions are invalid (first: index {first})", items=bad[:100]
        )
    return items, True
