"""SQLite writers take turns on ``<database>-writelock`` (``core.database``): the lock is
held for exactly one transaction, another writer waits for it instead of polling SQLite's
busy handler, and the wait is still bounded."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.database import LockingConnection


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'w.sqlite3'}",
                           connect_args={"factory": LockingConnection, "timeout": 15})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def lock_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_the_lock_is_held_for_one_transaction_only(engine, tmp_path):
    lock = tmp_path / "w.sqlite3-writelock"
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert not lock_is_free(lock)
        conn.commit()
        assert lock_is_free(lock)
        conn.execute(text("INSERT INTO t VALUES (2)"))
        conn.rollback()
        assert lock_is_free(lock)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t")).scalars().all() == [1]


def test_a_second_writer_waits_for_the_first_and_goes_on_at_once(engine):
    order: list[str] = []
    first = engine.connect()
    first.execute(text("INSERT INTO t VALUES (1)"))

    def second() -> None:
        with engine.begin() as conn:
            order.append("second began")
            conn.execute(text("INSERT INTO t VALUES (2)"))

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)
    order.append("first commits")
    first.commit()
    first.close()
    started = time.monotonic()
    thread.join(5)
    assert order == ["first commits", "second began"]
    assert time.monotonic() - started < 1


def test_the_wait_is_bounded_by_the_busy_timeout(tmp_path):
    path = tmp_path / "b.sqlite3"
    holder = LockingConnection(str(path))
    holder.acquire_write_lock(1)
    waiter = LockingConnection(str(path))
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        waiter.acquire_write_lock(0.3)
    assert 0.3 <= time.monotonic() - started < 2
    holder.close()
    waiter.acquire_write_lock(0.3)  # free again once the holder is gone
    waiter.close()
