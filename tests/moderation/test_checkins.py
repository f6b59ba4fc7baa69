"""Check-in generation: each rule fires at its threshold and not just below it, only for
participants check-ins are for, once per participant and reason across runs, and again
only on new evidence after a task was closed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.events import record_event
from core.extensions import db
from core.models import Participant, User
from core.notifications import Notification
from core.roles import Role
from moderation import checkins, jobs
from moderation.care_models import CheckInRule, CheckInTask
from moderation.checkins import RuleSetting
from moderation.checkins.evaluate import STOPPED_NOTE
from outcomes.models import Study, Withdrawal
from outcomes.participants import withdraw
from tests.factories import make_staff, make_study
from tests.moderation.checkin_data import (
    PEER,
    add_alert,
    add_moods,
    add_prompt,
    add_ucla3,
    audits,
    randomised,
    reasons_of,
    tasks_of,
)

#: a Tuesday morning, 06:00 UTC (07:00 in London): when the daily job runs
NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=60)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_time(NOW)
    yield
    clock.set_time(None)


def only(app, reason: str, **threshold: int) -> None:
    """Switch every rule off but ``reason`` (optionally with its threshold)."""
    study = db.session.scalar(select(Study))
    for other in checkins.SPECS:
        if other != reason:
            db.session.add(CheckInRule(study_id=study.id, reason=other, is_enabled=False,
                                       threshold=0, due_hours=48))
    if threshold:
        db.session.add(CheckInRule(study_id=study.id, reason=reason, is_enabled=True,
                                   threshold=threshold["threshold"], due_hours=24))
    db.session.commit()


def run(now: datetime = NOW) -> checkins.Report:
    clock.set_time(now)
    report = checkins.evaluate(db.session.scalar(select(Study)), now)
    db.session.commit()
    return report


@pytest.fixture
def people(app):
    """Kit (a peer) holds "A" and "B", randomised 60 days ago and never active since."""
    with app.app_context():
        study = make_study()
        peer = make_staff(Role.PEER_MODERATOR, PEER, name="Kit")
        a = randomised(study, "A", moderator=peer, since=LONG_AGO)
        b = randomised(study, "B", moderator=peer, since=LONG_AGO)
        yield {"study": study, "peer": peer, "a": a, "b": b}


def used(person: Participant, at: datetime, kind: str = "login") -> None:
    record_event(person, kind, at=at)
    db.session.commit()


# --- inactivity ------------------------------------------------------------------------


def test_inactive_for_seven_days_opens_a_task_on_the_caseload(people):
    """It opens an "inactive" task at exactly 7 days without use, for the caseload
    moderator, due 48 hours later, audited, with a notification to the moderator."""
    only(None, "inactive")
    used(people["a"], NOW - timedelta(days=7))
    used(people["b"], NOW - timedelta(days=7) + timedelta(minutes=1))  # just below
    report = run()
    assert report.created == {"inactive": 1}
    [task] = tasks_of()
    assert (task.participant_id, task.reason, task.status) == (people["a"].id, "inactive", "open")
    assert task.moderator_id == people["peer"].id
    assert task.due_at == NOW + timedelta(hours=48)
    assert task.detail == {"days": 7, "never_active": False}
    assert task.open_key == f"{people['a'].id}:inactive"
    [entry] = audits("checkin.task_created")
    assert (entry.actor_id, entry.target_id, entry.detail["reason"]) == (
        None, people["a"].id, "inactive")
    note = db.session.scalar(select(Notification).where(
        Notification.user_id == people["peer"].id))
    assert note.kind == "checkin_due" and note.url == f"/moderation/checkins/{task.id}"


def test_inactivity_ignores_what_is_not_use(people):
    """It counts sign-ins, steps, moods and posts as use, not SMS answers or a moderator's
    message."""
    only(None, "inactive")
    used(people["a"], NOW - timedelta(days=10))
    used(people["a"], NOW - timedelta(days=1), "sms_answered")
    used(people["a"], NOW - timedelta(hours=3), "moderator_contact")
    used(people["b"], NOW - timedelta(days=10))
    used(people["b"], NOW - timedelta(days=2), "mood_logged")
    run()
    assert reasons_of(people["a"].id) == ["inactive"]
    assert reasons_of(people["b"].id) == []


def test_never_active_counts_from_randomisation(people):
    """It counts the days from randomisation for someone who never used the platform."""
    only(None, "inactive")
    people["a"].randomised_at = NOW - timedelta(days=8)
    people["b"].randomised_at = NOW - timedelta(days=5)
    db.session.commit()
    run()
    assert [t.detail for t in tasks_of(people["a"].id)] == [{"days": 8, "never_active": True}]
    assert tasks_of(people["b"].id) == []


def test_threshold_and_due_hours_come_from_the_study(people):
    """It uses the study's own threshold and due hours when set."""
    only(None, "inactive", threshold=3)
    used(people["a"], NOW - timedelta(days=3, hours=1))
    used(people["b"], NOW - timedelta(days=2, hours=23))
    run()
    [task] = tasks_of()
    assert task.participant_id == people["a"].id
    assert task.due_at == NOW + timedelta(hours=24)


