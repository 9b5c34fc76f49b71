"""Scoring writers on a SQLite file queue on a lock beside the database (fraudsite.sqlite)."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest
from django.db import connection

from detection import storage
from fraudsite import sqlite

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the queue is for SQLite files only")


def _held_elsewhere(path) -> bool:
    """Whether another open file of ``path`` finds its flock taken."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@pytest.mark.django_db(transaction=True)
def test_a_scoring_write_holds_the_lock_until_it_commits(monkeypatch, tmp_path):
    # The suite's SQLite database lives in memory, where there is nothing to queue for; the
    # lock's path is all that the file name is used for.
    monkeypatch.setattr(connection, "is_in_memory_db", lambda: False)
    monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "db.sqlite3"))
    monkeypatch.setattr(sqlite, "_lock_file", None)
    lock = tmp_path / "db.sqlite3.write-lock"

    with storage.write_transaction():
        assert connection.in_atomic_block
        assert _held_elsewhere(lock)
    assert not _held_elsewhere(lock)

    with pytest.raises(RuntimeError), storage.write_transaction():
        raise RuntimeError("a failed write")
    assert not _held_elsewhere(lock)


@pytest.mark.django_db
def test_an_in_memory_database_takes_no_lock(monkeypatch):
    monkeypatch.setattr(sqlite, "_lock_file", None)
    with storage.write_transaction():
        pass
    assert sqlite._lock_file is None


@pytest.mark.django_db(transaction=True)
def test_threads_of_one_process_queue_too(monkeypatch, tmp_path):
    # All threads share the process's open lock file, so the flock alone would let a second
    # thread in at once.
    monkeypatch.setattr(connection, "is_in_memory_db", lambda: False)
    monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "db.sqlite3"))
    monkeypatch.setattr(sqlite, "_lock_file", None)
    entered = threading.Event()

    def other_thread():
        with storage.write_transaction():
            entered.set()

    with storage.write_transaction():
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert not entered.wait(0.3)
    assert entered.wait(5)
    thread.join()
