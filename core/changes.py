"""What changed: the version numbers a cached page is checked against (``core.pagecache``).

Every write through the ORM session is sorted at flush into what it can change; the
numbers move just before COMMIT, in the writing transaction, so a reader sees the new rows
and the new numbers together:

- a row of a table no cached page shows (``IGNORED``: sessions, sign-in attempts, the
  audit log, the scheduler's heartbeat), and a user row changed only in what signing in
  keeps (``SIGN_IN_COLUMNS``), change nothing;
- a row that names a person (``participant_id``, ``user_id`` or ``author_id``), and a
  participant or user row itself, moves that participant's ``data_version`` (a person
  without a participant record, a member of staff, has none: their navigation counts are
  loaded with each request by ``core.principal`` and are part of every key);
- a forum row or a user row (names show in the forum) also moves the ``forum`` counter;
- a member of staff's user row, anything else (content, arms, settings, a
  questionnaire's answers), a transaction that names more than ``MANY_PEOPLE`` people,
  and any bulk statement on a table not ignored move the ``epoch``: every cached page
  is made again.

Writes that bypass the ORM session (a bare ``Connection``) are not seen; the page cache's
time limit bounds what they can leave stale. Costs: one ``UPDATE`` of ``participant`` and
one upsert of ``change_counter`` per transaction that changes anything, none otherwise;
their row locks are taken at COMMIT, participants by id then counters by name.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from flask import g, has_app_context
from sqlalchemy import BigInteger, String, TextClause, event, inspect, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.extensions import db
from core.models import Participant, User
from core.roles import Role

#: tables that no cached page reads
IGNORED = frozenset({"user_session", "login_attempt", "audit_head", "audit_entry",
                     "scheduler_heartbeat", "recovery_code", "allocation_seed"})
FORUM = frozenset({"forum_post", "forum_comment", "forum_reaction", "forum_edit",
                   "forum_report"})
#: above this many people in one transaction (a scheduler job's batch) the epoch moves instead:
#: one counter row locked until commit rather than every participant's
MANY_PEOPLE = 100
EPOCH, FORUM_COUNTER = "epoch", "forum"
#: what signing in writes to a user row; a change to these alone moves nothing
SIGN_IN_COLUMNS = frozenset({"last_login_at", "password_hash", "mfa_secret",
                             "mfa_enabled_at", "mfa_last_step"})
_PERSON_ATTRIBUTES = ("participant_id", "user_id", "author_id")


class ChangeCounter(db.Model):
    """A version number that moves when something every viewer may see changes."""

    __tablename__ = "change_counter"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


def counter_fact(name: str) -> Any:
    """The counter ``name`` as a SQL expression (0 before it first moves), for
    ``core.principal`` to load with the session."""
    value = select(ChangeCounter.value).where(ChangeCounter.name == name).scalar_subquery()
    return db.func.coalesce(value, 0)


def changed_in_request() -> bool:
    """Whether this request has written anything a cached page may show."""
    return has_app_context() and bool(g.get("kinship_changed"))


def _sign_in_only(user: User) -> bool:
    """Whether a user row changed only in what signing in keeps (no page shows it)."""
    changed = {attr.key for attr in inspect(user).attrs if attr.history.has_changes()}
    return bool(changed) and changed <= SIGN_IN_COLUMNS


class _Changes:
    def __init__(self) -> None:
        self.participants: set[int] = set()
        self.users: set[int] = set()
        self.counters: set[str] = set()

    def add(self, obj: Any) -> None:
        table = getattr(obj, "__tablename__", None)
        if table in IGNORED or (isinstance(obj, User) and _sign_in_only(obj)):
            return
        if table in FORUM or isinstance(obj, User):
            self.counters.add(FORUM_COUNTER)
        if isinstance(obj, Participant | User):
            self._add_person(obj)
            return
        named = [name for name in _PERSON_ATTRIBUTES if hasattr(obj, name)]
        if not named and table not in FORUM:
            self.counters.add(EPOCH)
        for name in named:
            value = getattr(obj, name)
            if value is not None:
                (self.participants if name == "participant_id" else self.users).add(value)

    def _add_person(self, obj: Participant | User) -> None:
        if isinstance(obj, User) and obj.role != Role.PARTICIPANT:
            self.counters.add(EPOCH)  # staff names show beside other people's rows
        elif obj.id is not None:
            (self.participants if isinstance(obj, Participant) else self.users).add(obj.id)

    def __bool__(self) -> bool:
        return bool(self.participants or self.users or self.counters)

    def write(self, session: Session) -> None:
        if len(self.participants) + len(self.users) > MANY_PEOPLE:
            self.counters.add(EPOCH)
            self.participants.clear()
            self.users.clear()
        if not (self.participants or self.users or self.counters):
            return
        connection = session.connection()
        if self.participants or self.users:
            table = Participant.__table__
            connection.execute(
                update(table)
                .where(or_(table.c.id.in_(sorted(self.participants)),
                           table.c.user_id.in_(sorted(self.users))))
                .values(data_version=table.c.data_version + 1))
        if self.counters:
            connection.execute(_bump_counters(connection.dialect.name, sorted(self.counters)))


def _bump_counters(dialect: str, names: list[str]) -> Any:
    table = ChangeCounter.__table__
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values([{"name": name, "value": 1} for name in names])
    return statement.on_conflict_do_update(index_elements=[table.c.name],
                                           set_={"value": table.c.value + 1})


_PENDING, _COMMITTING = "kinship_changes", "kinship_committing"


def _pending(session: Session) -> _Changes:
    found = session.info.get(_PENDING)
    if found is None:
        found = session.info[_PENDING] = _Changes()
    return found


def _noted(session: Session, changes: _Changes) -> None:
    """Mark the request, and write at once when the transaction is already committing
    (a flush after ``_before_commit``: commit's own final flush)."""
    if changes and has_app_context():
        g.kinship_changed = True
    if session.info.get(_COMMITTING):
        _write_pending(session)


def _write_pending(session: Session) -> None:
    changes = session.info.pop(_PENDING, None)
    if changes:
        changes.write(session)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context: Any) -> None:
    changes = _pending(session)
    dirty = (obj for obj in session.dirty
             if session.is_modified(obj, include_collections=False))
    for obj in chain(session.new, dirty, session.deleted):
        changes.add(obj)
    _noted(session, changes)


@event.listens_for(Session, "do_orm_execute")
def _after_bulk_write(state: Any) -> None:
    if state.is_select:
        return
    statement = state.statement
    if isinstance(statement, TextClause):
        words = statement.text.lstrip().split(None, 1)
        if words and words[0].upper() in {"SELECT", "SET"}:
            return
        table = None
    else:
        table = getattr(getattr(statement, "table", None), "name", None)
    if table in IGNORED:
        return
    changes = _pending(state.session)
    changes.counters.add(FORUM_COUNTER if table in FORUM else EPOCH)
    _noted(state.session, changes)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """The numbers move once, just before COMMIT, in one order (participants by id, then
    counters by name): their row locks are held for the shortest time and two
    transactions cannot take them in opposite orders."""
    if session.in_nested_transaction():
        return
    session.flush()
    session.info[_COMMITTING] = True
    _write_pending(session)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_COMMITTING, None)
