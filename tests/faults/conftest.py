"""Fixtures for the fault tests: an app whose database the test takes away and gives back
(PostgreSQL through a TCP forwarder the test cuts; SQLite through a database file that
cannot be opened: a folder in its place, since the tests run as root and permissions
would not stop it), and a way to take it away half-way through a statement sequence."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from core import create_app
from core.extensions import db
from tests.conftest import _test_config
from tests.faults.proxy import CuttableProxy


@dataclass
class Outage:
    """An app whose database the test can take away (``cut``) and give back."""

    app: Flask
    cut: Callable[[], None]
    restore: Callable[[], None]
    postgres: bool


def _sqlite_outage(tmp_path: Path) -> tuple[str, Callable[[], None], Callable[[], None]]:
    path = tmp_path / "outage.sqlite3"
    away = tmp_path / "outage.sqlite3.away"

    def cut() -> None:
        path.rename(away)
        path.mkdir()  # "unable to open database file" for every new connection

    def restore() -> None:
        path.rmdir()
        away.rename(path)

    return f"sqlite:///{path}", cut, restore


@pytest.fixture
def outage(app: Flask, tmp_path: Path) -> Iterator[Outage]:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    proxy = None
    if url.get_backend_name() == "postgresql":
        proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
        proxy.start()
        other_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False)
        cut, restore = proxy.cut, proxy.start
    else:
        other_url, cut, restore = _sqlite_outage(tmp_path)
    other = create_app({**_test_config(other_url, tmp_path / "outage-instance"),
                        "TESTING": False, "PROPAGATE_EXCEPTIONS": False})
    with other.app_context():
        if proxy is None:
            db.create_all()
    state = Outage(other, cut, restore, proxy is not None)

    def cut_sqlite_too() -> None:
        if proxy is None:  # pooled SQLite connections keep the old file open: drop them
            with other.app_context():
                db.engine.dispose()
        cut()

    state.cut = cut_sqlite_too
    yield state
    with other.app_context():
        db.session.remove()
        db.engine.dispose()
    if proxy is not None:
        proxy.cut()


def interrupt_after(outage: Outage, table: str) -> Callable[..., None]:
    """An ``after_cursor_execute`` hook that takes the database away just after the first
    INSERT into ``table`` (on SQLite it fails the statement as a lost disk would: an open
    SQLite connection keeps working on a file that was moved)."""
    fired: list[str] = []
    prefix = f"INSERT INTO {table.upper()} "

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        if fired or not statement.lstrip().upper().startswith(prefix):
            return
        fired.append(statement)
        if outage.postgres:
            outage.cut()
        else:
            raise OperationalError(statement, parameters, sqlite3.OperationalError(
                "disk I/O error"))

    return after


# --- the Twilio stand-in and a day's prompts --------------------------------------------

from tests.core.sms.conftest import fake  # noqa: E402, F401 - the stand-in, as a fixture


def queue_prompts(count: int, *, send_after: datetime) -> list[tuple[str, str]]:
    """``count`` texting participants with one prompt each, queued (call in an app
    context; commits). Returns the (number, text) pairs the stand-in must receive."""
    from core.sms import queue
    from tests.core.sms.conftest import texting_participant

    expected = []
    for n in range(count):
        person = texting_participant(code=f"T-{n:04d}", phone=f"+4477009002{n:02d}",
                                     name=f"Quiet Person{n:02d}")
        body = f"How lonely did you feel today? Reply 0-10 ({person.study_code})"
        queue(participant=person, body=body, purpose="prompt", send_after=send_after,
              dedupe_key=f"fault:{person.id}:morning")
        expected.append((person.phone, body))
    db.session.commit()
    return expected
