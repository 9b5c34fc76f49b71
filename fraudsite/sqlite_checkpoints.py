"""SQLite's WAL checkpoints, taken off the request path of the web workers.

When a commit takes the write-ahead log past 1,000 pages, SQLite copies the log into the
database file before that commit returns (its automatic checkpoint), and meanwhile the other
worker's scoring writes queue behind it: about one request in a hundred waited for one, and
that set the p99 (docs/BENCHMARKS.md). In each web worker a thread copies the log into the
database every SQLITE_CHECKPOINT_SECONDS instead. Its checkpoints are PASSIVE: they never
wait for or block a reader or a writer, so the automatic checkpoint, which still runs, finds
almost nothing left to copy.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)


def database_file() -> str | None:
    """The default database's file if it is SQLite on disk, else None."""
    connection = connections["default"]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    return str(connection.settings_dict["NAME"])


def start(*, path: str | None = None, every: float | None = None) -> threading.Event | None:
    """Start the checkpointing thread; returns the event that stops it, or None when there is
    nothing to do (not SQLite, or SQLITE_CHECKPOINT_SECONDS is 0)."""
    path = path or database_file()
    every = settings.SQLITE_CHECKPOINT_SECONDS if every is None else every
    if path is None or every <= 0:
        return None
    stop = threading.Event()
    threading.Thread(target=_checkpoints, args=(path, every, stop), name="sqlite-checkpoints", daemon=True).start()
    return stop


def _checkpoints(path: str, every: float, stop: threading.Event) -> None:
    database = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    try:
        while not stop.wait(every):
            try:
                database.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                # Another checkpoint running, say; the next one catches up. Writers' own
                # automatic checkpoints still bound the log meanwhile.
                log.debug("background checkpoint skipped: %s", exc)
    finally:
        database.close()
