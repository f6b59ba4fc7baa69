"""Exactly once: several dispatcher processes at the same time, on the same database,
with leader election out of the picture (each calls the dispatch function directly), send
a simulated day of prompts for 200 participants, and the Twilio stand-in receives every
text exactly once. Three processes on PostgreSQL, two on SQLite."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from core.sms import SmsMessage, queue
from tests.core.sms import fake_twilio
from tests.factories import make_study

pytestmark = pytest.mark.slow

PARTICIPANTS = 200
#: prompts per participant per day: morning, afternoon and evening, minutes apart
SLOTS = ((9, 0), (13, 30), (19, 45))
DAY = datetime(2026, 12, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)


def simulated_day() -> list[datetime]:
    """The dispatcher's ticks from 08:00 to 22:00."""
    start, end = DAY.replace(hour=8), DAY.replace(hour=22)
    return [start + STEP * n for n in range(int((end - start) / STEP) + 1)]


def worker(config: dict[str, Any], barrier: Any, results: Any) -> None:
    """One dispatcher process: walk the simulated day in step with the others."""
    from core import clock, create_app
    from core.sms.dispatch import dispatch

    app = create_app(config)
    sent = 0
    with app.app_context():
        for moment in simulated_day():
            barrier.wait(timeout=60)  # everyone dispatches the same due rows at once
            clock.set_time(moment)
            sent += int(dispatch(batch_size=7)["sent"])
        db.engine.dispose()
    results.put(sent)


def plan_day(app) -> list[tuple[str, str]]:
    """200 texting participants with three prompts each, queued for the day."""
    expected = []
    with app.app_context():
        study = make_study()
        users = [User(role=Role.PARTICIPANT) for _ in range(PARTICIPANTS)]
        db.session.add_all(users)
        db.session.flush()
        people = [Participant(user_id=user.id, study_id=study.id, study_code=f"X-{n:04d}",
                              phone=f"+4477009{n:05d}", sms_consent=True,
                              timezone="Europe/London")
                  for n, user in enumerate(users)]
        db.session.add_all(people)
        db.session.flush()
        for n, person in enumerate(people):
            for slot, (hour, minute) in enumerate(SLOTS):
                at = DAY.replace(hour=hour, minute=minute) + timedelta(seconds=37 * n)
                body = f"How lonely did you feel? Reply 0-10 ({person.study_code}/{slot})"
                queue(participant=person, body=body, purpose="prompt",
                      dedupe_key=f"{person.id}:{slot}:2026-12-01", send_after=at)
                expected.append((person.phone, body))
        db.session.commit()
    return expected


def test_every_prompt_is_sent_exactly_once_by_competing_dispatchers(app, fake):
    expected = plan_day(app)
    dialect = "postgresql" if app.config["SQLALCHEMY_DATABASE_URI"].startswith(
        "postgresql") else "sqlite"
    processes = 3 if dialect == "postgresql" else 2
    keys = ("TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "SERVER_NAME", "PUBLIC_URL",
            "WTF_CSRF_ENABLED", "KINSHIP_DEMO")
    config = {key: app.config[key] for key in keys} | {
        "SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": fake_twilio.ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": fake_twilio.AUTH_TOKEN, "TWILIO_FROM": fake_twilio.FROM,
        "TWILIO_API_BASE": fake.url, "SMS_TIMEOUT_SECONDS": 10,
        "SMS_SEND_RATE_PER_SECOND": 0, "SMS_MAX_PER_PARTICIPANT_PER_DAY": 8}
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=worker, args=(config, barrier, results))
               for _ in range(processes)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert all(process.exitcode == 0 for process in workers), [p.exitcode for p in workers]
    per_worker = [results.get(timeout=5) for _ in workers]

    assert len(expected) == PARTICIPANTS * len(SLOTS) == 600
    assert fake.creates() == 600, "the stand-in received a create more (or less) than once"
    assert fake.state.created == Counter(expected)
    assert sum(per_worker) == 600
    assert sum(1 for n in per_worker if n > 0) >= 2, f"no competition: {per_worker}"
    with app.app_context():
        by_status = dict(db.session.execute(
            select(SmsMessage.status, func.count()).group_by(SmsMessage.status)).all())
        assert by_status == {"queued": 600}
        sids = db.session.scalar(select(func.count(func.distinct(SmsMessage.twilio_sid))))
        assert sids == 600
