"""Each caseload column's figure on constructed data: mood trend, SMS response rate, module
progress, open alerts, open and overdue check-ins, unread replies, who must not be
contacted, and a fixed number of queries however many people and rows there are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.events import record_event
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from moderation.caseload import Filters, caseload
from moderation.caseload_figures import MoodTrend, trend
from outcomes.models import Arm, Study, Withdrawal
from tests.factories import make_participant, make_staff, make_study
from tests.moderation.caseload_data import (
    add_alert,
    add_message,
    add_moods,
    add_prompt,
    add_task,
    complete_steps,
)
from tests.moderation.caseload_pages import apart_rows, caseload_rows
from tests.modules.content_rows import make_module, steps_of
from tests.sql_count import counting

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_time(NOW)
    yield
    clock.set_time(None)


def setup_peer(app) -> int:
    with app.app_context():
        make_study()
        return make_staff(Role.PEER_MODERATOR, "peer@example.org", name="Kit").id


def person(code: str, moderator_id: int, *, name: str | None = None, arm: str | None = "guided",
           **fields) -> Participant:
    moderator = db.session.get(User, moderator_id)
    p = make_participant(db.session.scalar(select(Study)), code, name=name or f"Person {code}",
                         moderator=moderator, arm=arm)
    for key, value in fields.items():
        setattr(p, key, value)
    db.session.flush()
    return p


def row_of(app, moderator_id: int, code: str):
    with app.app_context():
        moderator = db.session.get(User, moderator_id)
        result = caseload(moderator)
        return next(r for r in result.rows + result.apart if r.participant.study_code == code)


def page_row(client, code: str):
    return next(r for r in caseload_rows(client.get("/moderation/").data) if r.code == code)


# --- mood trend -------------------------------------------------------------------------

def test_mood_trend_compares_the_last_7_local_days_with_the_7_before():
    """It averages days 0-6 back and days 7-13 back; day 14 is out."""
    scores = {TODAY: 2, TODAY - timedelta(days=6): 3,             # this week: 2.5
              TODAY - timedelta(days=7): 4, TODAY - timedelta(days=10): 5,
              TODAY - timedelta(days=13): 4,                      # the week before: 4.3
              TODAY - timedelta(days=14): 1}                      # too old
    result = trend(scores, TODAY)
    assert (result.recent, result.previous, result.recent_days, result.previous_days) == (
        2.5, 4.3, 2, 3)
    assert result.change == -1.8
    assert result.direction == "down"


@pytest.mark.parametrize(("recent", "previous", "direction"), [
    ([4], [3], "up"),
    ([3, 4], [3, 3], "up"),        # 3.5 vs 3.0: +0.5 is a change
    ([3, 3, 4], [3], "steady"),    # 3.3 vs 3.0
    ([3], [3], "steady"),
    ([2, 3], [3], "down"),         # 2.5 vs 3.0
    ([3], [], "new"),
    ([], [3], "none"),
])
def test_mood_trend_direction(recent, previous, direction):
    """It calls a change of 0.5 or more either way a change, smaller ones steady."""
    scores = {TODAY - timedelta(days=n): s for n, s in enumerate(recent)}
    scores |= {TODAY - timedelta(days=7 + n): s for n, s in enumerate(previous)}
    assert trend(scores, TODAY).direction == direction


def test_mood_trend_uses_the_participants_own_days(app):
    """It counts local days: in Auckland it is already 11 March, so a mood of 4 March
    belongs to the week before."""
    peer_id = setup_peer(app)
    with app.app_context():
        p = person("T-0001", peer_id, timezone="Pacific/Auckland")
        add_moods(p, {date(2026, 3, 11): 2, date(2026, 3, 4): 4}, at=NOW)
        db.session.commit()
    assert row_of(app, peer_id, "T-0001").mood == MoodTrend(2.0, 4.0, 1, 1)


def test_mood_trend_on_the_page(app, client, auth):
    """It shows an arrow, words and both numbers, and says when there are no moods."""
    peer_id = setup_peer(app)
    with app.app_context():
        p = person("T-0001", peer_id)
        add_moods(p, {TODAY: 2, TODAY - timedelta(days=1): 3, TODAY - timedelta(days=8): 5,
                      TODAY - timedelta(days=9): 4}, at=NOW)
        steady = person("T-0002", peer_id)
        add_moods(steady, {TODAY: 3, TODAY - timedelta(days=8): 3}, at=NOW)
        new = person("T-0003", peer_id)
        add_moods(new, {TODAY - timedelta(days=2): 4}, at=NOW)
        person("T-0004", peer_id)
        db.session.commit()
    auth.login("peer@example.org")
    assert page_row(client, "T-0001").mood == "↓ Dropping: 2.5 vs 4.5 (-2.0)"
    assert page_row(client, "T-0002").mood == "→ Steady: 3.0 vs 3.0 (+0.0)"
    assert page_row(client, "T-0003").mood == "4.0 this week (1 day; none the week before)"
    assert page_row(client, "T-0004").mood == "No moods in 7 days"


# --- SMS response rate -------------------------------------------------------------------

def test_sms_rate_counts_answered_of_sent_prompts_of_the_last_14_days(app, client, auth):
    """It divides answered prompts by prompts that went out in the last 14 days; failed
    texts, older prompts and prompts still open do not count."""
    peer_id = setup_peer(app)
    with app.app_context():
        p = person("T-0001", peer_id)
        for days in (1, 2, 3):
            add_prompt(p, NOW - timedelta(days=days), answered=True)
        add_prompt(p, NOW - timedelta(days=4))                          # sent, no answer
        add_prompt(p, NOW - timedelta(days=13, hours=23))               # still inside
        add_prompt(p, NOW - timedelta(days=15), answered=True)          # too old
        add_prompt(p, NOW - timedelta(days=5), status="failed")         # never went out
        add_prompt(p, NOW - timedelta(hours=1), expired=False)          # still open
        person("T-0002", peer_id)
        db.session.commit()
    row = row_of(app, peer_id, "T-0001")
    assert (row.sms_answered, row.sms_sent, row.sms_percent) == (3, 5, 60)
    auth.login("peer@example.org")
    assert page_row(client, "T-0001").sms == "60% (3 of 5)"
    assert page_row(client, "T-0002").sms == "No prompts sent"


# --- module progress ---------------------------------------------------------------------

def test_progress_counts_steps_of_the_modules_open_to_them(app, client, auth):
    """It counts steps done out of the steps of unlocked modules: the second module opens
    after the first is finished, the third in week 3."""
    peer_id = setup_peer(app)
    with app.app_context():
        first = make_module("first", kinds=("read", "read", "read"), position=1)
        second = make_module("second", kinds=("read", "read"), position=2,
                             unlock={"after": "first"})
        make_module("third", kinds=("read", "read"), position=3, unlock={"week": 3})
        started = person("T-0001", peer_id, randomised_at=NOW - timedelta(days=10))
        complete_steps(started, steps_of(first)[:2], at=NOW)
        finished = person("T-0002", peer_id, randomised_at=NOW - timedelta(days=10))
        complete_steps(finished, steps_of(first) + steps_of(second)[:1], at=NOW)
        person("T-0003", peer_id, randomised_at=NOW - timedelta(days=15))
        study = db.session.scalar(select(Study))
        plain = Arm(study_id=study.id, code="plain", name="Plain", features={"sms": True})
        db.session.add(plain)
        db.session.flush()
        person("T-0004", peer_id, arm_id=plain.id)
        db.session.commit()
    assert row_of(app, peer_id, "T-0001").progress.percent == 67
    finished = row_of(app, peer_id, "T-0002").progress
    assert (finished.steps_done, finished.steps_available, finished.modules_completed) == (
        4, 5, 1)
    assert row_of(app, peer_id, "T-0003").progress.steps_available == 5  # first + third
    auth.login("peer@example.org")
    assert page_row(client, "T-0001").progress == "2 of 3 steps (67%)"
    assert page_row(client, "T-0002").progress == "4 of 5 steps (80%) 1 module completed"
    assert page_row(client, "T-0003").progress == "0 of 5 steps (0%)"
    assert page_row(client, "T-0004").progress == "No modules in their arm"


# --- alerts, check-ins, replies ----------------------------------------------------------

def test_open_alerts_checkins_and_unread_replies(app, client, auth):
    """It counts open alerts, open check-ins (marking the overdue ones) and replies from
    the participant nobody has read; resolved, done and read rows do not count."""
    peer_id = setup_peer(app)
    with app.app_context():
        p = person("T-0001", peer_id)
        peer = db.session.get(User, peer_id)
        add_alert(p, at=NOW - timedelta(hours=3))
        add_alert(p, at=NOW - timedelta(hours=2))
        add_alert(p, at=NOW - timedelta(days=3), resolved=True)
        add_task(p, due_at=NOW - timedelta(hours=1), reason="inactive")
        add_task(p, due_at=NOW + timedelta(hours=5), reason="mood_drop")
        add_task(p, due_at=NOW - timedelta(days=2), reason="manual", status="done")
        add_message(p, p.user, at=NOW - timedelta(hours=4))
        add_message(p, p.user, at=NOW - timedelta(hours=3))
        add_message(p, p.user, at=NOW - timedelta(hours=5), read=True)
        add_message(p, peer, at=NOW - timedelta(hours=6), direction="to_participant")
        person("T-0002", peer_id)
        db.session.commit()
    row = row_of(app, peer_id, "T-0001")
    assert (row.open_alerts, row.open_checkins, row.overdue_checkins, row.unread_replies) == (
        2, 2, 1, 2)
    auth.login("peer@example.org")
    shown = page_row(client, "T-0001")
    assert (shown.alerts, shown.checkins, shown.unread) == ("2 open", "2 open 1 overdue",
                                                             "2 unread")
    quiet = page_row(client, "T-0002")
    assert (quiet.alerts, quiet.checkins, quiet.unread) == ("None", "None", "None")
    page = client.get("/moderation/").get_data(as_text=True)
    assert '<span class="tag tag-red">2 open</span>' in page  # alert pages are clinicians'
    assert 'href="/moderation/participants/1#panel-messages" class="tag tag-blue">2 unread' in page


def test_clinicians_get_a_link_to_the_alerts(app, client, auth):
    peer_id = setup_peer(app)
    with app.app_context():
        add_alert(person("T-0001", peer_id), at=NOW)
        make_staff(Role.CLINICIAN, "clinician@example.org")
        db.session.commit()
    auth.login("clinician@example.org")
    page = client.get("/moderation/?all=1").get_data(as_text=True)
    assert '<a href="/moderation/alerts" class="tag tag-red">1 open</a>' in page


def test_checkins_are_off_for_an_arm_without_them_or_after_leaving_the_intervention(
        app, client, auth):
    """It says check-ins are off when the arm has none or the person left the intervention."""
    peer_id = setup_peer(app)
    with app.app_context():
        person("T-0001", peer_id, arm="self")
        left = person("T-0002", peer_id)
        db.session.add(Withdrawal(participant_id=left.id, kind="intervention", at=NOW,
                                  reason="Too busy"))
        person("T-0003", peer_id)
        db.session.commit()
    auth.login("peer@example.org")
    assert page_row(client, "T-0001").checkins == "Off for them"
    assert page_row(client, "T-0002").checkins == "Off for them"
    assert page_row(client, "T-0003").checkins == "None"


def test_people_who_must_not_be_contacted_are_listed_apart(app, client, auth):
    """It lists people withdrawn from the study in the collapsed "Not to be contacted"
    list, without check-in figures, and not in the main table."""
    peer_id = setup_peer(app)
    with app.app_context():
        person("T-0001", peer_id)
        gone = person("T-0002", peer_id, status="withdrawn")
        add_task(gone, due_at=NOW - timedelta(days=1))
        db.session.commit()
    auth.login("peer@example.org")
    page = client.get("/moderation/").data
    assert [r.code for r in caseload_rows(page)] == ["T-0001"]
    assert [(r.code, r.status) for r in apart_rows(page)] == [("T-0002", "withdrawn")]
    assert b"<summary>Not to be contacted (1)</summary>" in page
    assert b"<details" in page and b"<details open" not in page


# --- a fixed number of queries -----------------------------------------------------------



def add_busy_people(app, moderator_id: int, first: int, count: int) -> None:
    """People with every kind of row the caseload reads."""
    with app.app_context():
        module = make_module(f"m{first}", kinds=("read",) * 3)
        moderator = db.session.get(User, moderator_id)
        for n in range(first, first + count):
            p = person(f"Q-{n:04d}", moderator_id, randomised_at=NOW - timedelta(days=20),
                       status="withdrawn" if n % 7 == 0 else "active")
            record_event(p, "login", at=NOW - timedelta(days=n % 40))
            add_moods(p, {TODAY - timedelta(days=d): 1 + (n + d) % 5 for d in (0, 3, 8)}, at=NOW)
            add_prompt(p, NOW - timedelta(days=2), answered=n % 2 == 0)
            complete_steps(p, steps_of(module)[: n % 3], at=NOW)
            add_alert(p, at=NOW - timedelta(hours=2))
            add_task(p, due_at=NOW - timedelta(hours=n % 3))
            add_message(p, p.user, at=NOW)
            add_message(p, moderator, at=NOW, direction="to_participant")
        db.session.commit()


@pytest.mark.usefixtures("uncached")
def test_the_page_runs_the_same_queries_for_5_and_60_busy_participants(app, client, auth):
    """It loads every figure with a fixed number of queries, however long the list."""
    peer_id = setup_peer(app)
    add_busy_people(app, peer_id, 1, 5)
    auth.login("peer@example.org")
    client.get("/moderation/")  # warm up: first-request work is not the caseload's

    with counting(app) as five:
        page = client.get("/moderation/?sort=mood&has=checkins").data
    assert len(caseload_rows(page)) + len(apart_rows(page)) == 5
    add_busy_people(app, peer_id, 6, 55)
    with counting(app) as sixty:
        page = client.get("/moderation/?sort=mood&has=checkins").data
    assert len(caseload_rows(page)) + len(apart_rows(page)) == 60
    assert len(sixty) == len(five), "\n".join(sixty)


def test_every_figure_of_the_list_takes_seven_queries(app):
    """The list query with the counts, the arms, the SMS replies, the mood sums, the
    library, steps done and modules completed: seven statements for 60 busy people, one
    more (the total) when searched."""
    peer_id = setup_peer(app)
    add_busy_people(app, peer_id, 1, 60)
    with app.app_context():
        peer = db.session.get(User, peer_id)
        with counting(app) as listed:
            result = caseload(peer)
        with counting(app) as searched:
            found = caseload(peer, filters=Filters(q="Q-001"))
    assert len(result.rows) + len(result.apart) == 60
    assert {r.participant.study_code for r in found.rows + found.apart} == {
        f"Q-{n:04d}" for n in range(10, 20)}
    assert found.total == 60
    assert len(listed) == 7, "\n".join(listed)
    assert len(searched) == 8, "\n".join(searched)
