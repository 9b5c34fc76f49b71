"""The scoring path's SQLite transaction (common.sqlite.write_transaction): its writers queue
on a lock beside the database file, it commits or rolls back whole, and the driver's errors come
out as Django's."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

import pytest
from django.db import DEFAULT_DB_ALIAS, IntegrityError, OperationalError, connection, connections, transaction

from common import sqlite
from detection.models import Prediction, Transaction

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")


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

    with sqlite.write_transaction():
        assert connection.connection.in_transaction
        assert _held_elsewhere(lock)
    assert not _held_elsewhere(lock)

    with pytest.raises(RuntimeError), sqlite.write_transaction():
        raise RuntimeError("a failed write")
    assert not _held_elsewhere(lock)


@pytest.mark.django_db
def test_an_in_memory_database_takes_no_lock(monkeypatch):
    monkeypatch.setattr(sqlite, "_lock_file", None)
    with sqlite.write_transaction():
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
        with sqlite.write_transaction():
            entered.set()

    with sqlite.write_transaction():
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert not entered.wait(0.3)
    assert entered.wait(5)
    thread.join()


INSERT = (
    "INSERT INTO detection_transaction (external_id, client, time, amount, v, source, created_at) "
    "VALUES (?, '', ?, 1, '[]', 'api', '2026-01-01 00:00:00')"
)


def _insert(cursor, time: float, external_id: str | None = None) -> None:
    cursor.execute(INSERT, [external_id, time])


@pytest.mark.django_db(transaction=True)
def test_the_block_commits_whole_or_not_at_all():
    with sqlite.write_transaction() as cursor:
        _insert(cursor, 1)
        _insert(cursor, 2)
    assert not connection.connection.in_transaction
    with pytest.raises(RuntimeError), sqlite.write_transaction() as cursor:
        _insert(cursor, 3)
        raise RuntimeError("after the first row")
    assert not connection.connection.in_transaction
    assert sorted(Transaction.objects.values_list("time", flat=True)) == [1, 2]


@pytest.mark.django_db
def test_inside_a_transaction_it_is_a_savepoint():
    with transaction.atomic():
        with sqlite.write_transaction() as cursor:
            _insert(cursor, 1)
        with pytest.raises(RuntimeError), sqlite.write_transaction() as cursor:
            _insert(cursor, 2)
            raise RuntimeError("undo only this block")
        assert connection.connection.in_transaction  # the outer transaction goes on
        assert list(Transaction.objects.values_list("time", flat=True)) == [1]


@pytest.mark.django_db(transaction=True)
def test_driver_errors_come_out_as_djangos_and_roll_back():
    # OperationalError answers 503 (detection.errors); IntegrityError makes scoring look again
    # for a concurrent request's external id (detection.services).
    with pytest.raises(OperationalError), sqlite.write_transaction() as cursor:
        _insert(cursor, 1)
        cursor.execute("INSERT INTO no_such_table VALUES (1)")
    with pytest.raises(IntegrityError), sqlite.write_transaction() as cursor:
        _insert(cursor, 2, external_id="a")
        _insert(cursor, 3, external_id="a")
    assert not connection.connection.in_transaction
    assert Transaction.objects.count() == 0


@pytest.mark.parametrize(
    "statement",
    [
        "RELEASE scoring",  # the savepoint is gone: rolling back to it fails
        "ROLLBACK",  # the whole transaction is gone, as SQLite itself does on a full disk or an I/O error
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_block_that_cannot_be_undone_leaves_its_own_error_and_the_enclosing_transaction_undone(statement):
    with transaction.atomic():
        with pytest.raises(RuntimeError, match="the block's own"), sqlite.write_transaction() as cursor:
            _insert(cursor, 1)
            cursor.execute(statement)
            raise RuntimeError("the block's own error")
        assert connection.needs_rollback  # as transaction.atomic() marks it
    assert Transaction.objects.count() == 0


class _RollbackFails:
    """The driver's connection, except that ROLLBACK fails (a fault SQLite gives no way to cause)."""

    def __init__(self, driver: sqlite3.Connection) -> None:
        self.driver = driver

    def __getattr__(self, name):
        return getattr(self.driver, name)

    def execute(self, sql, *args):
        if sql == "ROLLBACK":
            raise sqlite3.OperationalError("disk I/O error")
        return self.driver.execute(sql, *args)


@pytest.mark.django_db(transaction=True)
def test_a_rollback_that_fails_leaves_the_blocks_error_and_drops_the_connection(monkeypatch, caplog):
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    driver = db.connection
    monkeypatch.setattr(db, "connection", _RollbackFails(driver))
    closed = []  # the suite's database is in memory, which Django never closes: record the call
    monkeypatch.setattr(type(db), "close", lambda self: closed.append(self.alias))
    try:
        with pytest.raises(RuntimeError, match="the block's own"), sqlite.write_transaction() as cursor:
            _insert(cursor, 1)
            raise RuntimeError("the block's own error")
        assert closed == [DEFAULT_DB_ALIAS]
        assert "could not undo the scoring transaction" in caplog.text
    finally:
        if driver.in_transaction:  # what closing the connection would do; the next tests need it
            driver.execute("ROLLBACK")


@pytest.mark.django_db
def test_inserts_split_where_the_bound_parameters_would_pass_the_limit(active_version, statements):
    # 7 values a prediction row and 3 for the version check: a limit of 14 leaves room for one
    # prediction row a statement (two rows and the check would be 17), so 5 rows take five
    # INSERTs, each checking the version.
    from tests.detection.test_model_changes import _store

    connection.ensure_connection()
    previous = connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 14)
    try:
        with statements() as sent:
            ids = _store(active_version.pk, active_version.sha256, active_version.threshold, 5)
    finally:
        connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, previous)
    assert len(ids) == 5 == Prediction.objects.filter(transaction_id__in=ids).count()
    assert sum(sql.startswith('INSERT INTO "detection_prediction"') for sql in sent) == 5
