"""Sending the outbox through the real twilio client against the local fake: success,
21610, 429 then success, 500 and timeouts (unknown -> reconciled, never resent blindly),
a dispatcher killed mid-send, the daily cost guard, the send rate, and quiet logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core import clock
from core.extensions import db
from core.models import Participant
from core.sms import SmsMessage, queue
from core.sms.dispatch import RateLimiter, dispatch
from core.sms.reconcile import reconcile
from tests.core.sms import fake_twilio
from tests.core.sms.conftest import PHONE, texting_participant, use_twilio
from tests.factories import make_staff

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BODY = "How lonely did you feel today? Reply 0-10"


def one(body: str = BODY, **kwargs) -> SmsMessage:
    participant = (db.session.scalar(select(Participant).order_by(Participant.id))
                   or texting_participant())
    row = queue(participant=participant, body=body, purpose="prompt", **kwargs)
    db.session.commit()
    return row


def reload(row: SmsMessage) -> SmsMessage:
    db.session.expire_all()
    return db.session.get(SmsMessage, row.id)


def test_sent_through_twilio_with_sid_and_callback(twilio_app, fake):
    """It creates the message once, stores its MessageSid, and asks Twilio to call back
    to the status webhook with the outbox id in the URL."""
    clock.set_time(T0)
    with twilio_app.app_context():
        row = one()
        report = dispatch()
        row = reload(row)
    assert report["sent"] == 1 and fake.creates() == 1
    assert row.status == "queued" and row.twilio_sid in fake.state.messages
    remote = fake.state.messages[row.twilio_sid]
    assert (remote["to"], remote["body"], remote["from"]) == (PHONE, BODY, fake_twilio.FROM)
    assert remote["_callback"] == f"http://kinship.test/sms/twilio/status/{row.id}"
    assert row.sent_at == T0 and row.phone == PHONE


def test_messaging_service_sid_is_used_when_configured(app, fake):
    use_twilio(app, fake, TWILIO_MESSAGING_SERVICE_SID="MG" + "b" * 32)
    with app.app_context():
        row = one()
        dispatch()
        remote = fake.state.messages[reload(row).twilio_sid]
    assert remote["messaging_service_sid"] == "MG" + "b" * 32 and remote["from"] is None


def test_21610_fails_the_row_and_opts_the_participant_out(twilio_app, fake):
    """It records 21610, marks the participant opted out, cancels their other pending
    texts and tells their moderator."""
    from core.notifications import Notification

    clock.set_time(T0)
    with twilio_app.app_context():
        moderator = make_staff("peer_moderator")
        participant = texting_participant(moderator=moderator)
        first = one()
        later = one("Reminder", send_after=T0 + timedelta(hours=1))
        fake.state.script = ["21610"]
        dispatch()
        first, later = reload(first), reload(later)
        participant = db.session.get(Participant, participant.id)
        assert (first.status, first.error_code) == ("failed", 21610)
        assert participant.sms_opted_out_at == T0
        assert (later.status, later.reason) == ("cancelled", "opted_out")
        alerts = list(db.session.scalars(select(Notification)
                                         .where(Notification.user_id == moderator.id)))
        assert len(alerts) == 1 and "T-0001" in alerts[0].text
    assert fake.creates() == 1


def test_429_is_retried_with_backoff_then_sent(twilio_app, fake):
    """It retries a 429 itself (twilio's max_retries never does) and sends once."""
    with twilio_app.app_context():
        row = one()
        fake.state.script = [fake_twilio.TOO_MANY, fake_twilio.TOO_MANY]
        dispatch()
        row = reload(row)
    assert fake.creates() == 3
    assert sum(fake.state.created.values()) == 1
    assert row.status == "queued"


def test_429_that_outlasts_the_retries_waits_for_a_later_run(app, fake):
    use_twilio(app, fake, SMS_RETRY_ATTEMPTS=2)
    clock.set_time(T0)
    with app.app_context():
        row = one()
        fake.state.script = [fake_twilio.TOO_MANY] * 2
        assert dispatch()["retry"] == 1
        row = reload(row)
        assert (row.status, row.claimed_by) == ("pending", None)
        assert row.send_after == T0 + timedelta(minutes=1)
        assert dispatch()["claimed"] == 0  # not due yet
        clock.set_time(T0 + timedelta(minutes=1))
        assert dispatch()["sent"] == 1
    assert sum(fake.state.created.values()) == 1


def test_connection_refused_is_retried_and_the_row_waits(app, fake):
    """It treats a refused connection as "not sent" and puts the row back."""
    fake.shutdown()
    fake.server_close()
    use_twilio(app, fake, SMS_RETRY_ATTEMPTS=2)
    with app.app_context():
        row = one()
        assert dispatch()["retry"] == 1
        assert reload(row).status == "pending"


def test_500_is_unknown_and_reconciled_without_a_resend(twilio_app, fake):
    """A 500 leaves the row unknown; reconciliation finds nothing was created (the fake
    created nothing) and resends once; a second run finds it sent."""
    clock.set_time(T0)
    with twilio_app.app_context():
        row = one()
        fake.state.script = [fake_twilio.SERVER_ERROR]
        assert dispatch()["unknown"] == 1
        assert reload(row).status == "unknown"
        assert dispatch()["claimed"] == 0  # never resent blindly
        assert reconcile()["checked"] == 0  # too early: Twilio's callback may settle it
        clock.set_time(T0 + timedelta(minutes=3))
        assert reconcile()["requeued"] == 1
        assert dispatch()["sent"] == 1
        row = reload(row)
        assert row.status == "queued" and row.resends == 1
    assert sum(fake.state.created.values()) == 1


def test_timeout_is_unknown_and_reconciled_by_listing(twilio_app, fake):
    """The fake creates the message but answers too late: the row is unknown, and
    reconciliation finds the message by listing, so it is not sent a second time."""
    fake.state.slow_seconds = 1.0
    clock.set_time(T0)
    with twilio_app.app_context():
        row = one()
        fake.state.script = [fake_twilio.TIMEOUT]
        assert dispatch()["unknown"] == 1
        clock.set_time(T0 + timedelta(minutes=3))
        report = reconcile()
        row = reload(row)
        assert report["found"] == 1
        assert row.status == "queued" and row.twilio_sid in fake.state.messages
        assert dispatch()["claimed"] == 0
    assert fake.creates() == 1 and fake.state.requests[("GET", "list")] == 1


def test_unconfirmed_twice_is_failed_not_resent_again(twilio_app, fake):
    clock.set_time(T0)
    with twilio_app.app_context():
        row = one()
        fake.state.script = [fake_twilio.SERVER_ERROR, fake_twilio.SERVER_ERROR]
        dispatch()
        clock.advance(timedelta(minutes=3))
        reconcile()
        dispatch()
        clock.advance(timedelta(minutes=3))
        assert reconcile()["failed"] == 1
        row = reload(row)
        assert (row.status, row.reason) == ("failed", "unconfirmed")
    assert fake.creates() == 2


def test_row_stuck_in_sending_is_reconciled(twilio_app, fake):
    """A dispatcher killed after Twilio created the message leaves it in "sending";
    after the stuck limit, reconciliation records the sid instead of resending."""
    clock.set_time(T0)
    with twilio_app.app_context():
        row = one()
        fake.create({"To": PHONE, "Body": BODY, "From": fake_twilio.FROM})
        row.status, row.claimed_by, row.claimed_at, row.phone = "sending", "dead", T0, PHONE
        db.session.commit()
        clock.set_time(T0 + timedelta(minutes=5))
        assert reconcile()["checked"] == 0
        clock.set_time(T0 + timedelta(minutes=11))
        assert reconcile()["found"] == 1
        assert reload(row).status == "queued"
    assert fake.creates() == 0 and sum(fake.state.created.values()) == 1


def test_cost_guard_cancels_texts_over_the_daily_limit(app):
    """It sends at most SMS_MAX_PER_PARTICIPANT_PER_DAY texts per local day, cancels the
    rest with a reason, and starts again the next local day."""
    app.config["SMS_MAX_PER_PARTICIPANT_PER_DAY"] = 3
    clock.set_time(datetime(2026, 12, 1, 23, 0, tzinfo=UTC))  # 10:00 in Sydney
    with app.app_context():
        participant = texting_participant()
        participant.timezone = "Australia/Sydney"
        other = texting_participant("T-0002", "+447700900999", name="Still Meadow")
        rows = [one(f"Text {n}") for n in range(5)]
        queue(participant=other, body="Other", purpose="prompt")
        db.session.commit()
        report = dispatch()
        statuses = [reload(r).status for r in rows]
        assert statuses == ["delivered"] * 3 + ["cancelled"] * 2
        assert reload(rows[4]).reason == "daily_limit"
        assert report["cancelled"] == {"daily_limit": 2} and report["sent"] == 4
        clock.set_time(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))  # 23:00 the same local day
        late = one("Late")
        dispatch()
        assert reload(late).status == "cancelled"
        clock.set_time(datetime(2026, 12, 2, 13, 5, tzinfo=UTC))  # 00:05 the next local day
        nextday = one("Next day")
        dispatch()
        assert reload(nextday).status == "delivered"


