"""Django's SQLite backend, with writers handed the database in turn instead of polling for it.

Two gunicorn workers writing to one SQLite file serialise on its write lock. A writer that finds
the lock taken waits in SQLite's busy handler, which sleeps 1, 2, 5, 10... ms between tries:
far longer than the half millisecond a scoring transaction holds the lock, so at concurrency 8
the workers spent much of their time asleep with the lock free (docs/BENCHMARKS.md).

Here each transaction that transaction.atomic() opens first takes an exclusive flock on a file
beside the database (blocking, so the kernel wakes the next writer the moment the lock is
released), then BEGIN IMMEDIATE; the flock is released at COMMIT or ROLLBACK. It is only ever
taken before SQLite's lock, never while holding it, so writers that do not take it (a statement
outside atomic()) still meet SQLite's busy timeout as before and cannot deadlock with it. A
process that dies releases its flock with its file descriptors. An in-memory database (tests)
takes no lock.

Checkpoints (copying the write-ahead log back into the database, with two fsyncs: tens of
milliseconds here) are moved out of the lock too. SQLite runs them inside the COMMIT that
fills the log past wal_autocheckpoint pages, which with the flock held would stall every
writer; instead each connection runs a passive checkpoint itself every CHECKPOINT_EVERY
commits, after releasing the flock, so the other workers go on writing meanwhile. SQLite's own
automatic checkpoint stays as a backstop at a larger size, for writes made outside atomic().
"""

from __future__ import annotations

import fcntl
import os

from django.db.backends.sqlite3 import base

# A scoring transaction adds about 7 pages to the log: 500 commits are about 14 MB of log.
CHECKPOINT_EVERY = 500
AUTOCHECKPOINT_PAGES = 10_000


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._writer_lock: int | None = None  # the lock file's descriptor while held
        self._commits = 0

    def get_new_connection(self, conn_params):
        conn = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        return conn

    def _lock_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        return None if self.is_in_memory_db() else f"{name}-writer.lock"

    def _acquire_writer_lock(self) -> None:
        path = self._lock_path()
        if path is None or self._writer_lock is not None:
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._writer_lock = fd

    def _release_writer_lock(self) -> None:
        fd, self._writer_lock = self._writer_lock, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases its flock

    def _start_transaction_under_autocommit(self) -> None:
        self._acquire_writer_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer_lock()
            raise

    def _commit(self):
        held = self._writer_lock is not None
        try:
            super()._commit()
        finally:
            self._release_writer_lock()
        if held:
            self._commits += 1
            if self._commits % CHECKPOINT_EVERY == 0:
                with self.wrap_database_errors:
                    self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer_lock()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_writer_lock()
