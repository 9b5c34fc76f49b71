"""Run one byte-level target under atheris: ``python -m fuzz.engine TARGET [libFuzzer flags]``.

The corpus it grows is kept in var/fuzz/TARGET/corpus, so a longer run on demand goes on from
what earlier runs found; a finding is written to var/fuzz/TARGET/ as crash-*, timeout-* or oom-*,
and libFuzzer exits non-zero.
"""

from __future__ import annotations

import hashlib
import importlib
import random
import sys
from pathlib import Path

import atheris

from . import ATHERIS_TARGETS
from .harness import within_budget

ROOT = Path(__file__).resolve().parent.parent
# A single input running this long is a hang; one slower than its budget but quicker than this
# is caught by within_budget, with its size in the message.
HANG_SECONDS = 60


def workdir(name: str) -> Path:
    return ROOT / "var" / "fuzz" / name


def main(argv: list[str]) -> None:
    name, flags = argv[1], argv[2:]
    module = ATHERIS_TARGETS[name]
    # Comparisons with startswith/endswith (the gzip magic, say) guide the mutations too.
    atheris.enabled_hooks.add("str")
    # Imported here, inside the instrumentation, so that atheris sees the parsers' branches.
    with atheris.instrument_imports(include=[module, "modelops", "detection"]):
        target = importlib.import_module(module)

    corpus = workdir(name) / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in target.seeds():
        (corpus / f"seed-{hashlib.sha1(seed).hexdigest()}").write_bytes(seed)

    def test_one_input(data: bytes) -> None:
        within_budget(target.check, data, target.BUDGET)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        # Half structure-aware edits, half libFuzzer's own byte-level ones.
        rng = random.Random(seed)
        if rng.random() < 0.5:
            return target.mutate(data, rng, max_size)
        return atheris.Mutate(data, max_size)

    defaults = [
        f"-max_len={target.MAX_LEN}",
        f"-timeout={HANG_SECONDS}",
        f"-artifact_prefix={workdir(name)}/",
        "-print_final_stats=1",
    ]
    atheris.Setup(
        [argv[0], *defaults, *flags, str(corpus)],
        test_one_input,
        custom_mutator=custom_mutator if hasattr(target, "mutate") else None,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
