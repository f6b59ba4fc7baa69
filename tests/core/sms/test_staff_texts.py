"""Texts to staff phones (risk alerts to clinicians) through the same outbox, dispatch,
reconciliation and status-callback path as participants' texts: rows without a
participant, carrying the number, sent with the real twilio client against the fake."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from core.sms import SmsMessage, outbox
from core.sms.dispatch import dispatch
from core.sms.reconcile import reconcile
from tests.core.sms import fake_twilio
from tests.core.sms.conftest import signed_post, texting_participant

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
STAFF_PHONE = "+447400123456"
BODY = "Kinship: risk alert #12 needs you by 10:00 UTC. Open the app."


def staff_row(key: str = "risk_alert:12:1:a", body: str = BODY,
              phone: str = STAFF_PHONE) -> SmsMessage:
    row = outbox.queue_staff(phone=phone, body=body, dedupe_key=key)
    db.session.commit()
    return row


def reload(row_id: int) -> SmsMessage:
    db.session.expire_all()
    return db.session.get(SmsMessage, row_id)


# --------------------------------------------------------------------------- the outbox row


def test_staff_row_has_no_participant_and_carries_the_number(app):
    clock.set_time(T0)
    with app.app_context():
        row = staff_row()
        assert (row.direction, row.participant_id, row.phone, row.purpose, row.status) == (
            "out", None, STAFF_PHONE, "staff_alert", "pending")
        assert row.send_after == T0 and row.dedupe_key == "risk_alert:12:1:a"


def test_same_key_is_one_row(app):
    with app.app_context():
        first = staff_row()
        second = staff_row()
        assert first.id == second.id
        assert len(db.session.scalars(select(SmsMessage)).all()) == 1


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"phone": "07400123456"}, "E.164"),
    ({"phone": ""}, "E.164"),
    ({"body": ""}, "body"),
    ({"body": "x" * 161}, "body"),
    ({"dedupe_key": ""}, "dedupe key"),
    ({"purpose": "prompt"}, "purpose"),
])
def test_bad_staff_rows_are_refused(app, kwargs, problem):
    with app.app_context():
        values = {"phone": STAFF_PHONE, "body": BODY, "dedupe_key": "k", **kwargs}
        with pytest.raises(ValueError, match=problem):
            outbox.queue_staff(**values)
        assert db.session.scalars(select(SmsMessage)).all() == []


# --------------------------------------------------------------------------- dispatch


def test_dispatch_sends_a_staff_text_through_twilio(twilio_app, fake):
    clock.set_time(T0)
    with twilio_app.app_context():
        row = staff_row()
        report = dispatch()
        row = reload(row.id)
    assert report["sent"] == 1 and dict(report["cancelled"]) == {}
    assert row.status == "queued" and row.twilio_sid in fake.state.messages
    remote = fake.state.messages[row.twilio_sid]
    assert (remote["to"], remote["body"], remote["from"]) == (STAFF_PHONE, BODY, fake_twilio.FROM)
    assert remote["_callback"] == f"http://kinship.test/sms/twilio/status/{row.id}"


def test_staff_texts_do_not_count_against_a_participant_limit(twilio_app, fake):
    """The daily cost guard is per participant; staff alerts are never held back by it,
    and a participant's own texts still are."""
    twilio_app.config["SMS_MAX_PER_PARTICIPANT_PER_DAY"] = 1
    clock.set_time(T0)
    with twilio_app.app_context():
        participant = texting_participant()
        outbox.queue(participant=participant, body="Prompt 1", purpose="prompt")
        outbox.queue(participant=participant, body="Prompt 2", purpose="prompt")
        for number in range(3):
            staff_row(key=f"risk_alert:{number}:1:a",
                      body=BODY.replace("#12", f"#{number + 20}"))
        report = dispatch()
    assert report["sent"] == 4 and dict(report["cancelled"]) == {"daily_limit": 1}