def test_a_rule_switched_off_opens_nothing(people):
    """It skips a disabled rule."""
    checkins.save_rules(people["study"], [RuleSetting("inactive", False, 7, 48)],
                        actor=make_staff(Role.RESEARCHER))
    only(None, "inactive")
    used(people["a"], NOW - timedelta(days=30))
    assert run().created == {}


# --- missed prompts --------------------------------------------------------------------


def test_three_missed_prompts_in_a_row_open_a_task(people):
    """It fires when the newest three delivered prompts all expired unanswered, and not
    when one of them was answered."""
    only(None, "missed_prompts")
    a, b = people["a"], people["b"]
    for days in (4, 3, 2, 1):
        add_prompt(a, NOW - timedelta(days=days, hours=-3), answered=days == 4)
        add_prompt(b, NOW - timedelta(days=days, hours=-3), answered=days == 1)
    db.session.commit()
    run()
    [task] = tasks_of()
    assert task.participant_id == a.id and task.reason == "missed_prompts"
    assert task.detail["missed"] == 3


def test_two_missed_prompts_are_not_enough(people):
    """It does not fire just below the threshold, nor count prompts that never went out."""
    only(None, "missed_prompts")
    a, b = people["a"], people["b"]
    for days in (2, 1):
        add_prompt(a, NOW - timedelta(days=days))
    for days, status in ((3, "failed"), (2, "delivered"), (1, "delivered")):
        add_prompt(b, NOW - timedelta(days=days), status=status)
    db.session.commit()
    assert run().created == {}


# --- mood ------------------------------------------------------------------------------


def test_a_mood_drop_of_two_points_over_three_days_opens_a_task(people):
    """It compares the first mood of the last three days and today with the newest one."""
    only(None, "mood_drop")
    today = NOW.date()
    add_moods(people["a"], {today - timedelta(days=3): 4, today - timedelta(days=1): 3,
                            today: 2}, at=NOW - timedelta(hours=1))
    add_moods(people["b"], {today - timedelta(days=3): 4, today: 3},
              at=NOW - timedelta(hours=1))  # one point: just below
    db.session.commit()
    run()
    [task] = tasks_of()
    assert task.participant_id == people["a"].id
    assert task.detail == {"from": 4, "to": 2, "days": 3}


def test_a_drop_from_before_the_window_does_not_count(people):
    """It ignores moods older than three days before today."""
    only(None, "mood_drop")
    today = NOW.date()
    add_moods(people["a"], {today - timedelta(days=4): 5, today: 2},
              at=NOW - timedelta(hours=1))
    db.session.commit()
    assert run().created == {}


# --- loneliness ------------------------------------------------------------------------


def test_a_high_ucla3_score_opens_a_task(people):
    """It fires at a UCLA-3 SMS score of 6 and not at 5 or for an answer over a week old."""
    only(None, "high_loneliness")
    add_ucla3(people["a"], NOW - timedelta(days=2), 6)
    add_ucla3(people["b"], NOW - timedelta(days=2), 5)
    c = randomised(people["study"], "C", moderator=people["peer"], since=LONG_AGO)
    add_ucla3(c, NOW - timedelta(days=8), 9)
    db.session.commit()
    run()
    assert [(t.participant_id, t.detail) for t in tasks_of()] == [(people["a"].id,
                                                                    {"score": 6.0})]


def test_the_newest_ucla3_answer_decides(people):
    """It goes by the newest answer: an earlier high score followed by a lower one opens
    nothing."""
    only(None, "high_loneliness")
    add_ucla3(people["a"], NOW - timedelta(days=6), 8)
    add_ucla3(people["a"], NOW - timedelta(days=1), 4)
    db.session.commit()
    assert run().created == {}


# --- alert follow-up -------------------------------------------------------------------


