"""Counting the SQL statements the app sends while a test does something (transaction
control left out), for the tests that pin a page's or a service's query count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from core.extensions import db

CONTROL = ("BEGIN", "SAVEPOINT", "RELEASE", "COMMIT", "ROLLBACK")


@contextmanager
def counting(app: Any) -> Iterator[list[str]]:
    """The statements sent on ``app``'s engine inside the block."""
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith(CONTROL):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
