"""The reminder job: in the app and by SMS at the schedule's days, each once, none after
completion or for people who left the study or cannot be texted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from core.extensions import db
from core.notifications import Notification
from core.roles import Role
from core.scheduler import JOBS
from core.sms import SmsMessage
from outcomes import participants as path
from outcomes.assessments import jobs, services
from outcomes.assessments.models import AssessmentReminder
from tests.factories import make_staff
from tests.outcomes.assessments.helpers import (
    answers_for,
    consented,
    freeze,
    make_scheduled_study,
    randomised,
)

#: a Sunday, noon in London (GMT)
CONSENT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PHONE = "+447700900123"


def run(at):
    freeze(at)
    counts = jobs.send_reminders()
    db.session.commit()
    return counts


def notifications(user_id):
    return db.session.scalars(select(Notification).where(Notification.user_id == user_id)
                              .order_by(Notification.id)).all()


def texts(pid):
    return db.session.scalars(select(SmsMessage).where(SmsMessage.participant_id == pid)
                              .order_by(SmsMessage.id)).all()


def test_the_job_is_scheduled():
    job = next(job for job in JOBS if job.id == "outcomes.assessment_reminders")
    assert jobs.send_reminders.__name__ == job.func.rsplit(":", 1)[1]


def test_reminders_go_out_once_at_each_day(app):
    with app.app_context():
        study = make_scheduled_study()
        person = consented(study, at=CONSENT, phone=PHONE)
        assert run(CONSENT + timedelta(hours=1)) == {"app_sent": 1}
        assert run(CONSENT + timedelta(hours=2)) == {}
        [note] = notifications(person.user_id)
        assert note.kind == "assessment_due" and note.url == "/questionnaires/"
        assert note.text == "Your Baseline questionnaires are ready to fill in."
        assert texts(person.id) == []
        # day 3 after the local day of consent, 10:00 in London: app and SMS
        assert run(datetime(2026, 3, 4, 10, 0, tzinfo=UTC)) == {"app_sent": 1, "sms_sent": 1}
        assert run(datetime(2026, 3, 4, 10, 15, tzinfo=UTC)) == {}
        [sms] = texts(person.id)
        assert sms.purpose == "assessment_reminder" and sms.status == "pending"
        assert "http://kinship.test/questionnaires/" in sms.body
        assert "Baseline" in sms.body and str(person.study_code) not in sms.body
        assert sms.send_after == datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
        assert len(notifications(person.user_id)) == 2


def test_a_late_run_sends_only_the_latest_reminder_and_holds_texts_for_the_morning(app):
    with app.app_context():
        study = make_scheduled_study()
        person = consented(study, at=CONSENT, phone=PHONE)
        late_at_night = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # day 8, 23:30 in London
        assert run(late_at_night) == {"app_sent": 1, "sms_sent": 1}
        assert [n.text for n in notifications(person.user_id)] == [
            "A reminder: your Baseline questionnaires are waiting for you."]
        [sms] = texts(person.id)
        assert sms.send_after == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
        days = db.session.scalars(select(AssessmentReminder.day)).all()
        assert days == [7, 7]
        assert run(late_at_night + timedelta(days=1)) == {}


def test_no_reminder_once_the_questionnaires_are_done(app):
    with app.app_context():
        study = make_scheduled_study()
        person = consented(study, at=CONSENT, phone=PHONE)
        run(CONSENT + timedelta(hours=1))
        baseline = services.timepoint_by_key(study.id, "baseline")
        for name in baseline.instruments:
            response = services.start(person, baseline, name)
            for number, value in answers_for(name).items():
                services.save_answer(response, person, number, value)
            services.submit(response, person)
        db.session.commit()
        assert run(CONSENT + timedelta(days=3, hours=1)) == {}
        assert len(notifications(person.user_id)) == 1 and texts(person.id) == []


def test_no_reminder_for_someone_who_left_the_study(app):
    with app.app_context():
        freeze(CONSENT)
        study = make_scheduled_study()
        person = consented(study, at=CONSENT, phone=PHONE)
        freeze(CONSENT + timedelta(minutes=5))
        path.withdraw(person, "study", actor=make_staff(Role.RESEARCHER), reason="Asked to")
        db.session.commit()
        assert run(CONSENT + timedelta(days=4)) == {}
        assert notifications(person.user_id) == [] and texts(person.id) == []


def test_someone_who_cannot_be_texted_gets_the_app_reminder_only(app):
    with app.app_context():
        study = make_scheduled_study()
        person = consented(study, at=CONSENT)  # no phone, no SMS consent
        stopped = consented(study, "T-0002", at=CONSENT, phone="+447700900124")
        stopped.sms_opted_out_at = CONSENT
        db.session.commit()
        at = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
        assert run(at) == {"app_sent": 2, "sms_not_sent": 2}
        assert db.session.scalar(select(func.count(SmsMessage.id))) == 0
        assert run(at + timedelta(hours=1)) == {}  # not tried again every run
        assert len(notifications(person.user_id)) == 1


def test_a_follow_up_reminder_starts_on_the_local_opening_day(app):
    """Week 6 in Auckland opens at local midnight of day 35: the day-0 reminder waits
    for it, then comes once, by app and by SMS (held until 09:00 local)."""
    with app.app_context():
        study = make_scheduled_study()
        randomised_at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
        person = randomised(study, at=randomised_at, timezone="Pacific/Auckland", phone=PHONE)
        opens = datetime(2026, 4, 5, 12, 0, tzinfo=UTC)  # 6 April 00:00 NZST
        run(opens - timedelta(minutes=1))
        before = {(r.timepoint_id, r.day) for r in db.session.scalars(select(AssessmentReminder))}
        week6 = services.timepoint_by_key(study.id, "week6")
        assert all(tp != week6.id for tp, _ in before)
        assert run(opens) == {"app_sent": 1, "sms_sent": 1}
        sms = texts(person.id)[-1]
        assert "Week 6" in sms.body
        assert sms.send_after == datetime(2026, 4, 5, 21, 0, tzinfo=UTC)  # 09:00 local
        assert run(opens + timedelta(hours=3)) == {}
