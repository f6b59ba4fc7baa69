"""The Twilio webhooks: signatures (valid, invalid, missing, behind a proxy), duplicate
deliveries, TwiML answers, and status callbacks that only move forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from core import clock
from core.extensions import db
from core.models import Participant
from core.sms import SmsMessage, queue, register_inbound_handler
from core.sms.dispatch import dispatch
from core.sms.statuses import meaning
from tests.core.sms.conftest import (
    PHONE,
    inbound_params,
    signed_post,
    texting_participant,
)

INBOUND = "/sms/twilio/inbound"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def inbound_count() -> int:
    return db.session.scalar(select(func.count(SmsMessage.id)).where(SmsMessage.direction == "in"))


@pytest.fixture
def participant_id(app) -> int:
    with app.app_context():
        return texting_participant().id


# --- inbound -----------------------------------------------------------------------

def test_signed_inbound_text_is_stored_and_answered_with_twiml(app, client, participant_id):
    response = signed_post(client, app, INBOUND, inbound_params("7"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.data.decode().endswith("<Response />")
    with app.app_context():
        row = db.session.scalar(select(SmsMessage).where(SmsMessage.direction == "in"))
        assert (row.participant_id, row.body, row.phone, row.status) == (
            participant_id, "7", PHONE, "received")
        assert row.outcome == "unsolicited" and row.handled_at is not None


@pytest.mark.parametrize("how", ["missing", "wrong token", "tampered body", "other url"])
def test_inbound_without_a_valid_signature_is_refused_and_not_stored(app, client,
                                                                      participant_id, how):
    params = inbound_params("7")
    if how == "missing":
        response = client.post(INBOUND, data=params)
    elif how == "wrong token":
        response = signed_post(client, app, INBOUND, params, token="not-the-token")
    elif how == "tampered body":
        good = RequestValidator(
            app.config["TWILIO_AUTH_TOKEN"]).compute_signature(
            "http://kinship.test" + INBOUND, params)
        response = signed_post(client, app, INBOUND, {**params, "Body": "STOP"},
                               signature=good)
    else:
        response = signed_post(client, app, INBOUND, params,
                               url="http://evil.example" + INBOUND)
    assert response.status_code == 403
    with app.app_context():
        assert inbound_count() == 0


def test_signature_is_checked_against_public_url_behind_a_proxy(app, client, participant_id):
    """Behind nginx the app sees http://127.0.0.1:8000, Twilio signed https://public:
    the signature for PUBLIC_URL is the one that counts."""
    app.config["PUBLIC_URL"] = "https://kinship.example.org/"
    params = inbound_params("8")
    assert signed_post(client, app, INBOUND, params,
                       url="http://kinship.test" + INBOUND).status_code == 403
    response = signed_post(client, app, INBOUND, params,
                           url="https://kinship.example.org" + INBOUND)
    assert response.status_code == 200


def test_inbound_is_refused_when_no_auth_token_is_configured(app, client, participant_id):
    params = inbound_params("7")
    signature = RequestValidator("").compute_signature(
        "http://kinship.test" + INBOUND, params)
    app.config["TWILIO_AUTH_TOKEN"] = ""
    assert signed_post(client, app, INBOUND, params, signature=signature).status_code == 403


def test_duplicate_inbound_webhook_is_stored_and_handled_once(app, client, participant_id):
    seen = []
    register_inbound_handler(lambda message: seen.append(message.id) or "Thanks!")
    for _ in range(3):
        assert signed_post(client, app, INBOUND, inbound_params("7")).status_code == 200
    with app.app_context():
        assert inbound_count() == 1
        replies = list(db.session.scalars(select(SmsMessage).where(SmsMessage.purpose == "reply")))
    assert len(seen) == 1 and len(replies) == 1


def test_inbound_whose_handling_failed_is_handled_when_twilio_retries(app, client,
                                                                      participant_id):
    """It keeps the text even when a handler fails, and handles it on Twilio's retry."""
    calls = []

    def flaky(message):
        calls.append(message.id)
        if len(calls) == 1:
            raise RuntimeError("handler bug")
        return ""

    register_inbound_handler(flaky)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert signed_post(client, app, INBOUND, inbound_params("7")).status_code == 500
    with app.app_context():
        row = db.session.scalar(select(SmsMessage).where(SmsMessage.direction == "in"))
        assert row is not None and row.handled_at is None
    assert signed_post(client, app, INBOUND, inbound_params("7")).status_code == 200
    with app.app_context():
        assert inbound_count() == 1
        assert db.session.scalar(select(SmsMessage.outcome)) == "handled"


