"""Property-based fuzzing (hypothesis) of the Twilio webhooks with validly signed bodies:
generated Body/From/MessageSid on the inbound webhook and MessageSid/MessageStatus/
ErrorCode on the status callback. Never a 500; a refusal (4xx) writes nothing; a status
never moves backwards. The real inbound handlers (prompt replies, moderator inbox) run."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from core.clock import utcnow
from core.extensions import db
from core.sms import SmsMessage, statuses
from tests.security.cast import make_cast, row_counts

B_PHONE = "+447700900456"
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
               max_size=80)
BODIES = st.one_of(TEXT, st.sampled_from(["STOP", "stop ", "START", "HELP", "UNSTOP", "1",
                                          "10", "-1", "1 2 3", "٣", "²", "", " " * 500,
                                          "x" * 1600, "ＳＴＯＰ", "Stop!!", "yes"]))
PHONES = st.one_of(st.just(B_PHONE), st.sampled_from(["", "+", "07700900456", "+44 7700 900456",
                                                      "+4477009004560000000000", "null"]), TEXT)
SIDS = st.one_of(st.from_regex(r"SM[0-9a-f]{32}", fullmatch=True),
                 st.sampled_from(["", " ", "SM", "SM" + "f" * 62]), TEXT)
FUZZ = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def signed_post(app, client, path: str, params: dict[str, str]):
    url = app.config["PUBLIC_URL"].rstrip("/") + path
    signature = RequestValidator(app.config["TWILIO_AUTH_TOKEN"]).compute_signature(url, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def inbound(body: str, phone: str, sid: str) -> dict[str, str]:
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "0" * 32, "From": phone,
            "To": "+15005550006", "Body": body, "NumMedia": "0"}


def _outbound(participant_id: int) -> int:
    message = SmsMessage(direction="out", participant_id=participant_id, purpose="prompt",
                         body="How lonely did you feel today?", status=statuses.SENT,
                         twilio_sid="SM" + "a" * 32, created_at=utcnow(), send_after=utcnow())
    db.session.add(message)
    db.session.commit()
    return message.id


def test_inbound_webhook_survives_generated_texts(app, client):
    with app.app_context():
        make_cast()
    failures: list[str] = []

    @FUZZ
    @given(body=BODIES, phone=PHONES, sid=SIDS)
    def run(body: str, phone: str, sid: str) -> None:
        with app.app_context():
            before = row_counts()
        response = signed_post(app, client, "/sms/twilio/inbound", inbound(body, phone, sid))
        if response.status_code >= 500:
            failures.append(f"{(body[:30], phone[:30], sid[:70])!r}: {response.status_code}")
        elif response.status_code >= 400:
            with app.app_context():
                if row_counts() != before:
                    failures.append(f"{(body[:30], phone, sid)!r}: refused but wrote")

    run()
    assert failures == [], "\n".join(failures[:20])
    with app.app_context():
        assert db.session.query(SmsMessage).filter_by(direction="in").count() > 10


STATUSES = st.one_of(st.sampled_from(["queued", "sending", "sent", "delivered", "undelivered",
                                      "failed", "read", "canceled", "accepted", "", "DELIVERED",
                                      "received"]), TEXT)
CODES = st.one_of(st.sampled_from(["", "21610", "30003", "0", "-1", "99999999999999999999",
                                   "٣٠٠٠٣"]), TEXT)


def test_status_callback_survives_generated_values(app, client):
    with app.app_context():
        cast = make_cast()
        message_id = _outbound(cast.b_id)
    path = f"/sms/twilio/status/{message_id}"
    failures: list[str] = []
    seen: list[int] = []

    @FUZZ
    @given(sid=st.one_of(st.just("SM" + "a" * 32), SIDS), status=STATUSES, code=CODES)
    def run(sid: str, status: str, code: str) -> None:
        params = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": code,
                  "AccountSid": "AC" + "0" * 32}
        response = signed_post(app, client, path, params)
        if response.status_code >= 500:
            failures.append(f"{(sid[:70], status[:20], code[:20])!r}: {response.status_code}")
        with app.app_context():
            seen.append(statuses.RANK[db.session.get(SmsMessage, message_id).status])

    run()
    assert failures == [], "\n".join(failures[:20])
    assert seen == sorted(seen), "the status moved backwards"


def test_superscript_error_code_does_not_fail_the_callback(app, client):
    """``"²".isdigit()`` is True but ``int("²")`` raises: core/sms/callbacks.py _code()."""
    with app.app_context():
        cast = make_cast()
        message_id = _outbound(cast.b_id)
    response = signed_post(app, client, f"/sms/twilio/status/{message_id}",
                           {"MessageSid": "SM" + "a" * 32, "MessageStatus": "failed",
                            "ErrorCode": "²"})
    assert response.status_code == 204


def test_overlong_message_sid_is_refused_not_a_500(app, client):
    """A MessageSid longer than the 64-character column."""
    with app.app_context():
        make_cast()
    response = signed_post(app, client, "/sms/twilio/inbound",
                           inbound("hello", B_PHONE, "SM" + "f" * 80))
    assert response.status_code == 400


def test_huge_error_code_on_a_failed_text_is_not_a_500(app, client):
    """An ErrorCode too big for the integer column."""
    with app.app_context():
        cast = make_cast()
        message_id = _outbound(cast.b_id)
    response = signed_post(app, client, f"/sms/twilio/status/{message_id}",
                           {"MessageSid": "SM" + "a" * 32, "MessageStatus": "failed",
                            "ErrorCode": "99999999999999999999"})
    assert response.status_code == 204
