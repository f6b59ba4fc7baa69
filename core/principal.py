"""Who is asking: the session row, its user and the facts every page needs, in one query.

Every signed-in page needs the same things before its own work: the session row (is it
live, was the second factor checked), the user and their participant record, whether they
agreed to the current consent version, their arm's features, the site settings for the
layout and the unread counts for the navigation. Asked one by one that is eight round
trips on every request; here it is one statement (``load``): the session row joined to the
user and participant, and each registered *fact* as a correlated scalar subquery beside
them.

A domain package registers a fact at import time with ``register(name, build)``, where
``build()`` returns a SQL expression over the outer ``User`` and ``Participant`` columns
(NULL participant columns for staff). Readers ask ``fact(name, user, compute)``: the loaded
value when ``user`` is the one this request loaded, else ``compute()`` (outside a request,
for another user, or once the request has written anything: the first flush or bulk
statement of a request drops the loaded facts, so a page that marks messages read and then
renders shows the new count).

Costs: ``load`` is one query; ``fact`` none when loaded, else whatever ``compute`` costs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, has_app_context
from sqlalchemy import Select, bindparam, event, select
from sqlalchemy.orm import Session, contains_eager

from core.extensions import db
from core.models import User, UserSession

_facts: dict[str, Callable[[], Any]] = {}
_UNSET = object()


def register(name: str, build: Callable[[], Any]) -> None:
    """Load ``build()`` (a scalar SQL expression over ``User``/``Participant``) with every
    session; registering a name again replaces its builder."""
    _facts[name] = build
    _query.cache_clear()


def load(session_id: str) -> UserSession | None:
    """The live-or-not session row ``session_id`` with its user and participant, the
    registered facts kept for this request (one query)."""
    names = tuple(_facts)
    found = db.session.execute(_query(db.engine.dialect.name, names),
                               {"session_id": session_id}).first()
    if found is None:
        return None
    row = found[0]
    g.kinship_session_row = row
    g.kinship_facts = (row.user_id, dict(zip(names, found[1:], strict=True)))
    return row


@functools.cache
def _query(dialect: str, names: tuple[str, ...]) -> Select:
    """Built once per dialect and set of facts (building the expression of every fact on
    each request cost more than running it)."""
    return (select(UserSession, *(_facts[name]().label(f"fact_{name}") for name in names))
            .join(UserSession.user).outerjoin(User.participant)
            .options(contains_eager(UserSession.user).contains_eager(User.participant))
            .where(UserSession.id == bindparam("session_id")))


def fact(name: str, user: Any, compute: Callable[[], Any]) -> Any:
    """The fact ``name`` about ``user``: as loaded with the session, or ``compute()``."""
    loaded = g.get("kinship_facts") if has_app_context() else None
    if loaded is not None and loaded[0] == getattr(user, "id", _UNSET):
        value = loaded[1].get(name, _UNSET)
        if value is not _UNSET:
            return value
    return compute()


def forget() -> None:
    """Drop the loaded facts (the request has changed something they may depend on)."""
    if has_app_context():
        g.pop("kinship_facts", None)


@event.listens_for(Session, "after_flush")
def _forget_after_flush(session: Session, flush_context: Any) -> None:
    forget()


@event.listens_for(Session, "do_orm_execute")
def _forget_after_bulk_write(state: Any) -> None:
    if not state.is_select:
        forget()

