"""What every target shares: the time an input may take, and a target's shape."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class SlowInput(AssertionError):
    """An input that took longer than its size allows: a parser that is not linear, or a hang."""


@dataclass(frozen=True)
class Budget:
    """The seconds one input may take: a constant for the fixed costs plus a cost per byte. Both
    are loose, many times what a linear parser needs, so that only a superlinear one or a hang
    goes over them on a busy machine."""

    constant: float
    per_byte: float

    def seconds(self, size: int) -> float:
        return self.constant + self.per_byte * size


def within_budget(check: Callable[[T], object], data: T, budget: Budget, *, size: int | None = None) -> None:
    """Run ``check(data)``; SlowInput if it overran its budget twice in a row. A machine that
    stalled once (a collection, another process) does not make a finding; a slow parser is slow
    every time. ``size`` is the input's size in bytes, if ``data`` is not bytes."""
    size = len(data) if size is None else size
    limit = budget.seconds(size)
    for _attempt in range(2):
        started = time.perf_counter()
        check(data)
        elapsed = time.perf_counter() - started
        if elapsed <= limit:
            return
    raise SlowInput(f"{elapsed:.2f} s for {size} bytes, over the budget of {limit:.2f} s")
