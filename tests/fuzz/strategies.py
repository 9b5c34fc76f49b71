"""Strategies shared by the Django fuzz targets."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st


@st.composite
def mutated(draw, seeds: list[bytes], mutate: Callable, max_size: int) -> bytes:
    """One of ``seeds`` after one to four of a target's mutations, driven by hypothesis' random."""
    data = draw(st.sampled_from(seeds))
    rng = draw(st.randoms(use_true_random=False))
    for _edit in range(draw(st.integers(1, 4))):
        data = mutate(data, rng, max_size)
    return data
