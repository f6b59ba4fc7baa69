"""The outbox contract: ``queue`` in the caller's transaction, refusals, dedupe, cancel;
and the same for their bulk forms ``queue_many`` and ``cancel_many``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.sms import SmsMessage, cancel, queue
from core.sms.dispatch import dispatch
from core.sms.outbox import Outgoing, cancel_many, queue_many
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


# --- in bulk --------------------------------------------------------------------------------------

def _texts(*participants, key: str = "k", body: str = "How lonely today? Reply 0-10"):
    return [Outgoing(p.id, body, "prompt", f"{key}:{p.id}") for p in participants]


def test_queue_many_adds_pending_rows_without_committing(app):
    """It writes one pending row per text, hands back key -> id, and a rollback takes
    them away again."""
    clock.set_time(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    with app.app_context():
        one = texting_participant("T-0001", "+447700900001")
        two = texting_participant("T-0002", "+447700900002")
        later = clock.utcnow() + timedelta(hours=1)
        ids = queue_many([Outgoing(one.id, "First", "prompt", "a", later),
                          Outgoing(two.id, "Second", "reminder", "b")])
        rows = {row.dedupe_key: row for row in db.session.scalars(select(SmsMessage))}
        assert ids == {"a": rows["a"].id, "b": rows["b"].id}
        assert [(r.participant_id, r.body, r.purpose, r.status, r.direction)
                for r in (rows["a"], rows["b"])] == [
            (one.id, "First", "prompt", "pending", "out"),
            (two.id, "Second", "reminder", "pending", "out")]
        assert rows["a"].send_after == later
        assert rows["b"].send_after == clock.utcnow()
        db.session.rollback()
        assert count() == 0


def test_queue_many_refuses_whoever_may_not_be_texted(app):
    """The checks of ``queue``: no phone, no consent, STOP, a disabled account. The
    others in the same call are queued."""
    with app.app_context():
        people = [texting_participant(f"T-000{n}", f"+44770090000{n}") for n in range(5)]
        ok, no_phone, no_consent, stopped, disabled = people
        no_phone.phone = None
        no_consent.sms_consent = False
        stopped.sms_opted_out_at = clock.utcnow()
        disabled.user.is_enabled = False
        ids = queue_many(_texts(*people))
        assert list(ids) == [f"k:{ok.id}"]
        assert db.session.scalars(select(SmsMessage.participant_id)).all() == [ok.id]


def test_queue_many_writes_each_dedupe_key_once(app):
    """A key already in the outbox (even committed) or twice in one call is one row,
    and its first row is handed back unchanged."""
    with app.app_context():
        one = texting_participant("T-0001", "+447700900001")
        two = texting_participant("T-0002", "+447700900002")
        first = queue(participant=one, body="First", purpose="prompt", dedupe_key=f"k:{one.id}")
        db.session.commit()
        ids = queue_many(_texts(one, two, body="Again") + _texts(two, body="Twice"))
        assert ids[f"k:{one.id}"] == first.id
        assert count() == 2
        bodies = dict(db.session.execute(select(SmsMessage.participant_id, SmsMessage.body)).all())
        assert bodies == {one.id: "First", two.id: "Again"}
        assert queue_many(_texts(one, two)) == ids
        assert count() == 2


def test_queue_many_refuses_an_empty_body_or_a_missing_key_and_writes_nothing(app):
    with app.app_context():
        one = texting_participant()
        for bad in (Outgoing(one.id, " ", "prompt", "a"), Outgoing(one.id, "Hi", "prompt", "")):
            with pytest.raises(ValueError):
                queue_many(_texts(one) + [bad])
        assert count() == 0
        assert queue_many([]) == {}


def test_cancel_many_cancels_pending_rows_only(app):
    """It cancels still-pending outbound rows, counts them, leaves sent ones alone, and
    a row already loaded reads its new status."""
    with app.app_context():
        participant = texting_participant()
        later = queue(participant=participant, body="Later", purpose="reminder",
                      send_after=clock.utcnow() + timedelta(hours=2))
        now = queue(participant=participant, body="Now", purpose="prompt")
        db.session.commit()
        dispatch()
        assert db.session.get(SmsMessage, now.id).status == "delivered"
        assert later.status == "pending"
        assert cancel_many([later.id, now.id, later.id], reason="withdrawn") == 1
        assert (later.status, later.reason) == ("cancelled", "withdrawn")
        assert db.session.get(SmsMessage, now.id).status == "delivered"
        assert cancel_many([later.id]) == 0
        assert cancel_many([]) == 0
