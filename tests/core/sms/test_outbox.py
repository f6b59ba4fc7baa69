"""The outbox contract: ``queue`` in the caller's transaction, refusals, dedupe, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.sms import SmsMessage, cancel, queue
from core.sms.dispatch import dispatch
from tests.core.sms.conftest import texting_participant


def count() -> int:
    return db.session.scalar(select(func.count(SmsMessage.id)))


def test_queue_adds_a_pending_row_without_committing(app):
    """It flushes a pending outbound row that a rollback takes away again."""
    with app.app_context():
        participant = texting_participant()
        row = queue(participant=participant, body="How lonely today? Reply 0-10",
                    purpose="prompt")
        assert row is not None and row.id is not None
        assert (row.status, row.direction, row.purpose) == ("pending", "out", "prompt")
        db.session.rollback()
        assert count() == 0


def test_queue_refuses_participants_who_may_not_be_texted(app):
    """It returns None and writes nothing without a phone, consent, after STOP, or when
    the account is disabled."""
    with app.app_context():
        participant = texting_participant()
        for change, undo in (("phone", participant.phone), ("sms_consent", True),
                             ("sms_opted_out_at", None)):
            setattr(participant, change, {"phone": None, "sms_consent": False,
                                          "sms_opted_out_at": clock.utcnow()}[change])
            assert queue(participant=participant, body="Hi", purpose="prompt") is None, change
            setattr(participant, change, undo)
        participant.user.is_enabled = False
        assert queue(participant=participant, body="Hi", purpose="prompt") is None
        participant.user.is_enabled = True
        assert queue(participant=participant, body="Hi", purpose="prompt") is not None
        assert count() == 1


def test_same_dedupe_key_is_one_row(app):
    """It returns the first row for a repeated key, even after a commit."""
    with app.app_context():
        participant = texting_participant()
        first = queue(participant=participant, body="Prompt", purpose="prompt",
                      dedupe_key="p1:lonely:2026-12-01")
        db.session.commit()
        again = queue(participant=participant, body="Prompt", purpose="prompt",
                      dedupe_key="p1:lonely:2026-12-01")
        assert again.id == first.id
        assert count() == 1


def test_empty_body_is_refused(app):
    with app.app_context():
        participant = texting_participant()
        try:
            queue(participant=participant, body="  ", purpose="prompt")
        except ValueError:
            pass
        else:
            raise AssertionError("an empty body was queued")


def test_cancel_only_while_pending(app):
    """It cancels a pending row, and refuses once the dispatcher has sent it."""
    with app.app_context():
        participant = texting_participant()
        later = queue(participant=participant, body="Later", purpose="reminder",
                      send_after=clock.utcnow() + timedelta(hours=2))
        now = queue(participant=participant, body="Now", purpose="prompt")
        db.session.commit()
        assert cancel(later) is True
        assert later.status == "cancelled"
        dispatch()
        sent = db.session.get(SmsMessage, now.id)
        assert sent.status == "delivered"  # the console backend
        assert cancel(sent) is False
        assert db.session.get(SmsMessage, later.id).status == "cancelled"


def test_send_after_is_respected(app):
    """It leaves a row alone until its time comes."""
    clock.set_time(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    with app.app_context():
        participant = texting_participant()
        row = queue(participant=participant, body="At ten", purpose="prompt",
                    send_after=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
        db.session.commit()
        assert dispatch()["claimed"] == 0
        clock.set_time(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
        assert dispatch()["sent"] == 1
        assert db.session.get(SmsMessage, row.id).twilio_sid.startswith("SM")
