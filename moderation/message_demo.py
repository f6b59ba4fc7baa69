"""Messages and notes for the demo study: the showcase participant has a short
conversation with their moderator (the newest message still unread, so the navigation
and the notifications show it) and a staff note, so both sides of the messages have
something to show on first run.

Flushes; the demo seed commits. Safe to run again (nothing is added twice)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from core import clock
from core.clock import utcnow
from core.extensions import db
from core.models import Participant
from core.notifications import Notification
from moderation import messages, notes
from moderation.care_models import ModeratorMessage

#: (hours before now, who writes, text)
CONVERSATION = (
    (50, "moderator", "Hi {name}, I'm {moderator}, your moderator for the study. How are you "
                      "finding the first module?"),
    (47, "participant", "Hello! It's good so far. I liked the part about small steps.\n"
                        "Not sure I'll manage the action this week though."),
    (26, "moderator", "That's completely fine. Even thinking about it counts. Would a smaller "
                      "step help, like a two-minute message to someone?"),
    (3, "moderator", "Just checking in. No need to reply if you're busy."),
)
NOTE = ("Engaged and chatty in messages. Finds actions daunting: suggest smaller steps. "
        "(Demo note.)")


def seed_demo_messages(participant: Participant, *, now: datetime | None = None) -> int:
    """Write the demo conversation for ``participant`` (who must have a moderator);
    return how many messages were added (0 when they already have some)."""
    moderator = participant.moderator
    if moderator is None or db.session.scalar(select(ModeratorMessage.id).where(
            ModeratorMessage.participant_id == participant.id).limit(1)) is not None:
        return 0
    now = now or utcnow()
    values = {"name": participant.user.display_name or "there",
              "moderator": messages.staff_name(moderator)}
    for hours, who, text in CONVERSATION:
        with clock.frozen_at(now - timedelta(hours=hours)):
            body = text.format(**values)
            if who == "moderator":
                messages.send(participant, body, actor=moderator)
            else:
                messages.reply(participant, body)
    # both sides read everything but the newest message (and the notifications of it)
    read_at = now - timedelta(hours=12)
    db.session.execute(
        update(ModeratorMessage)
        .where(ModeratorMessage.participant_id == participant.id,
               ModeratorMessage.created_at < read_at)
        .values(read_at=read_at).execution_options(synchronize_session=False))
    db.session.execute(
        update(Notification)
        .where(Notification.user_id.in_([participant.user_id, moderator.id]),
               Notification.kind.in_(["moderator_message", "participant_message"]),
               Notification.updated_at < read_at)
        .values(read_at=read_at).execution_options(synchronize_session=False))
    with clock.frozen_at(now - timedelta(hours=40)):
        notes.add_note(participant, NOTE, actor=moderator)
    db.session.flush()
    return len(CONVERSATION)
