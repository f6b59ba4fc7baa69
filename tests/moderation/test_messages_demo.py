"""The demo conversation: both sides see it, the newest message unread, and a note."""

from __future__ import annotations

from datetime import UTC, datetime

from core import clock
from core.extensions import db
from core.models import Participant
from moderation import messages, notes
from moderation.message_demo import CONVERSATION, seed_demo_messages
from tests.moderation.message_helpers import MINE, PEER, make_cast, signed_in, text_of

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_demo_conversation_once_with_the_newest_unread(app):
    clock.set_time(NOW)
    cast = make_cast(app)
    with app.app_context():
        participant = db.session.get(Participant, cast.participant)
        assert seed_demo_messages(participant, now=NOW) == len(CONVERSATION)
        assert seed_demo_messages(participant, now=NOW) == 0
        db.session.commit()
        conversation = messages.conversation(participant)
        assert len(conversation) == len(CONVERSATION)
        assert conversation[0].body.startswith("Hi Quiet Harbour, I'm Kit,")
        assert messages.unread_for_participant(participant) == 1
        assert messages.unread_for_staff(participant) == 0
        assert len(notes.notes_for(participant, viewer=participant.moderator)) == 1
    inbox = text_of(signed_in(app, MINE).get("/messages"))
    assert "I liked the part about small steps" in inbox and "Just checking in" in inbox
    staff = text_of(signed_in(app, PEER).get(f"/moderation/participants/{cast.participant}"))
    assert "Just checking in" in staff and "Finds actions daunting" in staff


def test_no_demo_conversation_without_a_moderator(app):
    cast = make_cast(app)
    with app.app_context():
        participant = db.session.get(Participant, cast.participant)
        participant.moderator_id = None
        assert seed_demo_messages(participant, now=NOW) == 0
