"""The scheduler after the database comes back: a tick while the database is away fails
and writes nothing, a tick cut off half-way (prompts planned, their texts being queued)
is rolled back whole, and the next ticks queue every due prompt exactly once (the
outbox's unique keys), however many ticks run."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from core import clock, scheduler
from core.extensions import db
from core.sms.models import SmsMessage
from outcomes.prompts.models import PlannedPrompt
from tests.faults.conftest import interrupt_after
from tests.outcomes.prompts.helpers import at, setup_trial

PLAN = next(job for job in scheduler.JOBS if job.id == "sms.plan")
PARTICIPANTS = 4


def counts() -> tuple[int, int, int]:
    """Planned prompts, outbound texts, and distinct dedupe keys among those texts."""
    return (db.session.scalar(select(func.count()).select_from(PlannedPrompt)),
            db.session.scalar(select(func.count()).select_from(SmsMessage)),
            db.session.scalar(select(func.count(func.distinct(SmsMessage.dedupe_key)))))


def test_plan_ticks_after_an_outage_queue_every_prompt_once(outage):
    app = outage.app
    with app.app_context():
        for n in range(PARTICIPANTS):
            setup_trial(code=f"T-{n:04d}", phone=f"+4477009001{n:02d}")
    clock.set_time(at(2026, 12, 1, 9, 0))  # the morning prompts are due

    outage.cut()
    try:
        with pytest.raises(OperationalError):
            scheduler.run_job(app, PLAN)  # the tick while the database is away
    finally:
        outage.restore()

    with app.app_context():
        engine = db.engine
    hook = interrupt_after(outage, "sms_message")
    event.listen(engine, "after_cursor_execute", hook)
    try:
        with pytest.raises(OperationalError):
            scheduler.run_job(app, PLAN)  # cut off after the prompts were planned
    finally:
        event.remove(engine, "after_cursor_execute", hook)
        if outage.postgres:
            outage.restore()
    with app.app_context():
        assert counts() == (0, 0, 0), "a half-done tick left rows behind"

    first = scheduler.run_job(app, PLAN)
    again = [scheduler.run_job(app, PLAN) for _ in range(2)]
    assert first["prompts"] >= PARTICIPANTS
    assert [tick["prompts"] for tick in again] == [0, 0]
    with app.app_context():
        planned, texts, keys = counts()
    assert planned == texts == keys == first["prompts"]