def test_text_queued_before_stop_is_not_sent(app):
    with app.app_context():
        row = one()
        row.participant.sms_opted_out_at = clock.utcnow()
        db.session.commit()
        dispatch()
        assert (reload(row).status, reload(row).reason) == ("cancelled", "opted_out")


def test_rate_limiter_spaces_sends():
    """It waits 1/rate seconds between sends, and not at all with rate 0."""
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    limiter = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert slept == [0.25] * 4
    free = RateLimiter(0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        free.wait()
    assert len(slept) == 4


def test_dispatch_uses_the_configured_rate(twilio_app, fake):
    """The dispatcher passes every send through the limiter (counted with a fake sleep)."""
    twilio_app.config["SMS_SEND_RATE_PER_SECOND"] = 2
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with twilio_app.app_context():
        for n in range(4):
            one(f"Text {n}")
        dispatch(limiter=RateLimiter(2, clock=lambda: now[0], sleep=sleep))
    assert slept == [0.5, 0.5, 0.5] and fake.creates() == 4


def test_no_phone_number_or_body_in_logs(twilio_app, fake, caplog):
    """Nothing logged while sending, failing, reconciling or receiving carries the number
    or the text."""
    from tests.core.sms.conftest import inbound_params, signed_post

    caplog.set_level(logging.DEBUG)
    clock.set_time(T0)
    with twilio_app.app_context():
        one()
        one("Second text with words")
        fake.state.script = [fake_twilio.OK, fake_twilio.SERVER_ERROR]
        dispatch()
        clock.advance(timedelta(minutes=3))
        reconcile()
        dispatch()
    signed_post(twilio_app.test_client(), twilio_app, "/sms/twilio/inbound",
                inbound_params("I feel awful tonight"))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "sms" in text  # something was logged
    for secret in (PHONE, PHONE[1:], BODY, "Second text", "awful", "7700900123"):
        assert secret not in text


def test_staff_texts_go_out_and_rows_without_a_number_do_not(twilio_app, fake):
    """A staff alert row (no participant, the number on the row) is sent like any other
    text and is not held to a participant's consent or daily limit; a participant-less
    row of another purpose is cancelled, never sent to a number nobody checked."""
    clock.set_time(T0)
    with twilio_app.app_context():
        staff = SmsMessage(direction="out", participant_id=None, purpose="staff_alert",
                           body="Kinship: risk alert #3 needs you.", phone="+447700900777",
                           status="pending", send_after=T0)
        stray = SmsMessage(direction="out", participant_id=None, purpose="prompt",
                           body="Hello", phone="+447700900778", status="pending",
                           send_after=T0)
        db.session.add_all([staff, stray])
        db.session.commit()
        report = dispatch()
        db.session.expire_all()
        assert reload(staff).status == "queued"
        assert fake.state.messages[staff.twilio_sid]["to"] == "+447700900777"
        assert (stray.status, stray.reason) == ("cancelled", "no_phone")
    assert report["sent"] == 1 and fake.creates() == 1


def test_batches_overlap_and_every_text_goes_once(twilio_app, fake):
    """With small batches the next batch is claimed while the last one is sent: every
    text still goes exactly once and every result is recorded."""
    clock.set_time(T0)
    with twilio_app.app_context():
        participants = [texting_participant(code=f"T-{n:04d}", phone=f"+4477009001{n:02d}")
                        for n in range(7)]
        rows = [queue(participant=p, body=f"{BODY} ({n})", purpose="prompt")
                for n, p in enumerate(participants)]
        db.session.commit()
        report = dispatch(batch_size=2)
        db.session.expire_all()
        statuses = {db.session.get(SmsMessage, row.id).status for row in rows}
    assert report["claimed"] == report["sent"] == 7 and fake.creates() == 7
    assert statuses == {"queued"}
