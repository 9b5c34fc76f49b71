from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest
from django.db.utils import ConnectionHandler

from fraudsite.sqlite import base


def connect(name):
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "fraudsite.sqlite",
                "NAME": str(name),
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL", "transaction_mode": "IMMEDIATE"},
            }
        }
    )
    connection = handler["default"]
    connection.inc_thread_sharing()
    return connection


def lock_is_free(path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.fixture(autouse=True)
def own_databases(django_db_blocker):
    # These connections are to throw-away files of the test's own, not to the test database.
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(tmp_path):
    connection = connect(tmp_path / "db.sqlite3")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
    yield connection
    connection.close()


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_a_transaction_holds_the_writer_lock_until_it_ends(database, tmp_path, end):
    lock = tmp_path / "db.sqlite3-writer.lock"
    database._start_transaction_under_autocommit()
    assert not lock_is_free(lock)
    getattr(database, end)()
    assert lock_is_free(lock)


def test_a_second_writer_waits_for_the_first_and_goes_on_when_it_commits(database, tmp_path):
    other = connect(tmp_path / "db.sqlite3")
    other.ensure_connection()
    database._start_transaction_under_autocommit()
    order = []

    def second_writer():
        other._start_transaction_under_autocommit()
        order.append("second began")
        other.cursor().execute("INSERT INTO t (n) VALUES (2)")
        other.commit()

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.2)
    assert order == []  # waiting on the lock, not failing with "database is locked"
    database.cursor().execute("INSERT INTO t (n) VALUES (1)")
    order.append("first committed")
    database.commit()
    thread.join(timeout=10)
    assert order == ["first committed", "second began"]
    assert [row[0] for row in database.cursor().execute("SELECT n FROM t ORDER BY id").fetchall()] == [1, 2]
    other.close()


def test_every_few_commits_the_log_is_checkpointed_outside_the_lock(database, monkeypatch):
    monkeypatch.setattr(base, "CHECKPOINT_EVERY", 3)
    database.ensure_connection()
    statements = []
    database.connection.set_trace_callback(statements.append)
    for n in range(6):
        database._start_transaction_under_autocommit()
        database.cursor().execute("INSERT INTO t (n) VALUES (%s)", [n])
        database.commit()
    assert statements.count("PRAGMA wal_checkpoint(PASSIVE)") == 2
    assert statements.index("PRAGMA wal_checkpoint(PASSIVE)") > statements.index("COMMIT")


def test_an_in_memory_database_takes_no_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    connection = connect(":memory:")
    connection.ensure_connection()
    connection._start_transaction_under_autocommit()
    connection.commit()
    assert os.listdir(tmp_path) == []
