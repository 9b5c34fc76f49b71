"""The byte-level targets of fuzz/ (the API body, number text, data files, artifacts), run here
under hypothesis for FUZZ_SECONDS each so that they keep working; `make fuzz` runs them under
atheris, with coverage guidance, for longer."""

from __future__ import annotations

import importlib

import pytest

from fuzz import ATHERIS_TARGETS
from fuzz.mutations import mutate_bytes

from .strategies import mutated

pytestmark = pytest.mark.fuzz


@pytest.mark.parametrize("name", ATHERIS_TARGETS)
def test_every_parser_refuses_or_accepts_within_its_budget(name, fuzz):
    target = importlib.import_module(ATHERIS_TARGETS[name])
    seeds = target.seeds()
    for seed in seeds:
        target.check(seed)
    inputs = mutated(seeds, getattr(target, "mutate", mutate_bytes), target.MAX_LEN)
    fuzz(target.check, inputs, target.BUDGET)
