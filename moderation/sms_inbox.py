"""Texts that answer no prompt ("unsolicited") reach the participant's moderators: each
becomes a message from the participant in their conversation (``/messages`` on the
participant's side, the staff conversation page on the moderators'), linked to the SMS it
came from, and the caseload moderator is told in the app.

Runs inside the inbound webhook's transaction (flushes; the webhook commits).
"""

from __future__ import annotations

from core import notifications
from core.clock import utcnow
from core.extensions import db
from core.sms import hooks
from core.sms.models import SmsMessage
from moderation.care_models import ModeratorMessage
from moderation.messages import BODY_MAX, reply_recipient


def to_moderators(message: SmsMessage) -> None:
    participant = message.participant
    if participant is None or not message.body.strip():
        return
    body = message.body.strip()[:BODY_MAX]
    row = ModeratorMessage(participant_id=participant.id, sender_id=participant.user_id,
                           direction="from_participant", body=body, created_at=utcnow(),
                           sms_message_id=message.id)
    db.session.add(row)
    db.session.flush()
    recipient = reply_recipient(participant)
    if recipient is not None:
        notifications.notify(recipient, kind="moderator_message",
                             text=f"{participant.user.name} sent a text message",
                             url=f"/moderation/participants/{participant.id}/messages",
                             actor=participant.user,
                             dedupe_key=f"participant-reply:{participant.id}")


def register() -> None:
    hooks.register_unsolicited_handler(to_moderators)
