"""The dispatcher is killed (SIGKILL) in the middle of sending and started again: a real
process sends through a slow Twilio stand-in and is killed once some texts went out; a
new process then runs what the scheduler would (dispatch, reconcile after the stuck
limit, dispatch). Every prompt reaches the stand-in exactly once and every row ends
``queued``: nothing doubled, nothing lost."""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.sms import SmsMessage
from tests.core.sms import fake_twilio
from tests.faults.conftest import queue_prompts

pytestmark = pytest.mark.slow

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PROMPTS = 30
#: how many creates the stand-in receives before the dispatcher is killed
KILL_AFTER = 8


def run_dispatcher(config: dict[str, Any], moment: datetime, steps: list[str],
                   results: Any) -> None:
    """A dispatcher process: run ``steps`` (``dispatch``/``reconcile``) at ``moment``."""
    from core import create_app
    from core.sms.dispatch import dispatch
    from core.sms.reconcile import reconcile

    app = create_app(config)
    clock.set_time(moment)
    done = []
    with app.app_context():
        for step in steps:
            done.append((step, dispatch(batch_size=4) if step == "dispatch" else reconcile()))
        db.engine.dispose()
    results.put(done)


def test_a_dispatcher_killed_mid_send_loses_and_doubles_nothing(app, fake):
    clock.set_time(T0)
    with app.app_context():
        expected = queue_prompts(PROMPTS, send_after=T0)
    keys = ("TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "SERVER_NAME", "PUBLIC_URL",
            "WTF_CSRF_ENABLED", "KINSHIP_DEMO")
    config = {key: app.config[key] for key in keys} | {
        "SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": fake_twilio.ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": fake_twilio.AUTH_TOKEN, "TWILIO_FROM": fake_twilio.FROM,
        "TWILIO_API_BASE": fake.url, "SMS_TIMEOUT_SECONDS": 10, "SMS_DISPATCH_THREADS": 2,
        "SMS_SEND_RATE_PER_SECOND": 0, "SMS_MAX_PER_PARTICIPANT_PER_DAY": 8}
    # a slow Twilio: every create answers (in time) after 0.15 s
    fake.state.slow_seconds = 0.15
    fake.state.script = [fake_twilio.TIMEOUT] * PROMPTS
    context = multiprocessing.get_context("spawn")
    results = context.Queue()

    first = context.Process(target=run_dispatcher, args=(config, T0, ["dispatch"], results))
    first.start()
    deadline = time.monotonic() + 60
    while fake.creates() < KILL_AFTER and first.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    first.kill()
    first.join(timeout=10)
    assert first.exitcode == -signal.SIGKILL, "the dispatcher finished before it was killed"
    with app.app_context():
        left = dict(db.session.execute(select(SmsMessage.status, func.count())
                                       .group_by(SmsMessage.status)).all())
    assert left.get("sending", 0) > 0 and left.get("pending", 0) > 0, left
    assert 0 < sum(fake.state.created.values()) < PROMPTS

    # started again, after the stuck limit: what the scheduler runs, in its order
    fake.state.slow_seconds = 0
    later = T0 + timedelta(minutes=11)
    second = context.Process(target=run_dispatcher, args=(
        config, later, ["dispatch", "reconcile", "dispatch"], results))
    second.start()
    second.join(timeout=120)
    assert second.exitcode == 0
    steps = dict(results.get(timeout=10))
    assert steps["reconcile"]["found"] + steps["reconcile"]["requeued"] == left["sending"]

    assert fake.state.created == Counter(expected), "a prompt was lost or doubled"
    with app.app_context():
        statuses = dict(db.session.execute(select(SmsMessage.status, func.count())
                                           .group_by(SmsMessage.status)).all())
        sids = db.session.scalar(select(func.count(func.distinct(SmsMessage.twilio_sid))))
    assert statuses == {"queued": PROMPTS} and sids == PROMPTS
