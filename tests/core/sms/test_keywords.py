"""STOP / START / HELP and their synonyms, from the webhook to the participant's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.audit import AuditEntry
from core.extensions import db
from core.models import Participant
from core.sms import (
    SmsMessage,
    queue,
    register_help_text,
    register_inbound_handler,
    register_opt_out_handler,
)
from core.sms.keywords import keyword
from tests.core.sms.conftest import inbound_params, signed_post, texting_participant
from tests.factories import make_staff

T0 = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "word"), [
    ("STOP", "stop"), ("stop", "stop"), ("  Stop. ", "stop"), ("STOP!!", "stop"),
    ("stopall", "stop"), ("Stop all", "stop"), ("UNSUBSCRIBE", "stop"), ("cancel", "stop"),
    ("End", "stop"), ("quit", "stop"), ("optout", "stop"), ("opt-out", "stop"),
    ("Opt out", "stop"), ("revoke", "stop"), ("'stop'", "stop"), ("\nSTOP\n", "stop"),
    ("START", "start"), ("start", "start"), ("Yes", "start"), ("unstop", "start"),
    ("OPTIN", "start"), ("opt in", "start"), ("resume.", "start"), ("subscribe", "start"),
    ("HELP", "help"), ("help?", "help"), ("Info", "help"), (" info ", "help"),
    ("stop texting me at night", None), ("please stop", None), ("I need help", None),
    ("7", None), ("yes 7", None), ("Y", None), ("", None), ("...", None), ("stopp", None),
    ("helpful", None), ("N", None), ("no", None),
])
def test_keyword_is_the_whole_message_in_any_case(text, word):
    assert keyword(text) == word


def test_yes_is_an_answer_unless_the_participant_opted_out():
    assert keyword("Yes", opted_out=False) is None
    assert keyword("yes!", opted_out=True) == "start"
    assert keyword("START", opted_out=False) == "start"


def test_yes_from_a_subscribed_participant_goes_to_the_handlers(app, client, people):
    answers = []
    register_inbound_handler(lambda m: answers.append(m.body) or "Thanks")
    text_in(app, client, "Yes", 1)
    text_in(app, client, "STOP", 2)
    text_in(app, client, "YES", 3)
    assert answers == ["Yes"]
    with app.app_context():
        assert db.session.get(Participant, people["participant"]).sms_opted_out_at is None


@pytest.fixture
def people(app) -> dict[str, int]:
    with app.app_context():
        moderator = make_staff("peer_moderator")
        participant = texting_participant(moderator=moderator)
        return {"participant": participant.id, "moderator": moderator.id}


def text_in(app, client, body: str, n: int = 1):
    return signed_post(client, app, "/sms/twilio/inbound",
                       inbound_params(body, sid=f"SM{n:032d}"))


def outbound(app) -> list[SmsMessage]:
    with app.app_context():
        rows = list(db.session.scalars(select(SmsMessage).where(SmsMessage.direction == "out")
                                       .order_by(SmsMessage.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def test_stop_opts_out_cancels_pending_tells_handlers_and_the_moderator(app, client, people):
    from core.notifications import Notification

    clock.set_time(T0)
    heard = []
    register_opt_out_handler(lambda participant, word: heard.append((participant.id, word)))
    register_inbound_handler(lambda m: "should not run")
    with app.app_context():
        participant = db.session.get(Participant, people["participant"])
        queue(participant=participant, body="Prompt", purpose="prompt",
              send_after=T0 + timedelta(hours=1))
        queue(participant=participant, body="Reminder", purpose="reminder",
              send_after=T0 + timedelta(hours=2))
        db.session.commit()
    response = text_in(app, client, " Stop ")
    assert response.status_code == 200 and "<Message>" not in response.data.decode()
    rows = outbound(app)
    assert [(r.status, r.reason) for r in rows] == [("cancelled", "opted_out")] * 2
    assert heard == [(people["participant"], "stop")]
    with app.app_context():
        participant = db.session.get(Participant, people["participant"])
        assert participant.sms_opted_out_at == T0
        assert participant.status != "withdrawn"  # an SMS opt-out is not leaving the study
        alert = db.session.scalar(select(Notification)
                                  .where(Notification.user_id == people["moderator"]))
        assert alert is not None and "STOP" in alert.text and "T-0001" in alert.text
        assert alert.url == f"/moderation/participants/{participant.id}"
        assert db.session.scalar(select(AuditEntry.action)
                                 .where(AuditEntry.action == "sms.opted_out"))
        assert queue(participant=participant, body="x", purpose="prompt") is None


def test_second_stop_changes_nothing(app, client, people):
    clock.set_time(T0)
    text_in(app, client, "STOP", 1)
    clock.advance(timedelta(hours=1))
    text_in(app, client, "unsubscribe", 2)
    with app.app_context():
        assert db.session.get(Participant, people["participant"]).sms_opted_out_at == T0


def test_start_re_subscribes_and_confirms(app, client, people):
    heard = []
    register_opt_out_handler(lambda participant, word: heard.append(word))
    text_in(app, client, "STOP", 1)
    text_in(app, client, "start", 2)
    with app.app_context():
        participant = db.session.get(Participant, people["participant"])
        assert participant.sms_opted_out_at is None
        assert queue(participant=participant, body="x", purpose="prompt") is not None
        db.session.rollback()
    assert heard == ["stop", "start"]
    rows = outbound(app)
    assert len(rows) == 1 and rows[0].purpose == "start" and "STOP" in rows[0].body


def test_help_answers_with_the_registered_text_or_the_default(app, client, people):
    text_in(app, client, "HELP", 1)
    register_help_text(lambda participant: f"Study team for {participant.study_code}: 0800")
    text_in(app, client, "info", 2)
    first, second = outbound(app)
    assert first.purpose == "help" and "Samaritans" in first.body and "STOP" in first.body
    assert second.body == "Study team for T-0001: 0800"


def test_keywords_from_unknown_numbers_change_nothing(app, client, people):
    signed_post(client, app, "/sms/twilio/inbound",
                inbound_params("STOP", phone="+447700900777"))
    with app.app_context():
        assert db.session.get(Participant, people["participant"]).sms_opted_out_at is None
    assert outbound(app) == []
