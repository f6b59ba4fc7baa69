"""The protocol at work: planning, sending, replies, reminders, expiry, STOP, pausing and
response rates, end to end through the real webhook and outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import clock
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from core.sms.models import SmsMessage
from outcomes import participants as path
from outcomes.models import Arm, Study, Withdrawal
from outcomes.prompts import services
from outcomes.prompts.models import LATE, UNREADABLE, PlannedPrompt, PromptReply
from tests.outcomes.prompts.helpers import (
    at,
    outbox,
    participant,
    plan,
    reply,
    send_due,
    setup_trial,
)

STEP_LINK = "http://kinship.test/modules/small-steps-to-reach-out/ss-take-the-first-step"


@pytest.fixture
def trial(app):
    with app.app_context():
        return setup_trial()


def prompt_rows(pid: int) -> list[PlannedPrompt]:
    return list(db.session.scalars(select(PlannedPrompt).where(
        PlannedPrompt.participant_id == pid).order_by(PlannedPrompt.id)))


def replies(pid: int) -> list[PromptReply]:
    return list(db.session.scalars(select(PromptReply).where(
        PromptReply.participant_id == pid).order_by(PromptReply.id)))


def sent_morning_prompt(app, pid: int) -> None:
    """Plan at 08:45 and send at 09:00 (London, December: UTC) the 09:00 loneliness prompt."""
    with app.app_context():
        plan(at(2026, 12, 1, 8, 45))
        send_due(at(2026, 12, 1, 9, 0))


# --- planning -----------------------------------------------------------------------------------

def test_planning_twice_never_plans_or_queues_twice(app, trial):
    pid = trial["participant"]
    with app.app_context():
        assert plan(at(2026, 12, 1, 8, 40))["prompts"] == 1
        assert plan(at(2026, 12, 1, 8, 50))["prompts"] == 0
        assert plan(at(2026, 12, 1, 8, 50))["prompts"] == 0
        rows = prompt_rows(pid)
        assert [(r.prompt_key, r.slot.isoformat()) for r in rows] == [("lonely", "2026-12-01")]
        messages = outbox(pid)
        assert len(messages) == 1
        assert messages[0].purpose == "prompt"
        assert messages[0].dedupe_key == f"prompt:{rows[0].id}"
        assert messages[0].send_after == at(2026, 12, 1, 9, 0)
        assert rows[0].expires_at == at(2026, 12, 1, 11, 0)


def test_nothing_is_planned_before_the_look_ahead(app, trial):
    with app.app_context():
        assert plan(at(2026, 12, 1, 8, 0))["prompts"] == 0
        assert prompt_rows(trial["participant"]) == []


def test_a_prompt_follows_the_participants_own_time_zone(app, trial):
    with app.app_context():
        ny = setup_trial(code="T-0002", phone="+12025550123", timezone="America/New_York")
        plan(at(2026, 12, 1, 8, 45))
        assert prompt_rows(ny["participant"]) == []
        plan(at(2026, 12, 1, 13, 45))  # 08:45 in New York
        (row,) = prompt_rows(ny["participant"])
        assert row.planned_at == at(2026, 12, 1, 14, 0)


@pytest.mark.parametrize(("zone", "sent"), [
    ("Europe/London", at(2026, 3, 29, 8, 0)),       # spring forward: 09:00 BST
    ("Europe/London", at(2026, 10, 25, 9, 0)),      # fall back: 09:00 GMT
    ("America/New_York", at(2026, 3, 8, 13, 0)),    # 09:00 EDT
    ("America/New_York", at(2026, 11, 1, 14, 0)),   # 09:00 EST
    ("Australia/Sydney", at(2026, 10, 3, 22, 0)),   # 4 October 09:00 AEDT
    ("Australia/Sydney", at(2026, 4, 4, 23, 0)),    # 5 April 09:00 AEST
])
def test_the_planner_sends_at_nine_local_on_dst_days(app, trial, zone, sent):
    pid = trial["participant"]
    with app.app_context():
        person = participant(pid)
        person.timezone = zone
        person.randomised_at = sent - timedelta(days=2)
        db.session.commit()
        plan(sent - timedelta(hours=1))  # too early: nothing yet
        assert prompt_rows(pid) == []
        plan(sent - timedelta(minutes=20))
        (row,) = prompt_rows(pid)
        assert row.planned_at == sent
        assert outbox(pid)[0].send_after == sent


@pytest.mark.parametrize("change", ["withdrawn", "sms_withdrawal", "opted_out", "no_consent",
                                    "completed", "arm_without_sms", "period_over", "no_phone"])
def test_prompts_pause_with_the_participants_status_and_arm(app, trial, change):
    pid = trial["participant"]
    when = at(2026, 12, 1, 8, 45)
    with app.app_context():
        person = participant(pid)
        clock.set_time(when)
        researcher = db.session.scalar(select(User).where(User.role == Role.RESEARCHER))
        if change == "withdrawn":
            path.withdraw(person, "study", actor=researcher, reason="Moved away")
        elif change == "sms_withdrawal":
            path.withdraw(person, "sms", actor=researcher, reason="Asked by phone")
        elif change == "opted_out":
            person.sms_opted_out_at = when
        elif change == "no_consent":
            person.sms_consent = False
        elif change == "completed":
            person.status = "completed"
        elif change == "arm_without_sms":
            arm = db.session.get(Arm, person.arm_id)
            arm.features = {**arm.features, "sms": False}
        elif change == "period_over":
            when = person.randomised_at + timedelta(days=84, hours=1)
        elif change == "no_phone":
            person.phone = None
        db.session.commit()
        assert services.prompts_paused_because(
            person, services._protocols()[person.study_id][1], now=when)
        assert plan(when)["prompts"] == 0
        assert prompt_rows(pid) == []


def test_a_queued_prompt_is_cancelled_when_the_participant_withdraws(app, trial):
    pid = trial["participant"]
    with app.app_context():
        plan(at(2026, 12, 1, 8, 40))
        researcher = db.session.scalar(select(User).where(User.role == Role.RESEARCHER))
        path.withdraw(participant(pid), "study", actor=researcher, reason="Moved away")
        db.session.commit()
        assert plan(at(2026, 12, 1, 8, 45))["cancelled"] == 1
        assert [m.status for m in outbox(pid)] == ["cancelled"]


def test_an_intervention_withdrawal_keeps_the_prompts(app, trial):
    pid = trial["participant"]
    with app.app_context():
        clock.set_time(at(2026, 12, 1, 8, 30))
        researcher = db.session.scalar(select(User).where(User.role == Role.RESEARCHER))
        path.withdraw(participant(pid), "intervention", actor=researcher, reason="Too busy")
        db.session.commit()
        assert plan(at(2026, 12, 1, 8, 45))["prompts"] == 1


# --- replies ------------------------------------------------------------------------------------

def test_an_answer_is_stored_scored_and_gets_tailored_feedback(app, client, trial):
    pid = trial["participant"]
    sent_morning_prompt(app, pid)
    assert reply(app, client, "I'd say 8 today", at(2026, 12, 1, 9, 10)) == 200
    with app.app_context():
        (answer,) = replies(pid)
        assert (answer.status, answer.value, answer.score) == ("answered", 8, 8.0)
        assert answer.latency_seconds == 600
        assert answer.prompt_message_id == outbox(pid, "prompt")[0].id
        inbound = db.session.get(SmsMessage, answer.inbound_message_id)
        assert inbound.outcome == "handled"
        assert inbound.in_reply_to_id == answer.prompt_message_id
        (feedback,) = outbox(pid, "reply")
        assert feedback.body.startswith("Thank you for telling us.")
        assert feedback.body.endswith(STEP_LINK)
        event = db.session.scalar(select(ActivityEvent).where(ActivityEvent.kind == "sms_answered"))
        assert event.detail == {"prompt": "lonely", "value": 8, "late": False}
        assert prompt_rows(pid)[0].answered_at == at(2026, 12, 1, 9, 10)


@pytest.mark.parametrize(("text", "start"), [("2", "Thanks. Good to hear."),
                                             ("five", "Thanks for your answer.")])
def test_feedback_follows_the_first_matching_rule(app, client, trial, text, start):
    sent_morning_prompt(app, trial["participant"])
    reply(app, client, text, at(2026, 12, 1, 9, 5))
    with app.app_context():
        (feedback,) = outbox(trial["participant"], "reply")
        assert feedback.body.startswith(start)
        assert "http" not in feedback.body


def test_feedback_has_no_module_link_for_an_arm_without_modules(app, client, trial):
    pid = trial["participant"]
    with app.app_context():
        arm = db.session.get(Arm, participant(pid).arm_id)
        arm.features = {**arm.features, "modules": False}
        db.session.commit()
    sent_morning_prompt(app, pid)
    reply(app, client, "9", at(2026, 12, 1, 9, 5))
    with app.app_context():
        (feedback,) = outbox(pid, "reply")
        assert feedback.body.startswith("Thank you for telling us.")
        assert "http" not in feedback.body


def test_an_unreadable_reply_gets_one_help_text_and_is_stored(app, client, trial):
    pid = trial["participant"]
    sent_morning_prompt(app, pid)
    reply(app, client, "dunno really", at(2026, 12, 1, 9, 5))
    reply(app, client, "12", at(2026, 12, 1, 9, 6))
    reply(app, client, "6", at(2026, 12, 1, 9, 7))
    with app.app_context():
        stored = replies(pid)
        assert [(r.status, r.problem, r.value) for r in stored] == [
            (UNREADABLE, "unreadable", None), (UNREADABLE, "out_of_range", 12),
            ("answered", None, 6)]
        texts = [m.body for m in outbox(pid, "reply")]
        assert texts[0] == ("Sorry, we could not read that. Please reply with one number "
                            "from 0 to 10.")
        assert len(texts) == 2  # the help, then the feedback to "6"; no second help
        kinds = db.session.scalars(select(ActivityEvent.kind).where(
            ActivityEvent.participant_id == pid).order_by(ActivityEvent.id)).all()
        assert kinds[-3:] == ["sms_reply_unreadable", "sms_reply_unreadable", "sms_answered"]


def test_an_answer_cancels_the_waiting_reminder(app, client, trial):
    pid = trial["participant"]
    sent_morning_prompt(app, pid)
    with app.app_context():
        assert plan(at(2026, 12, 1, 9, 40))["reminders"] == 1
        (reminder,) = outbox(pid, "reminder")
        assert reminder.send_after == at(2026, 12, 1, 10, 0)
        assert reminder.dedupe_key == f"reminder:{prompt_rows(pid)[0].id}"
    reply(app, client, "4", at(2026, 12, 1, 9, 45))
    with app.app_context():
        assert [m.status for m in outbox(pid, "reminder")] == ["cancelled"]
        assert plan(at(2026, 12, 1, 9, 50))["reminders"] == 0


def test_an_unanswered_prompt_gets_its_reminder_once(app, trial):
    pid = trial["participant"]
    sent_morning_prompt(app, pid)
    with app.app_context():
        plan(at(2026, 12, 1, 9, 55))
        plan(at(2026, 12, 1, 9, 58))
        send_due(at(2026, 12, 1, 10, 0))
        (reminder,) = outbox(pid, "reminder")
        assert reminder.status == "delivered"


def test_no_reminder_for_a_prompt_that_was_never_sent(app, trial):
    pid = trial["participant"]
    with app.app_context():
        plan(at(2026, 12, 1, 8, 45))
        (prompt,) = outbox(pid, "prompt")
        prompt.status = "failed"
        db.session.commit()
        assert plan(at(2026, 12, 1, 9, 50))["reminders"] == 0


def test_prompts_expire_and_a_late_reply_is_stored_but_not_scored(app, client, trial):
    pid = trial["participant"]
    sent_morning_prompt(app, pid)
    with app.app_context():
        clock.set_time(at(2026, 12, 1, 10, 59))
        assert services.expire_due() == 0
        clock.set_time(at(2026, 12, 1, 11, 0))
        assert services.expire_due() == 1
        db.session.commit()
        assert prompt_rows(pid)[0].expired_at == at(2026, 12, 1, 11, 0)
    reply(app, client, "seven", at(2026, 12, 1, 11, 30))
    with app.app_context():
        (late,) = replies(pid)
        assert (late.status, late.value, late.score, late.is_late) == (LATE, 7, None, True)
        assert prompt_rows(pid)[0].answered_at is None
        (note,) = outbox(pid, "reply")
        assert note.body.startswith("Thanks. That question had already closed")
        event = db.session.scalar(select(ActivityEvent).where(ActivityEvent.kind == "sms_answered"))
        assert event.detail["late"] is True
        assert services.response_rates([pid], now=at(2026, 12, 2)) == {pid: (0, 1)}


def test_a_text_with_no_prompt_to_answer_is_unsolicited(app, client, trial):
    pid = trial["participant"]
    assert reply(app, client, "hi is anyone there", at(2026, 12, 1, 9, 0)) == 200
    sent_morning_prompt(app, pid)
    reply(app, client, "5", at(2026, 12, 1, 9, 5))
    reply(app, client, "thank you!", at(2026, 12, 1, 9, 6))
    with app.app_context():
        outcomes = db.session.scalars(select(SmsMessage.outcome).where(
            SmsMessage.direction == "in").order_by(SmsMessage.id)).all()
        assert outcomes == ["unsolicited", "handled", "unsolicited"]
        assert len(replies(pid)) == 1


def test_an_unreadable_text_after_expiry_goes_to_the_inbox(app, client, trial):
    pid = trial["participant"]
    sent_morning_prompt(app, pid)
    with app.app_context():
        clock.set_time(at(2026, 12, 1, 11, 0))
        services.expire_due()
        db.session.commit()
    reply(app, client, "can someone call me", at(2026, 12, 1, 11, 30))
    with app.app_context():
        assert replies(pid) == []
        assert db.session.scalar(select(SmsMessage.outcome).where(
            SmsMessage.direction == "in")) == "unsolicited"


def test_a_reply_answers_the_most_recent_open_prompt(app, client, trial):
    pid = trial["participant"]
    sent_morning_prompt(app, pid)
    with app.app_context():
        morning = prompt_rows(pid)[0]
        morning.expires_at = at(2026, 12, 1, 23, 0)  # still open in the evening
        db.session.commit()
        # the evening yes/no prompt of 1 December (random 17:00-20:00) goes out too
        evening = _evening(pid)[0]
        send_due(evening.planned_at)
        sent = evening.planned_at
    reply(app, client, "Yeah", sent + timedelta(minutes=3))
    reply(app, client, "5", sent + timedelta(minutes=4))
    with app.app_context():
        assert [(r.prompt_key, r.value) for r in replies(pid)] == [("talked", True),
                                                                   ("lonely", 5)]


def test_a_bare_yes_answers_a_yes_no_prompt(app, client, trial):
    """A bare YES means START only for someone who opted out; otherwise it is an answer."""
    pid = trial["participant"]
    with app.app_context():
        planned_at = _evening(pid)[0].planned_at
        send_due(planned_at)
    reply(app, client, "Yes", planned_at + timedelta(minutes=3))
    with app.app_context():
        assert [(r.prompt_key, r.value) for r in replies(pid)] == [("talked", True)]


def _evening(pid):
    for minute in range(16 * 60 + 30, 20 * 60 + 1, 5):
        plan(at(2026, 12, 1, minute // 60, minute % 60))
        rows = [r for r in prompt_rows(pid) if r.prompt_key == "talked"]
        if rows:
            return rows
    return []


# --- STOP, START, HELP -------------------------------------------------------------------------

def test_stop_is_counted_as_an_sms_withdrawal_once_and_start_resumes(app, client, trial):
    pid = trial["participant"]
    with app.app_context():
        plan(at(2026, 12, 1, 8, 40))
    reply(app, client, "STOP", at(2026, 12, 1, 8, 45))
    reply(app, client, "stop", at(2026, 12, 1, 8, 46))
    with app.app_context():
        person = participant(pid)
        assert person.sms_opted_out_at is not None
        assert person.sms_consent is True  # kept, so START can resume
        (withdrawal,) = db.session.scalars(select(Withdrawal)).all()
        assert (withdrawal.kind, withdrawal.recorded_by_id) == ("sms", None)
        study = db.session.get(Study, trial["study"])
        assert path.withdrawal_counts(study) == {("sms", person.arm_id): 1}
        assert [m.status for m in outbox(pid, "prompt")] == ["cancelled"]
        assert plan(at(2026, 12, 2, 8, 45))["prompts"] == 0
    reply(app, client, "START", at(2026, 12, 2, 12, 0))
    with app.app_context():
        assert participant(pid).sms_opted_out_at is None
        assert plan(at(2026, 12, 3, 8, 45))["prompts"] == 1
        assert db.session.scalar(select(func.count(Withdrawal.id))) == 1


def test_help_answers_with_the_study_contact_and_a_crisis_line(app, client, trial):
    pid = trial["participant"]
    reply(app, client, "HELP", at(2026, 12, 1, 12, 0))
    with app.app_context():
        (answer,) = outbox(pid, "help")
        assert "Study team: 01234 567890, weekdays." in answer.body
        assert "Samaritans: 116 123" in answer.body


# --- response rates and the staff view ------------------------------------------------------------

def test_response_rate_counts_delivered_prompts_only(app, client, trial):
    pid = trial["participant"]
    sent_morning_prompt(app, pid)
    reply(app, client, "3", at(2026, 12, 1, 9, 5))
    with app.app_context():
        for day in (2, 3, 4):
            plan(at(2026, 12, day, 8, 45))
            send_due(at(2026, 12, day, 9, 0))
        undelivered = outbox(pid, "prompt")[1]  # 2 December
        undelivered.status = "undelivered"
        db.session.commit()
        now = at(2026, 12, 4, 12, 0)
        assert services.response_rates([pid, 999], now=now) == {pid: (1, 3), 999: (0, 0)}
        assert services.response_rates([pid], start=at(2026, 12, 2), now=now) == {pid: (0, 2)}
        # a prompt still open does not count yet
        assert services.response_rates([pid], now=at(2026, 12, 4, 9, 30)) == {pid: (1, 2)}


def test_sms_answers_for_lists_answers_newest_first(app, client, trial):
    pid = trial["participant"]
    sent_morning_prompt(app, pid)
    reply(app, client, "hmm", at(2026, 12, 1, 9, 5))
    reply(app, client, "7/10", at(2026, 12, 1, 9, 6))
    with app.app_context():
        answers = services.sms_answers_for(db.session.get(Participant, pid))
        assert [(a.label, a.status, a.shown) for a in answers] == [
            ("Loneliness today (0-10)", "answered", "7"),
            ("Loneliness today (0-10)", "unreadable", "—")]


def test_two_planners_at_once_plan_and_queue_once(app, trial):
    """Two processes' planning runs overlapping (a tick during the scheduler's run)."""
    import threading

    pid = trial["participant"]
    clock.set_time(at(2026, 12, 1, 8, 45))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                start.wait(timeout=10)
                services.plan_due()
                db.session.commit()
                db.session.remove()
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with app.app_context():
        assert len(prompt_rows(pid)) == 1
        assert len(outbox(pid)) == 1
