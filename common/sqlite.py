"""SQLite under the web workers: scoring writers queue on an flock instead of sleeping in SQLite's
busy handler (rarer writers keep the busy timeout), and a thread in each worker checkpoints the WAL
so that commits rarely have to. Nothing here acts on another database."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

log = logging.getLogger(__name__)


def database_file(connection=None) -> str | None:
    """The default database's (or ``connection``'s) file if it is SQLite on disk, else None."""
    connection = connection or connections["default"]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    return str(connection.settings_dict["NAME"])


_lock_file: tuple[int, int] | None = None  # (pid, fd): a forked worker opens its own
# An flock belongs to the open file, shared by all of a process's threads: they queue on this first.
_thread_lock = threading.Lock()


def _lock_fd(path: str) -> int:
    global _lock_file
    if _lock_file is None or _lock_file[0] != os.getpid():
        _lock_file = (os.getpid(), os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600))
    return _lock_file[1]


@contextlib.contextmanager
def write_queue() -> Iterator[None]:
    """Wait for this machine's turn to write, and hold it; enter before the transaction begins.
    A no-op on another database, in memory, or inside a transaction already begun."""
    connection = connections["default"]  # looked up once: this runs on every scoring request
    path = None if connection.in_atomic_block else database_file(connection)
    if path is None:
        yield
        return
    with _thread_lock:
        fd = _lock_fd(path)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def write_transaction() -> Iterator[sqlite3.Cursor]:
    """The scoring path's transaction in its turn, on the driver's own cursor (? placeholders, not
    %s); errors raised as Django's, and a savepoint inside transaction.atomic()."""
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    if db.in_atomic_block:
        db.validate_no_broken_transaction()
        begin, end, undo = ("SAVEPOINT scoring",), ("RELEASE scoring",), ("ROLLBACK TO scoring", "RELEASE scoring")
    else:
        # IMMEDIATE: the write lock now, as settings.py asks of every transaction.
        begin, end, undo = ("BEGIN IMMEDIATE",), ("COMMIT",), ("ROLLBACK",)
    driver = db.connection
    with write_queue(), db.wrap_database_errors:
        for statement in begin:
            driver.execute(statement)
        try:
            yield driver.cursor()
            for statement in end:
                driver.execute(statement)
        except BaseException:
            _undo(db, driver, undo)
            raise


def _undo(db, driver: sqlite3.Connection, undo: tuple[str, ...]) -> None:
    """Roll back write_transaction's block, keeping the original error; if that fails, mark the
    enclosing atomic block for rollback or, outside one, drop the connection, as atomic() does."""
    try:
        if driver.in_transaction:  # a failed COMMIT may have rolled back already
            for statement in undo:
                driver.execute(statement)
        elif db.in_atomic_block:
            # SQLite rolled back the enclosing transaction itself (full disk, I/O error).
            db.needs_rollback = True
    except Exception:
        log.warning("could not undo the scoring transaction", exc_info=True)
        if db.in_atomic_block:
            db.needs_rollback = True
        else:
            try:
                db.close()
            except Exception:
                log.warning("could not close the connection either", exc_info=True)


def start(*, path: str | None = None, every: float | None = None) -> threading.Event | None:
    """Start the PASSIVE checkpoints, which block no one; the event that stops them, or None if not in use."""
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
                # Another checkpoint running, say: the next one catches up.
                log.debug("background checkpoint skipped: %s", exc)
    finally:
        database.close()
