"""DATA_DIR holds the demo's database (sessions, password hashes) and its generated secrets: only
its owner may read it, however it came to exist."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Variables that would keep the database or the secrets out of DATA_DIR.
NOT_PASSED = ("DATABASE_URL", "SECRET_KEY", "ARTIFACT_SIGNING_KEY", "PRODUCTION", "DEBUG")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def run(data_dir: Path, *args: str, **env: str) -> str:
    inherited = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**inherited, "DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "fraudsite.settings", **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# Migrates a new DATA_DIR, then, with the connection still open (so its write-ahead log and
# shared-memory files exist), prints the modes of everything the service made there.
MIGRATE_AND_LIST = """
import os, stat, django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE probe (x)")
    cursor.execute("INSERT INTO probe VALUES (1)")
for name in ["", "db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "secret_key", "artifact_signing_key"]:
    print(name or ".", oct(stat.S_IMODE(os.stat(settings.DATA_DIR / name).st_mode)))
"""


def test_a_new_data_dir_and_its_database_are_its_owners_only(tmp_path):
    data_dir = tmp_path / "data"
    listed = dict(line.split() for line in run(data_dir, "-c", MIGRATE_AND_LIST).splitlines())
    assert listed == {
        ".": "0o700",
        "db.sqlite3": "0o600",
        "db.sqlite3-wal": "0o600",
        "db.sqlite3-shm": "0o600",
        "secret_key": "0o600",
        "artifact_signing_key": "0o600",
    }
    assert mode(data_dir) == 0o700 and mode(data_dir / "db.sqlite3") == 0o600


def test_an_existing_data_dir_left_open_is_closed_on_start(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"):
        (data_dir / name).touch()
        (data_dir / name).chmod(0o644)
    (data_dir / "secret_key").write_text("an-older-key-" + "x" * 40)
    (data_dir / "secret_key").chmod(0o644)
    run(data_dir, "manage.py", "check")
    assert mode(data_dir) == 0o700
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "secret_key"):
        assert mode(data_dir / name) == 0o600, name
    assert (data_dir / "secret_key").read_text() == "an-older-key-" + "x" * 40  # closed, not replaced


# --- SQLite named by DATABASE_URL


DESCRIBE_DATABASE = """
import json, django
django.setup()
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    journal_mode = cursor.fetchone()[0]
    cursor.execute("PRAGMA busy_timeout")
    busy_timeout = cursor.fetchone()[0]
database = settings.DATABASES["default"]
print(json.dumps({
    "name": str(database["NAME"]),
    "options": database["OPTIONS"],
    "conn_max_age": database["CONN_MAX_AGE"],
    "journal_mode": journal_mode,
    "busy_timeout": busy_timeout,
}))
"""


def test_sqlite_named_by_database_url_gets_the_defaults_settings(tmp_path):
    default = json.loads(run(tmp_path / "default", "-c", DESCRIBE_DATABASE))
    (tmp_path / "elsewhere").mkdir()
    path = tmp_path / "elsewhere" / "db.sqlite3"
    named = json.loads(run(tmp_path / "named", "-c", DESCRIBE_DATABASE, DATABASE_URL=f"sqlite:///{path}"))
    assert named["name"] == str(path)
    assert named["options"] == default["options"]
    assert named["options"]["transaction_mode"] == "IMMEDIATE"
    assert named["conn_max_age"] is default["conn_max_age"] is None
    assert named["journal_mode"] == default["journal_mode"] == "wal"
    assert named["busy_timeout"] == default["busy_timeout"] == 20_000
    assert mode(path) == 0o600
