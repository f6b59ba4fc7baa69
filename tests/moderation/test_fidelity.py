"""Fidelity figures on a data set built by hand: check-ins due against done (on time,
late, overdue), and median hours to the first response on flags and on risk alerts, per
moderator and overall, in a fixed number of queries."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select

from core import clock
from core.extensions import db
from core.models import User
from core.roles import Role
from moderation.care_models import CheckInTask
from moderation.fidelity import fidelity
from moderation.models import QueueItem, RiskAlert
from outcomes.models import Study
from tests.factories import make_participant, make_staff, make_study
from tests.moderation.checkin_data import CLINICIAN, PEER, RESEARCHER, signed_in, text_of
from tests.pages import table_rows

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
START, END = date(2026, 3, 1), date(2026, 3, 10)


def at(day: int, hour: float = 10) -> datetime:
    return datetime(2026, 3, day, tzinfo=UTC) + timedelta(hours=hour)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_time(NOW)
    yield
    clock.set_time(None)


def add_task(person, moderator, due: datetime, status: str = "open",
             completed: datetime | None = None) -> None:
    db.session.add(CheckInTask(participant_id=person.id,
                               moderator_id=getattr(moderator, "id", None), reason="manual",
                               status=status, due_at=due, created_at=due,
                               completed_at=completed))


def add_flag(created: datetime, hours: float | None, by=None) -> None:
    db.session.add(QueueItem(channel="forum_post", content_type="forum_post", content_id=1,
                             action="flag", created_at=created,
                             status="open" if hours is None else "approved",
                             handled_at=None if hours is None else created + timedelta(hours=hours),
                             handled_by_id=getattr(by, "id", None)))


def add_alert(opened: datetime, hours: float | None, by=None) -> None:
    db.session.add(RiskAlert(channel="forum_post", content_type="forum_post", content_id=1,
                             opened_at=opened,
                             acknowledged_at=None if hours is None
                             else opened + timedelta(hours=hours),
                             acknowledged_by_id=getattr(by, "id", None)))


@pytest.fixture
def data(app):
    """Kit: on time, late, overdue, not yet due, cancelled (and one before the range);
    Lee: one on time; one unassigned overdue. Flags: Kit 1 h and 4 h, Lee 2 h, Dr Patel
    10 h, one open, one before the range. Alerts: Dr Patel 0.5 h and 1.5 h, Dr Ng 3 h, one
    not taken."""
    with app.app_context():
        study = make_study()
        kit = make_staff(Role.PEER_MODERATOR, PEER, name="Kit")
        lee = make_staff(Role.PEER_MODERATOR, "lee@example.org", name="Lee")
        patel = make_staff(Role.CLINICIAN, CLINICIAN, name="Dr Patel")
        ng = make_staff(Role.CLINICIAN, "ng@example.org", name="Dr Ng")
        make_staff(Role.RESEARCHER, RESEARCHER)
        person = make_participant(study, "T-0001")
        add_task(person, kit, at(2), "done", at(2, 9))          # on time
        add_task(person, kit, at(3), "done", at(4))              # late
        add_task(person, kit, at(5))                             # overdue
        add_task(person, kit, at(10, 18))                        # not yet due
        add_task(person, kit, at(6), "cancelled", at(6, 8))      # cancelled
        add_task(person, kit, at(1) - timedelta(days=5), "done", at(1))  # before the range
        add_task(person, lee, at(4), "done", at(3))              # on time
        add_task(person, None, at(7))                            # unassigned, overdue
        add_flag(at(2), 1, kit)
        add_flag(at(3), 4, kit)
        add_flag(at(4), 2, lee)
        add_flag(at(5), 10, patel)
        add_flag(at(6), None)
        add_flag(at(1) - timedelta(days=1), 50, kit)
        add_alert(at(2), 0.5, patel)
        add_alert(at(3), 1.5, patel)
        add_alert(at(4), 3, ng)
        add_alert(at(5), None)
        db.session.commit()


def test_figures_per_moderator_and_overall(app, data):
    """It counts check-ins due in the range by state and takes the medians by hand:
    flags overall median(1, 2, 4, 10) = 3, Kit median(1, 4) = 2.5; alerts overall
    median(0.5, 1.5, 3) = 1.5, Dr Patel median(0.5, 1.5) = 1."""
    with app.app_context():
        figures = fidelity(START, END)
        overall = figures.overall
        assert (overall.on_time, overall.late, overall.overdue, overall.not_yet_due,
                overall.cancelled) == (2, 1, 2, 1, 1)
        assert (overall.due, overall.done, overall.on_time_percent) == (6, 3, 40)
        assert (overall.median_flag_hours, overall.flags_open) == (3.0, 1)
        assert (overall.median_alert_hours, overall.alerts_open) == (1.5, 1)
        rows = {row.label: row for row in figures.rows}
        assert list(rows) == ["Dr Ng", "Dr Patel", "Kit", "Lee", "Unassigned"]
        kit, lee, patel = rows["Kit"], rows["Lee"], rows["Dr Patel"]
        assert (kit.due, kit.on_time, kit.late, kit.overdue, kit.cancelled) == (4, 1, 1, 1, 1)
        assert kit.median_flag_hours == 2.5 and kit.median_alert_hours is None
        assert (lee.due, lee.on_time, lee.median_flag_hours) == (1, 1, 2.0)
        assert (patel.due, patel.median_flag_hours, patel.median_alert_hours) == (0, 10.0, 1.0)
        assert rows["Dr Ng"].median_alert_hours == 3.0
        assert (rows["Unassigned"].due, rows["Unassigned"].overdue) == (1, 1)


def test_a_range_that_starts_later_leaves_earlier_rows_out(app, data):
    """It counts only what falls in the range (the end day included)."""
    with app.app_context():
        figures = fidelity(date(2026, 3, 5), date(2026, 3, 5))
        assert (figures.overall.overdue, figures.overall.due) == (1, 1)
        assert figures.overall.median_flag_hours == 10.0
        assert figures.overall.alert_hours == [] and figures.overall.alerts_open == 1


@contextlib.contextmanager
def counting() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_a_constant_number_of_queries(app, data):
    """It reads everything in four SELECTs, however many rows there are."""
    with app.app_context():
        with counting() as few:
            fidelity(START, END)
        person = db.session.scalar(db.select(CheckInTask)).participant
        for n in range(40):
            moderator = make_staff(Role.PEER_MODERATOR, f"m{n}@example.org", name=f"M{n}")
            add_task(person, moderator, at(8), "done", at(8, 1))
            add_flag(at(8), 1, moderator)
        db.session.commit()
        db.session.expire_all()
        with counting() as many:
            fidelity(START, END)
        assert len(few) == len(many) == 4


def test_the_page_for_researchers_and_clinicians(app, data):
    """It shows researchers the table for a chosen range, refuses a reversed range and
    keeps the page from peers."""
    researcher = signed_in(app, RESEARCHER)
    response = researcher.get("/moderation/fidelity?start=2026-03-01&end=2026-03-10")
    assert response.status_code == 200
    rows = table_rows(response.data)
    assert rows[0][:8] == ["All moderators", "6", "2", "1", "2", "1", "1", "40 %"]
    assert rows[0][9] == "3.0 h" and rows[0][11] == "1.5 h"
    assert signed_in(app, CLINICIAN).get("/moderation/fidelity").status_code == 200
    unknown = researcher.get("/moderation/fidelity?study=999")  # one study: no choice shown
    assert "Not a valid choice" in text_of(unknown) and table_rows(unknown.data) == []
    bad = researcher.get("/moderation/fidelity?start=2026-03-10&end=2026-03-01")
    assert "The start date must be on or before the end date." in text_of(bad)
    assert table_rows(bad.data) == []
    assert signed_in(app, PEER).get("/moderation/fidelity").status_code == 403


def test_figures_for_one_study(app, data):
    """With a study chosen, only its participants' check-ins, flags and alerts count; the
    page offers the choice once there is more than one study and refuses an unknown one."""
    with app.app_context():
        other = make_study(slug="other", name="Other trial")
        kit = db.session.scalar(select(User).where(User.email == PEER))
        there = make_participant(other, "T-0901", name="Still Meadow")
        add_task(there, kit, at(2), "done", at(2, 9))
        db.session.add(RiskAlert(channel="forum_post", content_type="forum_post", content_id=2,
                                 participant_id=there.id, opened_at=at(3),
                                 acknowledged_at=at(3, 12), acknowledged_by_id=kit.id))
        db.session.commit()
        first = db.session.scalar(select(Study.id).where(Study.slug == "test"))
        everyone = fidelity(START, END)
        theirs = fidelity(START, END, study_id=other.id)
        ours = fidelity(START, END, study_id=first)
        other_id = other.id
    assert (everyone.overall.due, len(everyone.overall.alert_hours)) == (7, 4)
    assert (theirs.overall.due, theirs.overall.on_time, theirs.overall.alert_hours) == (1, 1, [2.0])
    assert theirs.overall.flag_hours == []  # the hand-made flags are about nobody
    assert (ours.overall.due, len(ours.overall.alert_hours)) == (6, 0)
    researcher = signed_in(app, RESEARCHER)
    page = researcher.get(f"/moderation/fidelity?start=2026-03-01&end=2026-03-10&study={other_id}")
    assert "Other trial" in text_of(page)
    assert table_rows(page.data)[0][:3] == ["All moderators", "1", "1"]
    bad = researcher.get("/moderation/fidelity?study=999")
    assert "Not a valid choice" in text_of(bad) and table_rows(bad.data) == []
