"""Every fault drill still starts where it now lives: each answers --help (its imports resolve
from drills/) and the shell drill parses. The drills themselves run for minutes and are not run
here, except drills/db_restart.py, briefly, in tests/e2e/test_db_restart.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DRILLS = Path(__file__).resolve().parent.parent / "drills"


@pytest.mark.parametrize("script", sorted(p.name for p in DRILLS.glob("*.py") if p.name != "__init__.py"))
def test_a_drill_answers_help(script):
    done = subprocess.run(
        [sys.executable, str(DRILLS / script), "--help"], cwd=DRILLS.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "usage:" in done.stdout


@pytest.mark.parametrize("script", sorted(p.name for p in DRILLS.glob("*.sh")))
def test_a_shell_drill_parses(script):
    done = subprocess.run(["bash", "-n", str(DRILLS / script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