def test_handlers_run_in_order_and_the_first_str_wins(app, client, participant_id):
    order = []
    register_inbound_handler(lambda m: order.append("a"))
    register_inbound_handler(lambda m: order.append("b") or "Got 7, thank you.")
    register_inbound_handler(lambda m: order.append("c") or "never")
    signed_post(client, app, INBOUND, inbound_params("7"))
    assert order == ["a", "b"]
    with app.app_context():
        reply = db.session.scalar(select(SmsMessage).where(SmsMessage.direction == "out"))
        assert (reply.body, reply.purpose, reply.status) == ("Got 7, thank you.", "reply",
                                                             "pending")
        assert reply.in_reply_to_id is not None


def test_every_ordinary_text_is_screened_then_reported(app, client, participant_id,
                                                       monkeypatch):
    from core import screening

    seen = []
    monkeypatch.setattr(screening, "_screener", lambda text, channel, author: (
        seen.append((text, channel, author.id)) or screening.Verdict(action="hold",
                                                                     is_risk=True)))
    monkeypatch.setattr(screening, "_recorders", [
        lambda verdict, channel, content_id, author: seen.append((verdict.action, channel,
                                                                  content_id))])
    register_inbound_handler(lambda m: seen.append("handler") or "")
    signed_post(client, app, INBOUND, inbound_params("I can't go on"))
    signed_post(client, app, INBOUND, inbound_params("STOP", sid="SM" + "2" * 32))
    with app.app_context():
        user_id = db.session.get(Participant, participant_id).user_id
        row = db.session.scalar(select(SmsMessage).where(SmsMessage.body == "I can't go on"))
        assert row.screening == "hold"
    assert seen == [("I can't go on", "sms", user_id), ("hold", "sms", row.id), "handler"]


def test_blocked_text_is_kept_but_not_handled(app, client, participant_id, monkeypatch):
    from core import screening

    monkeypatch.setattr(screening, "_screener",
                        lambda text, channel, author: screening.Verdict(action="block"))
    register_inbound_handler(lambda m: "should not run")
    signed_post(client, app, INBOUND, inbound_params("my address is ..."))
    with app.app_context():
        row = db.session.scalar(select(SmsMessage).where(SmsMessage.direction == "in"))
        assert (row.outcome, row.screening) == ("blocked", "block")
        assert inbound_count() == 1
        assert db.session.scalar(select(func.count(SmsMessage.id))) == 1


def test_text_from_an_unknown_number_is_kept_without_a_participant(app, client):
    register_inbound_handler(lambda m: "should not run")
    assert signed_post(client, app, INBOUND,
                       inbound_params("hello?", phone="+447700900777")).status_code == 200
    with app.app_context():
        row = db.session.scalar(select(SmsMessage))
        assert (row.participant_id, row.outcome) == (None, "unknown_sender")


def test_inbound_without_message_sid_is_a_bad_request(app, client):
    params = inbound_params("7")
    del params["MessageSid"], params["SmsSid"]
    assert signed_post(client, app, INBOUND, params).status_code == 400


# --- status callbacks ---------------------------------------------------------------

def sent_row(app) -> tuple[int, str]:
    """A text sent through the console backend, then put back to "queued" as if Twilio
    had just accepted it; returns (id, sid)."""
    clock.set_time(T0)
    with app.app_context():
        participant = db.session.scalar(select(Participant))
        row = queue(participant=participant, body="Prompt", purpose="prompt")
        db.session.commit()
        dispatch()
        row = db.session.get(SmsMessage, row.id)
        row.status, row.delivered_at = "queued", None
        db.session.commit()
        return row.id, row.twilio_sid


