"""Twilio misbehaves for a while: first it cannot be reached at all, then it answers 500s
and times out (having created some of the texts). Meanwhile the outbox rows wait
(``pending``) or stay ``unknown``, never resent blindly; reconciliation looks them up;
afterwards the stand-in holds every prompt exactly once and no row failed."""

from __future__ import annotations

import socket
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.sms import SmsMessage
from core.sms.dispatch import dispatch
from core.sms.reconcile import reconcile
from tests.core.sms import fake_twilio
from tests.core.sms.conftest import use_twilio
from tests.faults.conftest import queue_prompts

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PROMPTS = 12


def by_status() -> dict[str, int]:
    return dict(db.session.execute(select(SmsMessage.status, func.count())
                                   .group_by(SmsMessage.status)).all())


def closed_port() -> int:
    """A local port nothing listens on (connections are refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_no_prompt_is_lost_or_doubled_while_twilio_fails_for_a_while(app, fake):
    clock.set_time(T0)
    with app.app_context():
        expected = queue_prompts(PROMPTS, send_after=T0)

    # Twilio unreachable: every row goes back to wait a minute, nothing was sent
    use_twilio(app, fake, TWILIO_API_BASE=f"http://127.0.0.1:{closed_port()}",
               SMS_RETRY_ATTEMPTS=2)
    with app.app_context():
        report = dispatch()
        assert (report["retry"], report["sent"]) == (PROMPTS, 0)
        assert by_status() == {"pending": PROMPTS}
        assert dispatch()["claimed"] == 0, "a waiting row went out before its time"

    # Twilio answers again, but with 500s and timeouts (a timeout created the text)
    use_twilio(app, fake, SMS_RETRY_ATTEMPTS=2, SMS_TIMEOUT_SECONDS=0.3)
    fake.state.slow_seconds = 0.6
    fake.state.script = [fake_twilio.SERVER_ERROR, fake_twilio.TIMEOUT] * (PROMPTS // 2)
    clock.set_time(T0 + timedelta(minutes=1))
    with app.app_context():
        report = dispatch()
        assert (report["unknown"], report["sent"]) == (PROMPTS, 0)
        assert by_status() == {"unknown": PROMPTS}
        assert dispatch()["claimed"] == 0, "an unknown row was resent blindly"
        assert sum(fake.state.created.values()) == PROMPTS // 2

    # Twilio is well again: reconcile, then send what was proven never created
    clock.set_time(T0 + timedelta(minutes=4))
    with app.app_context():
        settled = reconcile()
        assert (settled["found"], settled["requeued"]) == (PROMPTS // 2, PROMPTS // 2)
        assert dispatch()["sent"] == PROMPTS // 2
        clock.set_time(T0 + timedelta(minutes=8))
        assert reconcile()["checked"] == 0  # nothing left in doubt
        assert dispatch()["claimed"] == 0
        assert by_status() == {"queued": PROMPTS}
        resends = db.session.scalar(select(func.sum(SmsMessage.resends)))
        sids = db.session.scalar(select(func.count(func.distinct(SmsMessage.twilio_sid))))
    assert fake.state.created == Counter(expected), "a prompt was lost or doubled"
    assert resends == PROMPTS // 2 and sids == PROMPTS
