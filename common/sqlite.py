"""SQLite under the web workers: writers take turns without sleeping, and WAL checkpoints
happen off the request path. Nothing here does anything on another database.

Writers. SQLite takes one writer at a time, and a writer that finds the database locked sleeps
in SQLite's busy handler (1 ms, then 2, then 5...) however soon the lock is freed: with two web
workers the cores stood idle 17 to 19 % of the time (docs/BENCHMARKS.md). write_queue() makes
writers of every process first queue on an flock beside the database, which the kernel hands to
the next waiter as soon as it is released. The scoring path uses it, through write_transaction();
other writers (reviews, activations, the task cluster) are rare and keep relying on the busy
timeout.

write_transaction() is the scoring path's transaction, run on the driver's own connection.
Django's transaction.atomic() and cursor wrappers, with the read of the active version dropped
at the same time, were 0.59 M of the 1.69 M instructions that a scoring request cost beyond the
constant endpoint (docs/BENCHMARKS.md, "Scoring over HTTP").

Checkpoints. When a commit takes the write-ahead log past 1,000 pages, SQLite copies the log
into the database file before that commit returns (its automatic checkpoint), and meanwhile
the other worker's scoring writes queue behind it; the p99 showed it (docs/BENCHMARKS.md). In
each web worker a thread copies the log into the database every SQLITE_CHECKPOINT_SECONDS
instead. Its checkpoints are PASSIVE: they never wait for or block a reader or a writer, so the
automatic checkpoint, which still runs, finds almost nothing left to copy.
"""

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
# An flock belongs to the open file, which all threads of a process share: threads (gunicorn's
# gthread workers) queue on this first.
_thread_lock = threading.Lock()


def _lock_fd(path: str) -> int:
    global _lock_file
    if _lock_file is None or _lock_file[0] != os.getpid():
        _lock_file = (os.getpid(), os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600))
    return _lock_file[1]


@contextlib.contextmanager
def write_queue() -> Iterator[None]:
    """Wait for this machine's turn to write, and hold it; enter before the transaction begins.
    Nothing to wait for on another database, in memory, or inside a transaction already begun."""
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
    """A transaction on the default SQLite database, in its turn (write_queue), on the sqlite3
    driver's own cursor: SQL with ? placeholders, not Django's %s. Committed when the block ends,
    rolled back if it raises; driver errors come out as Django's (OperationalError...). Inside a
    transaction already begun (transaction.atomic()), a savepoint."""
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
    """Roll back write_transaction's block. If that fails too, the original error is the one that
    goes on: as transaction.atomic() does, a savepoint that cannot be undone leaves the enclosing
    transaction marked for rollback, and a transaction that cannot be rolled back drops the
    connection (the next use opens a new one)."""
    try:
        if driver.in_transaction:  # a failed COMMIT may have rolled back already
            for statement in undo:
                driver.execute(statement)
        elif db.in_atomic_block:
            # SQLite rolled back the enclosing transaction itself (a full disk, an I/O error):
            # the rest of the atomic block must not go on as if it were still open.
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
