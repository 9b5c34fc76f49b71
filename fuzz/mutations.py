"""Structure-aware mutations, driven by a random.Random so that atheris (its seed) and hypothesis
(st.randoms) can both use them. Near-valid inputs reach the checks deep inside a parser, which
random bytes mostly stop short of."""

from __future__ import annotations

import copy
import json
import math
import random

# Tokens that have broken, or sit at the edge of, number and text parsing.
TEXTS = (
    "",
    " ",
    "nan",
    "-NaN",
    "inf",
    "-Infinity",
    "1e309",
    "-1e309",
    "1e-400",
    "-0",
    "0x10",
    "1_0",
    "+.5",
    "5.",
    ".",
    "e5",
    "1e",
    "\u0661",  # an Arabic-Indic digit, which float() reads
    "\uff11",  # a fullwidth digit
    "\u2003",  # an em space, which strip() removes
    "\x00",
    "\ud800",
    "\ufeff",
    '"',
    "'",
    ",",
    "\r",
    "\n",
    "\r\n",
    "9" * 400,
    "1" * 5000,
)
NUMBERS = (
    0,
    1,
    -1,
    2,
    29,
    30,
    31,
    2**15,
    2**16,
    2**31 - 1,
    2**31,
    2**32,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**400,
    0.5,
    -0.0,
    1e-45,
    1e308,
    -1e308,
    5e-324,
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    None,
)


def interesting_value(rng: random.Random) -> object:
    kind = rng.random()
    if kind < 0.45:
        return rng.choice(NUMBERS)
    if kind < 0.8:
        return rng.choice(TEXTS)
    return rng.choice(([], {}, [0], {"": 0}, [[]] * 3))


def mutate_bytes(data: bytes, rng: random.Random, max_size: int) -> bytes:
    """One edit of ``data``: bytes or a token inserted, a slice deleted, replaced or repeated."""
    at = rng.randint(0, len(data))
    end = min(len(data), at + rng.randint(0, 64))
    op = rng.randrange(6)
    if op == 0:
        out = data[:at] + rng.choice(TEXTS).encode("utf-8", "surrogatepass") + data[at:]
    elif op == 1:
        out = data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
    elif op == 2:
        out = data[:at] + data[end:]
    elif op == 3:
        # A slice repeated many times: the sizes at which a superlinear parser shows.
        out = data[:at] + data[at:end] * rng.choice((2, 10, 100, 1000)) + data[end:]
    elif op == 4 and data:
        index = rng.randrange(len(data))
        out = data[:index] + bytes([rng.randrange(256)]) + data[index + 1 :]
    else:
        out = data[:at]
    return out[:max_size]


def _slots(node: object, found: list) -> None:
    """Every (container, key) of a JSON document, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found.append((node, key))
        _slots(value, found)


def mutate_json(document: object, rng: random.Random) -> object:
    """``document`` (not changed) with one value replaced, deleted, copied or repeated."""
    root = {"": copy.deepcopy(document)}
    slots: list = []
    _slots(root, slots)
    container, key = rng.choice(slots)
    value = container[key]
    op = rng.randrange(7)
    if op == 0 and key != "":
        del container[key]
    elif op == 1 and isinstance(value, int) and not isinstance(value, bool):
        container[key] = value + rng.choice((-2, -1, 1, 2, value, -value - 1))
    elif op == 2 and isinstance(value, list) and value:
        container[key] = value + [copy.deepcopy(rng.choice(value))] * rng.choice((1, 2, 10))
    elif op == 3 and isinstance(value, list) and len(value) > 1:
        i, j = rng.randrange(len(value)), rng.randrange(len(value))
        value[i], value[j] = value[j], value[i]
    elif op == 4:
        # Another value of the document here: a node list in a scalar's place, a tree for a tree.
        other_container, other_key = rng.choice(slots)
        container[key] = copy.deepcopy(other_container[other_key])
    elif op == 5 and isinstance(value, dict):
        value[rng.choice(TEXTS)] = interesting_value(rng)
    else:
        container[key] = interesting_value(rng)
    return root[""]


def mutate_json_bytes(data: bytes, rng: random.Random, max_size: int) -> bytes | None:
    """A JSON document's bytes after one to three mutate_json edits, or None if ``data`` is not
    JSON (or the result is too large)."""
    try:
        document = json.loads(data)
        for _edit in range(rng.randint(1, 3)):
            document = mutate_json(document, rng)
        out = json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return None
    return out if len(out) <= max_size else None


def mutate_csv(data: bytes, rng: random.Random, max_size: int) -> bytes:
    """One edit of a CSV file's lines or cells."""
    lines = data.splitlines(keepends=True) or [b""]
    index = rng.randrange(len(lines))
    line = lines[index]
    ending = line[len(line.rstrip(b"\r\n")) :]
    cells = line[: len(line) - len(ending)].split(b",")
    op = rng.randrange(8)
    if op == 0:
        cells[rng.randrange(len(cells))] = rng.choice(TEXTS).encode("utf-8", "surrogatepass")
    elif op == 1:
        cell = rng.randrange(len(cells))
        cells[cell] = b'"' + cells[cell] + b'"'
    elif op == 2:
        del cells[rng.randrange(len(cells))]
    elif op == 3:
        cells.insert(rng.randrange(len(cells) + 1), rng.choice((b"", b"1", b"x")))
    elif op == 4:
        ending = rng.choice((b"\n", b"\r\n", b"\r", b""))
    elif op == 5:
        lines[index : index + 1] = [line] * rng.choice((0, 2, 10, 100))
        return b"".join(lines)[:max_size]
    elif op == 6:
        other = rng.randrange(len(lines))
        lines[index], lines[other] = lines[other], lines[index]
        return b"".join(lines)[:max_size]
    else:
        lines.insert(index, rng.choice((b"\n", b"\r\n", b",\n", b'"\n')))
        return b"".join(lines)[:max_size]
    lines[index] = b",".join(cells) + ending
    return b"".join(lines)[:max_size]


def mutate_json_or_bytes(data: bytes, rng: random.Random, max_size: int, *, json_share: float) -> bytes:
    """A JSON-aware edit ``json_share`` of the time (when ``data`` is JSON), else a byte-level one."""
    if rng.random() < json_share:
        mutated = mutate_json_bytes(data, rng, max_size)
        if mutated is not None:
            return mutated
    return mutate_bytes(data, rng, max_size)
