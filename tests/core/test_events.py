"""The activity-event spine: recording events and reading them back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from core import events
from core.events import ActivityEvent, events_for, last_activity, record_event
from core.extensions import db
from core.models import Participant
from tests.factories import make_participant, make_study

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@contextlib.contextmanager
def count_queries() -> Iterator[list[str]]:
    """Collect the SQL statements sent to the database (transaction control left out)."""
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def test_record_event_refuses_an_unknown_kind(app):
    """It refuses a kind nobody registered, and stores nothing."""
    with app.app_context():
        participant = make_participant()
        with pytest.raises(ValueError, match="unknown activity event kind 'teleported'"):
            record_event(participant, "teleported")
        db.session.commit()
        assert db.session.scalar(select(func.count(ActivityEvent.id))) == 0


def test_registered_kind_is_accepted(app, monkeypatch):
    """It accepts a kind once a domain package has registered it."""
    monkeypatch.setitem(events.KINDS, "test_kind", "placeholder")  # undone after the test
    with app.app_context():
        participant = make_participant()
        events.register_kind("test_kind", "Did a test thing")
        assert events.KINDS["test_kind"] == "Did a test thing"
        record_event(participant, "test_kind")
        db.session.commit()
        assert [e.kind for e in events_for(participant.id)] == ["test_kind"]


def test_record_event_stores_kind_time_and_detail(app):
    """It stores the participant, kind, time and structured detail of an event."""
    with app.app_context():
        participant_id = make_participant().id
        record_event(db.session.get(Participant, participant_id), "consent_given", at=BASE,
                     version="1.0", sms=False)
        db.session.commit()
        db.session.expunge_all()
        [stored] = db.session.scalars(select(ActivityEvent)).all()
        assert (stored.participant_id, stored.kind, stored.at) == (participant_id,
                                                                   "consent_given", BASE)
        assert stored.detail == {"version": "1.0", "sms": False}


def test_record_event_defaults_to_now(app):
    """It stamps an event with the platform clock when no time is given."""
    from core import clock

    clock.set_time(BASE)
    with app.app_context():
        participant = make_participant()
        assert record_event(participant, "login").at == BASE


def test_events_for_is_newest_first_with_since_and_limit(app):
    """It returns one participant's events newest first, from ``since`` on, at most ``limit``."""
    with app.app_context():
        participant = make_participant()
        other = make_participant(code="T-0002", name="Tea Drinker")
        for day in range(6):
            record_event(participant, "login", at=BASE + timedelta(days=day), day=day)
        record_event(other, "login", at=BASE + timedelta(days=10))
        db.session.commit()

        assert [e.detail["day"] for e in events_for(participant.id)] == [5, 4, 3, 2, 1, 0]
        since = BASE + timedelta(days=3)
        assert [e.detail["day"] for e in events_for(participant.id, since=since)] == [5, 4, 3]
        assert [e.detail["day"] for e in events_for(participant.id, limit=2)] == [5, 4]
        assert [e.detail["day"] for e in events_for(participant.id, since=since, limit=1)] == [5]
        assert events_for(participant.id, since=BASE + timedelta(days=30)) == []


def test_last_activity_gives_each_participants_newest_event_in_one_query(app):
    """It returns the newest event time per participant with a single query, and leaves out
    people who have done nothing yet."""
    with app.app_context():
        study = make_study()
        people = [make_participant(study, f"T-{n:04d}", name=None) for n in range(1, 5)]
        for offset, person in enumerate(people[:3]):
            for hours in (1, 30, 5):
                record_event(person, "login", at=BASE + timedelta(days=offset, hours=hours))
        db.session.commit()
        ids = [p.id for p in people]

        with count_queries() as statements:
            newest = last_activity(ids)
        assert len(statements) == 1, statements
        assert newest == {ids[n]: BASE + timedelta(days=n, hours=30) for n in range(3)}
        assert last_activity(ids[3:]) == {}


def test_last_activity_of_nobody_asks_nothing(app):
    """It answers an empty list without touching the database."""
    with app.app_context(), count_queries() as statements:
        assert last_activity([]) == {}
    assert statements == []
