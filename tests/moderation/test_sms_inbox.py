"""Texts that answer no prompt reach the participant's moderators as messages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import Participant
from core.notifications import Notification
from core.roles import Role
from core.sms import SmsMessage
from moderation.care_models import ModeratorMessage
from tests.factories import make_staff
from tests.outcomes.prompts.helpers import at, plan, reply, send_due, setup_trial


@pytest.fixture
def trial(app):
    with app.app_context():
        ids = setup_trial()
        peer = make_staff(Role.PEER_MODERATOR, "peer@example.org")
        db.session.get(Participant, ids["participant"]).moderator_id = peer.id
        db.session.commit()
        return {**ids, "peer": peer.id}


def test_an_unsolicited_text_becomes_a_message_to_the_moderator(app, client, trial):
    """It lands in the conversation as the participant's, linked to its SMS, and the
    caseload moderator is told; an answer to a prompt does not."""
    assert reply(app, client, "can someone ring me\nplease", at(2026, 12, 1, 7, 0)) == 200
    with app.app_context():
        plan(at(2026, 12, 1, 8, 59))
        send_due(at(2026, 12, 1, 9, 0))
    reply(app, client, "4", at(2026, 12, 1, 9, 5))
    with app.app_context():
        (message,) = db.session.scalars(select(ModeratorMessage)).all()
        sms = db.session.scalar(select(SmsMessage).where(SmsMessage.id == message.sms_message_id))
        assert (message.direction, message.body) == ("from_participant",
                                                     "can someone ring me\nplease")
        assert message.participant_id == trial["participant"] and sms.outcome == "unsolicited"
        (note,) = db.session.scalars(select(Notification).where(
            Notification.user_id == trial["peer"])).all()
        assert note.kind == "participant_message"
        assert note.url == f"/moderation/participants/{trial['participant']}/messages"
        assert "can someone" not in note.text  # the words stay in the conversation


def test_an_unsolicited_text_without_a_moderator_is_still_kept(app, client):
    with app.app_context():
        ids = setup_trial()
    reply(app, client, "hello?", at(2026, 12, 1, 7, 0))
    with app.app_context():
        (message,) = db.session.scalars(select(ModeratorMessage)).all()
        assert message.participant_id == ids["participant"]
        assert db.session.scalar(select(Notification)) is None
