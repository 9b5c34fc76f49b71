"""The Django fuzz targets: hypothesis properties, each run round after round for FUZZ_SECONDS.

A few seconds by default, so that the suite stays quick and keeps the targets working;
`make fuzz SECONDS=…` sets more.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.harness import Budget, within_budget

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS") or 2)
# Examples per round: a round is short, so the time bound is kept closely.
ROUND = settings(
    max_examples=20,
    deadline=None,  # the input's own budget is checked instead, by its size
    database=None,  # no .hypothesis/ folder in the work tree; a failure prints its example
    suppress_health_check=list(HealthCheck),
)
_examples: dict[str, tuple[int, float]] = {}


@pytest.fixture
def fuzz(request) -> Callable:
    """``fuzz(check, strategy, budget, size=len)``: ``check`` each drawn input within its budget
    until FUZZ_SECONDS are up."""

    def run(check: Callable, strategy: st.SearchStrategy, budget: Budget, size: Callable = len) -> None:
        count = 0

        @ROUND
        @given(strategy)
        def one_round(value) -> None:
            nonlocal count
            count += 1
            within_budget(check, value, budget, size=size(value))

        started = time.monotonic()
        while time.monotonic() - started < FUZZ_SECONDS:
            one_round()
        _examples[request.node.name] = (count, time.monotonic() - started)

    return run


def pytest_terminal_summary(terminalreporter) -> None:
    for name, (count, seconds) in _examples.items():
        terminalreporter.write_line(f"fuzz {name}: {count:,} inputs in {seconds:.0f} s")