def callback(client, app, message_id: int, sid: str, status: str, code: str | None = None):
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "a" * 32,
              "To": PHONE, "From": "+15005550006", "ApiVersion": "2010-04-01"}
    if code:
        params["ErrorCode"] = code
    return signed_post(client, app, f"/sms/twilio/status/{message_id}", params)


def status_of(app, message_id: int) -> SmsMessage:
    with app.app_context():
        row = db.session.get(SmsMessage, message_id)
        db.session.expunge(row)
        return row


def test_status_moves_forward_only_out_of_order(app, client, participant_id):
    """delivered arriving before sent stays delivered; a late queued changes nothing."""
    message_id, sid = sent_row(app)
    clock.set_time(T0 + timedelta(minutes=1))
    assert callback(client, app, message_id, sid, "delivered").status_code == 204
    assert callback(client, app, message_id, sid, "sent").status_code == 204
    assert callback(client, app, message_id, sid, "queued").status_code == 204
    row = status_of(app, message_id)
    assert row.status == "delivered" and row.delivered_at == T0 + timedelta(minutes=1)


def test_status_steps_queued_sent_delivered(app, client, participant_id):
    message_id, sid = sent_row(app)
    for status in ("sent", "delivered"):
        callback(client, app, message_id, sid, status)
        assert status_of(app, message_id).status == status


def test_terminal_failure_is_final_and_keeps_its_code(app, client, participant_id):
    message_id, sid = sent_row(app)
    callback(client, app, message_id, sid, "undelivered", "30003")
    callback(client, app, message_id, sid, "delivered")
    row = status_of(app, message_id)
    assert (row.status, row.error_code) == ("undelivered", 30003)
    assert "unreachable" in meaning(30003)


@pytest.mark.parametrize("code", [30003, 30005, 30006, 30007])
def test_carrier_errors_have_a_plain_meaning_for_staff(code):
    text = meaning(code)
    assert text and not text.startswith("Twilio error")


def test_21610_in_a_callback_opts_the_participant_out(app, client, participant_id):
    message_id, sid = sent_row(app)
    callback(client, app, message_id, sid, "failed", "21610")
    with app.app_context():
        assert db.session.get(Participant, participant_id).sms_opted_out_at is not None


def test_callback_settles_a_row_whose_send_was_unknown(app, client, participant_id):
    """The outbox id in the URL lets a callback record the sid of an "unknown" row."""
    message_id, _ = sent_row(app)
    with app.app_context():
        row = db.session.get(SmsMessage, message_id)
        row.status, row.twilio_sid = "unknown", None
        db.session.commit()
    callback(client, app, message_id, "SM" + "9" * 32, "sent")
    row = status_of(app, message_id)
    assert (row.status, row.twilio_sid) == ("sent", "SM" + "9" * 32)


def test_callback_for_another_sid_or_a_pending_row_changes_nothing(app, client,
                                                                   participant_id):
    message_id, sid = sent_row(app)
    callback(client, app, message_id, "SM" + "8" * 32, "delivered")
    assert status_of(app, message_id).status == "queued"
    with app.app_context():
        pending = queue(participant=db.session.get(Participant, participant_id), body="Later",
                        purpose="prompt", send_after=T0 + timedelta(hours=3))
        db.session.commit()
        pending_id = pending.id
    callback(client, app, pending_id, "SM" + "7" * 32, "delivered")
    assert status_of(app, pending_id).status == "pending"
    assert callback(client, app, 999999, sid, "delivered").status_code == 204


@pytest.mark.parametrize("how", ["missing", "invalid"])
def test_status_callback_needs_a_valid_signature(app, client, participant_id, how):
    message_id, sid = sent_row(app)
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    path = f"/sms/twilio/status/{message_id}"
    if how == "missing":
        response = client.post(path, data=params)
    else:
        response = signed_post(client, app, path, params, token="wrong")
    assert response.status_code == 403
    assert status_of(app, message_id).status == "queued"
