"""The ``sms.plan`` job at scale: a fixed number of statements whatever the number of
participants, and the same decisions as one participant at a time
(``prompts_paused_because``, ``planner.plan_slot``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import event, select, update

from core import clock
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from core.sms.models import SmsMessage
from outcomes import participants as path
from outcomes.models import Arm
from outcomes.prompts import services
from outcomes.prompts.models import PlannedPrompt
from tests.outcomes.prompts.helpers import at, outbox, participant, plan, send_due, setup_trial


def statements(action: Callable[[], object]) -> tuple[int, object]:
    """How many SQL statements ``action`` sends, and what it returns."""
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        result = action()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(seen), result


def enrol(first: int, last: int) -> list[int]:
    return [setup_trial(code=f"T-{n:04d}", phone=f"+4477009{n:05d}")["participant"]
            for n in range(first, last)]


def a_day(day: int) -> tuple[tuple[int, dict], tuple[int, dict]]:
    """Plan the 09:00 prompts of ``day`` December, send them, plan their reminders (and
    send those)."""
    prompts = statements(lambda: plan(at(2026, 12, day, 8, 45)))
    send_due(at(2026, 12, day, 9, 0))
    reminders = statements(lambda: plan(at(2026, 12, day, 9, 40)))
    send_due(at(2026, 12, day, 10, 0))
    return prompts, reminders


def test_planning_takes_the_same_statements_for_two_or_seven_participants(app):
    with app.app_context():
        enrol(0, 2)
        (few, planned), (few_reminding, reminded) = a_day(1)
        assert (planned["prompts"], reminded["reminders"]) == (2, 2)
        enrol(2, 7)
        (many, planned), (many_reminding, reminded) = a_day(2)
        assert (planned["prompts"], reminded["reminders"]) == (7, 7)
        assert many == few
        assert many_reminding == few_reminding
        # nothing left to do costs as little, and does nothing
        idle, counts = statements(lambda: plan(at(2026, 12, 2, 9, 42)))
        assert counts == {"prompts": 0, "reminders": 0, "cancelled": 0}
        assert idle <= few
        assert len(db.session.scalars(select(SmsMessage.id)).all()) == 2 * 2 + 2 * 7


def test_cancelling_takes_the_same_statements_for_two_or_seven_participants(app):
    with app.app_context():
        found = []
        for first, last, day in ((0, 2, 1), (2, 7, 2)):
            enrol(first, last)
            db.session.execute(update(Participant).values(sms_consent=True))
            db.session.commit()
            plan(at(2026, 12, day, 8, 45))
            db.session.execute(update(Participant).values(sms_consent=False))
            db.session.commit()
            found.append(statements(lambda day=day: plan(at(2026, 12, day, 8, 50))))
        (few, two), (many, seven) = found
        assert (two["cancelled"], seven["cancelled"]) == (2, 7)
        assert many == few
        assert {m.status for m in db.session.scalars(select(SmsMessage))} == {"cancelled"}


def test_the_bulk_planner_decides_as_one_participant_at_a_time(app):
    """A mixed population: only those ``prompts_paused_because`` lets through, whose
    09:00 is due, get a prompt, each at the time ``planner`` gives."""
    when = at(2026, 12, 1, 8, 45)
    with app.app_context():
        names = ["ok", "unknown_zone", "left_intervention", "los_angeles", "withdrawn",
                 "sms_withdrawal", "opted_out", "no_consent", "completed", "disabled", "no_phone",
                 "arm_without_sms", "randomised_after_the_slot"]
        ids = {name: setup_trial(code=f"T-{n:04d}", phone=f"+4477009{n:05d}")["participant"]
               for n, name in enumerate(names)}
        clock.set_time(when)
        researcher = db.session.scalar(select(User).where(User.role == Role.RESEARCHER))
        people = {name: participant(pid) for name, pid in ids.items()}
        people["unknown_zone"].timezone = "Mars/Olympus_Mons"  # the default zone: London
        people["los_angeles"].timezone = "America/Los_Angeles"  # 00:45 there: nothing due
        path.withdraw(people["left_intervention"], "intervention", actor=researcher,
                      reason="Too busy")
        path.withdraw(people["withdrawn"], "study", actor=researcher, reason="Moved away")
        path.withdraw(people["sms_withdrawal"], "sms", actor=researcher, reason="By phone")
        people["opted_out"].sms_opted_out_at = when
        people["no_consent"].sms_consent = False
        people["completed"].status = "completed"
        people["disabled"].user.is_enabled = False
        people["no_phone"].phone = None
        study_id = people["ok"].study_id
        no_sms = Arm(study_id=study_id, code="nosms", name="No SMS", features={"sms": False})
        db.session.add(no_sms)
        db.session.flush()
        people["arm_without_sms"].arm_id = no_sms.id
        people["randomised_after_the_slot"].randomised_at = at(2026, 12, 1, 9, 10)
        db.session.commit()

        protocol = services._protocols()[study_id][1]
        paused = {name: services.prompts_paused_because(person, protocol, now=when)
                  for name, person in people.items()}
        assert paused == {
            "ok": None, "unknown_zone": None, "left_intervention": None, "los_angeles": None,
            "withdrawn": "withdrawn from the study", "sms_withdrawal": "no SMS consent",
            "opted_out": "texted STOP", "no_consent": "no SMS consent",
            "completed": "status completed", "disabled": "account disabled",
            "no_phone": "no mobile number", "arm_without_sms": services.NO_SMS_ARM,
            "randomised_after_the_slot": None}

        assert plan(when)["prompts"] == 3
        rows = db.session.scalars(select(PlannedPrompt).order_by(PlannedPrompt.id)).all()
        planned = {name for name, pid in ids.items() if any(r.participant_id == pid for r in rows)}
        assert planned == {"ok", "unknown_zone", "left_intervention"}
        for row in rows:
            assert (row.prompt_key, row.slot, row.planned_at) == (
                "lonely", date(2026, 12, 1), at(2026, 12, 1, 9, 0))
            (message,) = outbox(row.participant_id)
            assert (message.id, message.dedupe_key, message.send_after) == (
                row.message_id, f"prompt:{row.id}", row.planned_at)


def test_a_row_already_there_is_reused_and_an_answered_one_is_left_alone(app):
    """A prompt row without a text (planned earlier, or by another planner) gets its text
    at the row's own time; a row already answered gets none."""
    with app.app_context():
        waiting, answered = enrol(0, 2)
        version = services._protocols()[participant(waiting).study_id][0]
        for pid, done in ((waiting, None), (answered, at(2026, 12, 1, 8, 0))):
            db.session.add(PlannedPrompt(
                participant_id=pid, protocol_version_id=version.id, prompt_key="lonely",
                slot=date(2026, 12, 1), planned_at=at(2026, 12, 1, 9, 5),
                expires_at=at(2026, 12, 1, 11, 5), reminder_at=None, answered_at=done))
        db.session.commit()
        assert plan(at(2026, 12, 1, 8, 45))["prompts"] == 1
        (row,) = db.session.scalars(select(PlannedPrompt).where(
            PlannedPrompt.participant_id == waiting)).all()
        (message,) = outbox(waiting)
        assert (row.message_id, message.send_after) == (message.id, at(2026, 12, 1, 9, 5))
        assert outbox(answered) == []
        assert len(db.session.scalars(select(PlannedPrompt.id)).all()) == 2
