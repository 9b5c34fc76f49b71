"""The live API against its own OpenAPI schema: schemathesis generates requests for every
documented operation from /api/schema/ of a real server (gunicorn), and checks that no answer is
a server error and that every answer matches the schema documented for its status.

The deployment (its DATA_DIR, its database, its processes, their teardown) is the one
tests/e2e/test_qcluster.py sets up for each test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e import test_qcluster as e2e

pytestmark = pytest.mark.slow

deployment = e2e.deployment  # the fixture: a DATA_DIR, a database of its own, processes stopped after

CHECKS = "not_a_server_error,response_schema_conformance"
MAX_EXAMPLES = 50  # per operation and phase
# A fixed seed: CI runs the same cases every time; set SCHEMATHESIS_SEED to explore others.
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261124")
# The whole run takes 15 to 40 s here; this only bounds a hang.
RUN_TIMEOUT = 600


def run_schemathesis(schema_url: str, workdir: Path) -> tuple[subprocess.CompletedProcess, dict]:
    report_dir = workdir / "schemathesis"
    argv = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "run",
        schema_url,
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",  # nothing written outside workdir
        "--report",
        "json,junit",
        "--report-dir",
        str(report_dir),
    ]
    try:
        done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"schemathesis did not finish in {RUN_TIMEOUT} s\n{exc.stdout}\n{exc.stderr}")
    reports = sorted(report_dir.glob("json-*.json"))
    assert reports, f"schemathesis wrote no report (exit {done.returncode})\n{done.stdout}\n{done.stderr}"
    return done, json.loads(reports[-1].read_text())


def figures(report: dict, requests: Counter) -> str:
    operations, cases = report["operations"], report["test_cases"]
    lines = [
        f"schemathesis {report['schemathesis_version']}, seed {report['seed']}, {report['running_time']:.1f} s: "
        f"{operations['tested']}/{operations['total']} operations tested, {cases['generated']} cases generated, "
        f"{cases['with_failures']} with failures ({cases['unique_failures']} unique), {cases['errored']} errored",
        "phases: " + ", ".join(f"{name} {phase['status']}" for name, phase in report["phases"].items()),
    ]
    for operation, phases in report.get("valid_rates", {}).items():
        accepted = sum(rates["accepted"] for rates in phases.values())
        rejected = sum(rates["rejected"] for rates in phases.values())
        lines.append(f"  {operation}: schema-valid cases {accepted} accepted, {rejected} refused by the server")
    documented = report.get("valid_rates", {}).keys()
    lines.extend(f"  {operation}: {requests[operation]} requests sent" for operation in documented)
    others = sum(count for operation, count in requests.items() if operation not in documented)
    lines.append(f"  other methods and paths (probes, undocumented methods): {others} requests sent")
    lines.extend(
        f"  FAILURE {f['code']} {f['title']} x{f['count']}: {', '.join(f['operations'])}" for f in report["failures"]
    )
    return "\n".join(lines)


def requests_by_operation(access_log: Path) -> Counter:
    """What schemathesis sent, per method and path (query left out), from gunicorn's access log."""
    lines = access_log.read_text(errors="replace").splitlines()
    found = (re.search(r'"([A-Z]+) ([^ ?"]*)\S* HTTP/[0-9.]+".*"schemathesis/', line) for line in lines)
    # Requests to /api/models/<anything but active> count for the operation /api/models/{version},
    # those to /api/batches/<id>[/results] for the batch operations.
    return Counter(f"{m[1]} {_operation_path(m[2])}" for m in found if m)


def _operation_path(path: str) -> str:
    path = re.sub(r"^/api/models/(?!active$).*", "/api/models/{version}", path)
    return re.sub(r"^/api/batches/[^/]+(/results)?$", r"/api/batches/{job_id}\1", path)


def test_the_live_api_keeps_its_openapi_contract(deployment, tmp_path):
    deployment.env.update(
        # The API open, as the original app's clients need it; keys are tested elsewhere.
        SCORING_API_OPEN="true",
        # Fuzzing sends a few thousand requests a minute from one address.
        SCORING_RATE_LIMIT="1000000/min",
    )
    deployment.manage("migrate", "--noinput")
    deployment.manage("ensure_model", "--rows", "20000")
    port = e2e.free_ports(1)[0]
    e2e.start_server(deployment, "web", port)

    done, report = run_schemathesis(f"http://127.0.0.1:{port}/api/schema/", tmp_path)
    summary = figures(report, requests_by_operation(deployment.data_dir / "web.log"))
    print(summary)
    details = f"{summary}\n--- schemathesis output ---\n{done.stdout[-20_000:]}\n{done.stderr[-5_000:]}"

    assert report["complete"], details
    assert report["operations"]["tested"] == report["operations"]["total"] > 0, details
    assert "POST /detect-fraud" in report["valid_rates"], details
    assert not report["errors"] and report["test_cases"]["errored"] == 0, details
    assert report["test_cases"]["with_failures"] == 0, f"{details}\n{deployment.outputs()[-5_000:]}"
    assert done.returncode == 0, details
