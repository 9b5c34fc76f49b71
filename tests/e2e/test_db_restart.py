"""PostgreSQL stopped and started under the API's load, for real: a server of the test's own
(initdb, its own port), gunicorn with two workers, clients posting throughout. See
drills/db_restart.py, which this runs briefly; docs/RELIABILITY.md has its figures."""

from __future__ import annotations

import glob
import os
import pwd

import pytest

from drills import db_restart

pytestmark = pytest.mark.slow


def _can_run_postgres() -> bool:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return False
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam("postgres")  # root runs the server as this user
    except KeyError:
        return False
    return True


@pytest.mark.skipif(not _can_run_postgres(), reason="needs PostgreSQL's server binaries (initdb, pg_ctl)")
def test_a_database_restart_answers_503_not_500_loses_no_acknowledged_prediction_and_recovers():
    figures = db_restart.run(seconds=9, outage_at=3, outage=3, clients=3)
    print(figures)
    statuses = figures["statuses"]
    assert set(statuses) <= {200, 503}, figures
    assert statuses.get(503, 0) > 0, f"the outage was not seen: {figures}"
    assert figures["503_codes"] == {"database_unavailable": statuses[503]}, figures
    assert figures["acknowledged"] > 0 and figures["acknowledged_not_stored"] == 0, figures
    # Served again by the same processes, within a few seconds of the database.
    assert figures["recovery_seconds"] is not None and figures["recovery_seconds"] < 5, figures
