"""The developer SMS inbox (development mode only) and the ``flask sms`` commands."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from core import clock
from core.extensions import db
from core.sms import SmsMessage, queue, register_inbound_handler
from tests.core.sms.conftest import PHONE, texting_participant
from tests.factories import make_staff


def setup_people(app) -> int:
    with app.app_context():
        make_staff("peer_moderator")
        participant = texting_participant()
        queue(participant=participant, body="How lonely did you feel today? Reply 0-10",
              purpose="prompt")
        db.session.commit()
        return participant.id


def test_inbox_lists_texts_and_a_reply_goes_through_the_signed_webhook(app, client, auth):
    app.config["KINSHIP_ENV"] = "development"
    participant_id = setup_people(app)
    register_inbound_handler(lambda message: f"Thanks, you said {message.body.strip()}.")
    auth.login("peer_moderator@example.org")
    page = client.get("/sms/dev")
    assert page.status_code == 200
    assert b"How lonely did you feel today?" in page.data and b"pending" in page.data
    assert b'<label for="p1-body"' in page.data.replace(
        f"p{participant_id}-body".encode(), b"p1-body")
    response = client.post(f"/sms/dev/{participant_id}/reply",
                           data={f"p{participant_id}-body": " 7 "})
    assert response.status_code == 302
    with app.app_context():
        rows = list(db.session.scalars(select(SmsMessage).order_by(SmsMessage.id)))
        inbound = next(r for r in rows if r.direction == "in")
        assert (inbound.phone, inbound.body.strip(), inbound.outcome) == (PHONE, "7", "handled")
        reply = next(r for r in rows if r.purpose == "reply")
        # the console backend dispatched at once: the prompt and the reply are delivered
        assert reply.status == "delivered" and reply.body == "Thanks, you said 7."
        assert all(r.status in ("delivered", "received") for r in rows)
    page = client.get("/sms/dev")
    assert b"Thanks, you said 7." in page.data


def test_inbox_reply_needs_text(app, client, auth):
    app.config["KINSHIP_ENV"] = "development"
    participant_id = setup_people(app)
    auth.login("peer_moderator@example.org")
    client.post(f"/sms/dev/{participant_id}/reply", data={f"p{participant_id}-body": ""})
    with app.app_context():
        assert db.session.scalar(select(SmsMessage).where(SmsMessage.direction == "in")) is None


def test_inbox_is_not_there_outside_development(app, client, auth):
    participant_id = setup_people(app)
    auth.login("peer_moderator@example.org")
    for env in ("production", "test"):
        app.config["KINSHIP_ENV"] = env
        assert client.get("/sms/dev").status_code == 404
        assert client.post(f"/sms/dev/{participant_id}/reply",
                           data={f"p{participant_id}-body": "7"}).status_code == 404
        assert client.post("/sms/dev/dispatch").status_code == 404


def test_inbox_needs_sign_in(app, client):
    app.config["KINSHIP_ENV"] = "development"
    assert client.get("/sms/dev").status_code == 302


def test_tick_runs_the_sms_jobs_at_the_given_time(app, runner):
    with app.app_context():
        participant = texting_participant()
        queue(participant=participant, body="At nine", purpose="prompt",
              send_after=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
        db.session.commit()
    early = runner.invoke(args=["sms", "tick", "--at", "2026-12-01 08:59"])
    assert early.exit_code == 0, early.output
    assert "sms.dispatch" in early.output and '"claimed": 0' in early.output
    result = runner.invoke(args=["sms", "tick", "--at", "2026-12-01 09:00"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("sms.dispatch")
    assert clock._frozen is None  # the clock is given back
    with app.app_context():
        row = db.session.scalar(select(SmsMessage))
        assert row.status == "delivered" and row.sent_at == datetime(2026, 12, 1, 9, 0,
                                                                     tzinfo=UTC)
    status = runner.invoke(args=["sms", "status"])
    assert "outbound\tdelivered\t1" in status.output and PHONE not in status.output


def test_tick_refuses_a_bad_time(runner):
    result = runner.invoke(args=["sms", "tick", "--at", "tomorrow"])
    assert result.exit_code != 0 and "YYYY-MM-DD HH:MM" in result.output
    assert clock._frozen is None
