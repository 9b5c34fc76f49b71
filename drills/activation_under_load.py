"""Activations and rollbacks while the API is under load: no failed request, and every stored
prediction names a version that was active while its request ran.

On the deployment of drills/db_restart.py with two trained versions, a separate process switches
the active version every few seconds while client threads post; each answer is then checked
against the audit trail (ModelEvent) and the stored predictions.

    .venv/bin/python drills/activation_under_load.py [--seconds 60] [--clients 8] [--every 3] [--promote]
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import MANAGE, TRANSACTION, client_threads, post_json  # noqa: E402
from drills.db_restart import deployment, stored_versions  # noqa: E402

# An activation's event is stamped just before its transaction commits, and a request scored
# with the previous version up to that commit is stored and answered with it. Allowed overlap at
# each switch:
SLACK_SECONDS = 0.25

# With promote, the other version is first put into shadow and scored beside the primary, then
# promoted: the shadow scoring's writes run against the requests' too.
ACTIVATOR = """
import time
from detection import shadow_scoring
from modelops.services import deployments
from modelops.models import ModelVersion
ids = sorted(ModelVersion.objects.values_list("pk", flat=True))
deadline = time.monotonic() + {seconds}
switches = 0
while time.monotonic() < deadline:
    active = ModelVersion.objects.primary().get().pk
    target = ids[0] if active == ids[1] else ids[1]
    if {promote}:
        deployments.deploy_shadow(version_id=target, actor="bench", reason="shadow under load")
        time.sleep({every} / 2)
        shadow_scoring.score_shadows(max_seconds={every})
        time.sleep({every} / 2)
    else:
        time.sleep({every})
    deployments.activate_version(version_id=target, actor="bench", reason="activation under load")
    switches += 1
print(switches)
"""


def run_beside_activator(
    env: dict, threads: list[threading.Thread], stop: threading.Event, *, seconds: float, every: float, promote: bool
) -> str:
    """Run the client threads while the activator switches versions; stop them when it is done.
    Returns the activator's output."""
    activator = start_activator(env, seconds=seconds, every=every, promote=promote)
    for thread in threads:
        thread.start()
    stdout, stderr = activator.communicate(timeout=seconds + 120)
    stop.set()
    for thread in threads:
        thread.join()
    if activator.returncode != 0:
        raise SystemExit(f"the activator failed:\n{stderr}")
    return stdout


def start_activator(env: dict, *, seconds: float, every: float, promote: bool) -> subprocess.Popen:
    """A process of its own that activates (or shadows and promotes) versions every ``every`` seconds."""
    code = ACTIVATOR.format(seconds=seconds, every=every, promote=promote)
    return subprocess.Popen(
        [*MANAGE, "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env={**env, "SHADOW_SETTLE_SECONDS": "0.5"},  # the shadow is scored within the cycle
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--every", type=float, default=3)
    parser.add_argument("--promote", action="store_true", help="shadow each version first, then promote it")
    args = parser.parse_args()

    with deployment(versions=2) as (postgres, port, env):
        stop = threading.Event()

        def request(number: int, sequence: int) -> tuple[float, float, int, str]:
            sent = time.time()
            status, body = post_json(port, {**TRANSACTION, "external_id": f"c{number}-{sequence}"}, timeout=10)
            return sent, time.time(), status, body  # (sent, answered, status, body), epoch s

        threads, answers = client_threads(args.clients, request, stop)
        stdout = run_beside_activator(env, threads, stop, seconds=args.seconds, every=args.every, promote=args.promote)

        with postgres.connect() as connection:
            events = connection.execute(
                "SELECT e.created_at, v.version FROM modelops_modelevent e "
                "JOIN modelops_modelversion v ON v.id = e.to_version_id "
                "WHERE e.kind IN ('activate', 'rollback') ORDER BY e.created_at, e.id"
            ).fetchall()
            shadowed = connection.execute(
                "SELECT count(*), count(DISTINCT (transaction_id, model_version_id)) FROM detection_prediction "
                "WHERE role = 'shadow'"
            ).fetchone()
        stored = stored_versions(postgres)

    statuses = collections.Counter(status for _, _, status, _ in answers)
    switch_times = [created.timestamp() for created, _ in events]
    switch_versions = [version for _, version in events]

    def active_between(start: float, end: float) -> set[int]:
        """Versions active at some moment of [start, end], each switch widened by the slack."""
        first = max(0, bisect.bisect_right(switch_times, start - SLACK_SECONDS) - 1)
        last = bisect.bisect_right(switch_times, end + SLACK_SECONDS)
        return set(switch_versions[first:last]) if last > first else set(switch_versions[-1:])

    wrong_version = not_stored = stored_differently = 0
    served = collections.Counter()
    for sent, answered, status, body in answers:
        if status != 200:
            continue
        answer = json.loads(body)
        served[answer["model_version"]] += 1
        if answer["model_version"] not in active_between(sent, answered):
            wrong_version += 1
        if answer["transaction_id"] not in stored:
            not_stored += 1
        elif stored[answer["transaction_id"]] != answer["model_version"]:
            stored_differently += 1
    failed = sum(count for status, count in statuses.items() if status != 200)
    print(
        f"{len(answers)} requests from {args.clients} clients in {args.seconds:g} s "
        f"({len(answers) / args.seconds:.0f}/s); {stdout.strip()} switches (one every {args.every:g} s)"
    )
    print(f"answers by status: {dict(sorted(statuses.items()))}; failed: {failed}")
    print(f"served by version: {dict(sorted(served.items()))}")
    print(
        f"answers naming a version not active during their request (±{SLACK_SECONDS} s at a switch): "
        f"{wrong_version}; acknowledged but not stored: {not_stored}; "
        f"stored with another version than answered: {stored_differently}"
    )
    print(f"shadow predictions: {shadowed[0]}, of distinct (transaction, version): {shadowed[1]}")


if __name__ == "__main__":
    main()