def test_an_alert_resolved_yesterday_is_followed_up(people):
    """It opens a follow-up the day after an alert was resolved, not on the same day, and
    not for an alert still open."""
    only(None, "alert_follow_up")
    yesterday = NOW - timedelta(hours=10)  # 20:00 UTC on Monday
    alert = add_alert(people["a"], opened_at=yesterday - timedelta(hours=2),
                      resolved_at=yesterday)
    add_alert(people["b"], opened_at=NOW - timedelta(hours=2), resolved_at=None)
    c = randomised(people["study"], "C", moderator=people["peer"], since=LONG_AGO)
    add_alert(c, opened_at=NOW - timedelta(hours=2), resolved_at=NOW - timedelta(hours=1))
    db.session.commit()
    run()
    [task] = tasks_of()
    assert (task.participant_id, task.detail) == (people["a"].id, {"alert_id": alert.id})
    assert task.due_at == NOW + timedelta(hours=24)


# --- once per participant and reason ---------------------------------------------------


def test_running_again_the_same_and_the_next_day_adds_nothing(people):
    """It never opens a second task for the same participant and reason while one is
    open, but does open one per reason."""
    used(people["a"], NOW - timedelta(days=9))
    used(people["b"], NOW - timedelta(hours=1))
    add_ucla3(people["a"], NOW - timedelta(days=1), 9)
    db.session.commit()
    first = run()
    assert first.created == {"inactive": 1, "high_loneliness": 1}
    again = run(NOW + timedelta(hours=2))
    tomorrow = run(NOW + timedelta(days=1))
    assert again.created == {} and tomorrow.created == {}
    assert again.already_open == {"inactive": 1, "high_loneliness": 1}
    assert reasons_of(people["a"].id) == ["high_loneliness", "inactive"]
    assert len(audits("checkin.task_created")) == 2


def test_a_closed_task_reopens_only_on_new_evidence(people):
    """It does not reopen a task closed today; inactivity is counted again from the
    check-in, so it opens again after another 7 quiet days."""
    only(None, "inactive")
    people["b"].status = "completed"  # only A here
    used(people["a"], NOW - timedelta(days=9))
    run()
    [task] = tasks_of()
    kit = db.session.get(User, people["peer"].id)
    checkins.complete(task, checkins.Completion("phone", "no_answer"), actor=kit, version=1)
    db.session.commit()
    assert run(NOW + timedelta(hours=1)).created == {}
    assert run(NOW + timedelta(days=6)).created == {}
    assert run(NOW + timedelta(days=7, hours=1)).created == {"inactive": 1}
    assert [t.status for t in tasks_of()] == ["done", "open"]


def test_a_new_high_score_after_the_check_in_opens_a_new_task(people):
    """It reopens a loneliness task for an answer received after the last one closed."""
    only(None, "high_loneliness")
    add_ucla3(people["a"], NOW - timedelta(days=1), 7)
    db.session.commit()
    run()
    [task] = tasks_of()
    kit = db.session.get(User, people["peer"].id)
    checkins.cancel(task, actor=kit, version=1, reason="Spoke to them at the group.")
    db.session.commit()
    assert run(NOW + timedelta(days=1)).created == {}
    add_ucla3(people["a"], NOW + timedelta(days=5), 8)
    db.session.commit()
    assert run(NOW + timedelta(days=6)).created == {"high_loneliness": 1}


# --- who ---------------------------------------------------------------------------------


def test_only_participants_check_ins_are_for(people):
    """It skips the withdrawn, the not yet randomised, an arm without check-ins, those
    withdrawn from the intervention and switched-off accounts."""
    only(None, "inactive")
    study, peer = people["study"], people["peer"]
    withdrawn = randomised(study, "W", moderator=peer, since=LONG_AGO)
    withdrawn.status = "withdrawn"
    consented = randomised(study, "N", moderator=peer, since=LONG_AGO)
    consented.status, consented.randomised_at = "consented", None
    control = randomised(study, "S", moderator=peer, arm="self", since=LONG_AGO)
    left = randomised(study, "L", moderator=peer, since=LONG_AGO)
    db.session.add(Withdrawal(participant_id=left.id, kind="intervention", at=NOW,
                              reason="Too busy."))
    off = randomised(study, "O", moderator=peer, since=LONG_AGO)
    off.user.is_enabled = False
    active = randomised(study, "V", moderator=None, since=LONG_AGO)
    active.status = "active"
    db.session.commit()
    report = run()
    opened = {t.participant_id for t in tasks_of()}
    assert opened == {people["a"].id, people["b"].id, active.id}
    assert report.checked == 3
    assert {withdrawn.id, consented.id, control.id, left.id, off.id}.isdisjoint(opened)
    assert next(t for t in tasks_of() if t.participant_id == active.id).moderator_id is None


