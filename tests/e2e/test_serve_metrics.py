"""`make run`'s server script as it runs: two gunicorn workers and the task cluster, and /metrics
summing what every worker counted (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e import test_qcluster as e2e

pytestmark = pytest.mark.slow

deployment = e2e.deployment
ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 40


def requests_counted(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fraud_http_request_seconds_count" and sample.labels.get("endpoint") == "detect-fraud"
    )


def test_metrics_add_up_every_worker_of_the_served_app(deployment):
    deployment.manage("migrate", "--noinput")
    deployment.manage("ensure_model", "--rows", "20000")
    port = e2e.free_ports(1)[0]
    env = {
        **deployment.env,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "VENV": str(Path(sys.executable).parents[1]),
        "DEMO_TRAFFIC": "0",  # only this test's requests are counted
    }
    log = (deployment.data_dir / "serve.log").open("w")
    served = subprocess.Popen(
        ["bash", "scripts/serve.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        e2e._wait_for(
            lambda: _accepting(port),
            timeout=90,
            interval=0.5,
            failure=lambda: (deployment.data_dir / "serve.log").read_text(),
        )
        with ThreadPoolExecutor(8) as pool:  # concurrent, so that both workers answer some
            list(pool.map(lambda _: e2e.post_transaction(port), range(REQUESTS)))
        # Each scrape is answered by one worker or the other: every one must see all requests.
        assert [requests_counted(port) for _ in range(6)] == [REQUESTS] * 6
        pids = {name.rsplit("_", 1)[-1] for name in os.listdir(deployment.data_dir / "prometheus")}
        assert len(pids) >= 2, pids  # files of more than one process were summed
    finally:
        os.killpg(served.pid, signal.SIGINT)  # one Ctrl-C stops the script, gunicorn and the cluster
        assert served.wait(timeout=60) in (0, 130), (deployment.data_dir / "serve.log").read_text()
        log.close()


def _accepting(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False
