"""Engine settings per backend.

SQLite (the embedded default): WAL journal, a busy timeout, foreign keys on,
and every transaction opened with ``BEGIN IMMEDIATE`` so read-then-write
transactions never fail with "database is locked" half-way (they wait for the
write lock at the start instead). PostgreSQL: psycopg 3, pre-ping, and psycopg's
prepared statements after ``DATABASE_PREPARE_THRESHOLD`` runs (``off`` for PgBouncer in
transaction mode before 1.22; see ``core.transactions``).

SQLite's own wait for that lock is unfair: its busy handler sleeps up to 100 ms
between tries, so under several writer processes a waiting one keeps losing the
lock to the one that just committed and can wait out the whole busy timeout.
So before ``BEGIN IMMEDIATE`` a connection takes an OS lock on
``<database>-writelock`` (``fcntl.flock``), tried every millisecond, and drops
it as soon as its transaction commits or rolls back (``LockingConnection``):
writers take turns within a millisecond of each other, and the busy timeout
still bounds the wait.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from core.config import is_sqlite

SQLITE_BUSY_TIMEOUT_MS = 15_000
LOCK_POLL_SECONDS = 0.001


class LockingConnection(sqlite3.Connection):
    """A sqlite3 connection that holds the database's write-lock file during a transaction."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.lock_fd: int | None = None
        self.lock_held = False
        path = os.fspath(database) if not isinstance(database, bytes) else database.decode()
        if path and path != ":memory:" and not path.startswith("file:"):
            self.lock_fd = os.open(f"{path}-writelock", os.O_RDWR | os.O_CREAT, 0o600)

    def acquire_write_lock(self, timeout: float) -> None:
        if self.lock_fd is None or self.lock_held:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(LOCK_POLL_SECONDS)
            else:
                self.lock_held = True
                return

    def release_write_lock(self) -> None:
        if self.lock_held and self.lock_fd is not None:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
        self.lock_held = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self.release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()
            if self.lock_fd is not None:
                os.close(self.lock_fd)
                self.lock_fd = None


def configure_engine(app: Flask) -> None:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    options: dict[str, Any] = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if is_sqlite(url):
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args.setdefault("factory", LockingConnection)
        options["connect_args"] = connect_args
    else:
        options.setdefault("pool_pre_ping", True)
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("prepare_threshold",
                                app.config.get("DATABASE_PREPARE_THRESHOLD", 5))
        options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin_immediate(connection: Any) -> None:
    if connection.dialect.name != "sqlite":
        return
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, LockingConnection):
        dbapi_connection.acquire_write_lock(SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if isinstance(dbapi_connection, LockingConnection):
            dbapi_connection.release_write_lock()
        raise