def test_a_row_without_participant_or_number_is_cancelled_not_sent(twilio_app, fake):
    """Only staff purposes may go out without a participant, and only with a number."""
    clock.set_time(T0)
    with twilio_app.app_context():
        stray = SmsMessage(direction="out", participant_id=None, phone=STAFF_PHONE,
                           purpose="prompt", body="Hello", status="pending", send_after=T0)
        numberless = SmsMessage(direction="out", participant_id=None, phone=None,
                                purpose="staff_alert", body=BODY, status="pending",
                                send_after=T0)
        db.session.add_all([stray, numberless])
        db.session.commit()
        report = dispatch()
        assert reload(stray.id).status == "cancelled"
        assert (reload(numberless.id).status, reload(numberless.id).reason) == (
            "cancelled", "no_phone")
    assert report["sent"] == 0 and fake.creates() == 0


def test_unknown_staff_text_is_reconciled_without_a_blind_resend(twilio_app, fake):
    """A 500 leaves it unknown; reconciliation (by the number on the row) finds Twilio
    never created it and sends it once more; a timeout after creation is found by
    listing and not sent again."""
    clock.set_time(T0)
    with twilio_app.app_context():
        lost = staff_row(key="k:lost")
        fake.state.script = [fake_twilio.SERVER_ERROR]
        assert dispatch()["unknown"] == 1
        clock.set_time(T0 + timedelta(minutes=3))
        assert reconcile()["requeued"] == 1
        assert dispatch()["sent"] == 1
        lost = reload(lost.id)
        assert (lost.status, lost.resends, lost.participant_id) == ("queued", 1, None)
    assert sum(fake.state.created.values()) == 1


def test_staff_text_that_timed_out_is_found_by_listing(twilio_app, fake):
    fake.state.slow_seconds = 1.0
    clock.set_time(T0)
    with twilio_app.app_context():
        row = staff_row(key="k:slow")
        fake.state.script = [fake_twilio.TIMEOUT]
        assert dispatch()["unknown"] == 1
        clock.set_time(T0 + timedelta(minutes=3))
        assert reconcile()["found"] == 1
        row = reload(row.id)
        assert row.status == "queued" and row.twilio_sid in fake.state.messages
        assert dispatch()["claimed"] == 0
    assert fake.creates() == 1


def test_status_callbacks_move_a_staff_text_forward(twilio_app, fake):
    clock.set_time(T0)
    client = twilio_app.test_client()
    with twilio_app.app_context():
        row = staff_row()
        dispatch()
        row = reload(row.id)
        row_id, sid = row.id, row.twilio_sid
    for status in ("sent", "delivered"):
        params = {"MessageSid": sid, "MessageStatus": status,
                  "AccountSid": fake_twilio.ACCOUNT_SID, "To": STAFF_PHONE,
                  "From": fake_twilio.FROM, "ApiVersion": "2010-04-01"}
        response = signed_post(client, twilio_app, f"/sms/twilio/status/{row_id}", params)
        assert response.status_code == 204
    with twilio_app.app_context():
        assert reload(row_id).status == "delivered"


def test_21610_on_a_staff_text_fails_it_and_touches_no_participant(twilio_app, fake):
    """A staff phone that texted STOP to the number: the send fails with its code; no
    participant is opted out (there is none)."""
    clock.set_time(T0)
    with twilio_app.app_context():
        participant = texting_participant()
        row = staff_row()
        fake.state.script = ["21610"]
        dispatch()
        row = reload(row.id)
        assert (row.status, row.error_code) == ("failed", 21610)
        db.session.refresh(participant)
        assert participant.sms_opted_out_at is None


def test_no_log_line_carries_the_staff_number_or_the_text(twilio_app, fake, caplog):
    caplog.set_level(logging.DEBUG)
    clock.set_time(T0)
    with twilio_app.app_context():
        staff_row()
        dispatch()
    assert STAFF_PHONE not in caplog.text and "123456" not in caplog.text
    assert "needs you by" not in caplog.text
