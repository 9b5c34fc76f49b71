"""The web workers' background WAL checkpoints (common.sqlite)."""

from __future__ import annotations

import sqlite3
import time

from common import sqlite


def test_the_thread_copies_the_log_into_the_database_file(tmp_path):
    path = tmp_path / "db.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the thread checkpoints
    writer.execute("CREATE TABLE t (x BLOB)")
    for _ in range(50):
        writer.execute("INSERT INTO t VALUES (randomblob(4000))")
    before = path.stat().st_size
    assert before < 50 * 4000  # the rows are in the log, not yet in the file

    stop = sqlite.start(path=str(path), every=0.01)
    try:
        deadline = time.monotonic() + 10
        while path.stat().st_size < 50 * 4000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.stat().st_size >= 50 * 4000
        # Writers are not blocked by it.
        writer.execute("INSERT INTO t VALUES (randomblob(4000))")
    finally:
        stop.set()
        writer.close()


def test_nothing_starts_without_a_database_file_or_when_switched_off(db, settings, tmp_path):
    # The suite's database is SQLite in memory or PostgreSQL: no file to checkpoint.
    assert sqlite.database_file() is None
    assert sqlite.start() is None
    settings.SQLITE_CHECKPOINT_SECONDS = 0
    assert sqlite.start(path=str(tmp_path / "db.sqlite3")) is None
