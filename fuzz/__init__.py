"""Fuzz targets for every parser of untrusted input: ``python -m fuzz [--seconds N] [target ...]``.

The byte-level parsers run under atheris, whose coverage guidance finds their rare branches; the
Django request targets need settings and a test database, so they are hypothesis properties run
by pytest (tests/fuzz/). This module imports nothing, so that atheris can instrument the parsers
as a target imports them.
"""

from __future__ import annotations

# name -> the module of fuzz/ that holds it (run by fuzz.engine under atheris)
ATHERIS_TARGETS = {
    "number_text": "fuzz.number_text",
    "data_file": "fuzz.data_file",
    "api_body": "fuzz.api_body",
    "artifact": "fuzz.artifact",
}
# name -> the pytest file that holds it (tests marked fuzz, run for FUZZ_SECONDS each)
PYTEST_TARGETS = {
    "api_request": "tests/fuzz/test_api_request.py",
    "score_file": "tests/fuzz/test_score_file.py",
    "queue_filter": "tests/fuzz/test_queue_filter.py",
}
TARGETS = (*ATHERIS_TARGETS, *PYTEST_TARGETS)