def test_the_daily_job_evaluates_every_study(people):
    """It runs each study's rules and sums up what it did."""
    used(people["a"], NOW - timedelta(days=8))
    used(people["b"], NOW)
    other = make_study(slug="other", name="Other study")
    quiet = randomised(other, "X", since=LONG_AGO)
    used(quiet, NOW - timedelta(days=20))
    result = jobs.generate_checkins()
    db.session.commit()
    assert result == {"studies": 2, "checked": 3, "created": 2, "already_open": 0,
                      "closed": 0}
    assert jobs.generate_checkins()["created"] == 0
    assert db.session.scalar(select(db.func.count(CheckInTask.id))) == 2


def test_open_tasks_of_those_who_withdrew_are_closed(people):
    """It cancels the open tasks of someone who withdrew from the study or from the
    intervention, with a note saying why, and leaves the others."""
    only(None, "inactive")
    c = randomised(people["study"], "C", moderator=people["peer"], since=LONG_AGO)
    run()
    assert len(tasks_of()) == 3
    people["a"].status = "withdrawn"
    db.session.add(Withdrawal(participant_id=c.id, kind="intervention", at=NOW,
                              reason="Prefers not to."))
    db.session.commit()
    report = run(NOW + timedelta(hours=1))
    assert report.closed == 2
    states = {t.participant_id: (t.status, t.open_key is None) for t in tasks_of()}
    assert states == {people["a"].id: ("cancelled", True), c.id: ("cancelled", True),
                      people["b"].id: ("open", False)}
    assert tasks_of(c.id)[0].note.startswith("Closed automatically")
    assert [e.detail["automatic"] for e in audits("checkin.task_cancelled")] == [True, True]


def test_a_withdrawal_closes_their_open_tasks_at_once(people):
    """Recording a withdrawal from the study or the intervention cancels the person's open
    tasks in the same transaction (no wait for the next daily run); a withdrawal from
    texts only leaves them open."""
    only(None, "inactive")
    c = randomised(people["study"], "C", moderator=people["peer"], since=LONG_AGO)
    run()
    researcher = make_staff(Role.RESEARCHER, "res@example.org")
    withdraw(people["a"], "intervention", actor=researcher, reason="Too much at once.")
    people["b"].sms_consent = True
    withdraw(people["b"], "sms", actor=researcher, reason="No texts please.")
    withdraw(c, "study", actor=researcher, reason="Moving away.")
    db.session.commit()
    states = {t.participant_id: t.status for t in tasks_of()}
    assert states == {people["a"].id: "cancelled", people["b"].id: "open", c.id: "cancelled"}
    assert all(t.note == STOPPED_NOTE for t in tasks_of() if t.status == "cancelled")
    assert run(NOW + timedelta(hours=1)).closed == 0


def test_the_demo_seed_gives_moderators_check_ins_once(people):
    """It seeds the templates and the rules' tasks, and nothing more a second time."""
    from moderation.checkins.demo import seed_demo_checkins

    used(people["a"], NOW - timedelta(days=12))
    used(people["b"], NOW)
    first = seed_demo_checkins(people["study"], now=NOW)
    second = seed_demo_checkins(people["study"], now=NOW)
    db.session.commit()
    assert first.created == {"inactive": 1} and second.created == {}
    assert len(checkins.wording.templates()) == 5


def test_evaluation_reads_in_a_fixed_number_of_queries(people):
    """It reads the same number of times for 2 participants as for 22 (only opening a
    task writes per participant)."""
    import contextlib

    from sqlalchemy import event

    @contextlib.contextmanager
    def selects():
        seen: list[str] = []

        def count(conn, cursor, statement, *args) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            yield seen
        finally:
            event.remove(db.engine, "before_cursor_execute", count)

    for person in (people["a"], people["b"]):
        used(person, NOW - timedelta(hours=2))
    db.session.expire_all()
    with selects() as few:
        assert run().created == {}
    for n in range(20):
        person = randomised(people["study"], f"M-{n:02d}", moderator=people["peer"],
                            since=LONG_AGO)
        used(person, NOW - timedelta(hours=1))
        add_prompt(person, NOW - timedelta(days=1), answered=True)
        add_ucla3(person, NOW - timedelta(days=1), 3)
    db.session.commit()
    db.session.expire_all()
    with selects() as many:
        assert run().created == {}
    assert len(few) == len(many)
