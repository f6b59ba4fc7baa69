"""Moderator <-> participant messages: one conversation per participant with "their
moderators".

Transaction contract: every function flushes and never commits; the outermost caller
(view, job, CLI) commits once. Refusals are :class:`MessageError` (a sentence for the
writer, with the form field it belongs to) or :class:`PermissionDenied`.

A message to a participant notifies them in the app (``moderator_message``) and, when
``by_sms`` is asked and they may be texted, also goes into the SMS outbox (sent after
commit by the dispatch job). A participant's reply notifies their caseload moderator, or
whoever wrote to them last when they have none. Bodies are plain text; pages escape them.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from core import audit, notifications
from core.clock import utcnow
from core.events import record_event, register_kind
from core.extensions import db
from core.models import Participant, User
from core.roles import MODERATORS, Role
from core.sms import outbox
from moderation.care_models import ModeratorMessage

BODY_MAX = 2000
#: an SMS copy is cut to this many characters (about three SMS segments)
SMS_MAX = 459
SMS_PURPOSE = "moderator_message"

register_kind("moderator_contact", "A moderator got in touch")


class MessageError(Exception):
    def __init__(self, message: str, field: str | None = "body") -> None:
        super().__init__(message)
        self.field = field


class PermissionDenied(Exception):
    pass


def clean_body(body: str | None) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise MessageError("Please write a message first.")
    if len(body) > BODY_MAX:
        raise MessageError(f"Please keep the message under {BODY_MAX:,} characters "
                           f"(it has {len(body):,}).")
    return body


def send(participant: Participant, body: str, *, actor: User, by_sms: bool = False,
         task_id: int | None = None) -> ModeratorMessage:
    """A moderator writes to a participant. ``by_sms`` also texts it when the participant
    may be texted (``outbox.may_text``); check ``message.sms_message_id`` to know."""
    if actor.role not in MODERATORS:
        raise PermissionDenied("only moderators write to participants")
    body = clean_body(body)
    message = ModeratorMessage(participant_id=participant.id, sender_id=actor.id,
                               direction="to_participant", body=body, created_at=utcnow())
    db.session.add(message)
    db.session.flush()
    if by_sms:
        text = body if len(body) <= SMS_MAX else body[:SMS_MAX - 1] + "…"
        sms = outbox.queue(participant=participant, body=text, purpose=SMS_PURPOSE,
                           dedupe_key=f"moderator-message:{message.id}")
        message.sms_message_id = sms.id if sms is not None else None
    notifications.notify(participant.user, kind="moderator_message",
                         text=f"{actor.name} sent you a message", url="/messages",
                         actor=actor, dedupe_key="moderator-messages")
    record_event(participant, "moderator_contact", message_id=message.id,
                 by_sms=message.sms_message_id is not None, task_id=task_id)
    audit.record("moderation.message.sent", actor=actor, target=participant.user,
                 message_id=message.id, by_sms=message.sms_message_id is not None)
    db.session.flush()
    return message


def reply(participant: Participant, body: str) -> ModeratorMessage:
    """The participant answers their moderators."""
    body = clean_body(body)
    message = ModeratorMessage(participant_id=participant.id, sender_id=participant.user_id,
                               direction="from_participant", body=body, created_at=utcnow())
    db.session.add(message)
    db.session.flush()
    recipient = reply_recipient(participant)
    if recipient is not None:
        notifications.notify(recipient, kind="moderator_message",
                             text=f"{participant.user.name} replied to your message",
                             url=f"/moderation/participants/{participant.id}/messages",
                             actor=participant.user,
                             dedupe_key=f"participant-reply:{participant.id}")
    return message


def reply_recipient(participant: Participant) -> User | None:
    """The caseload moderator; else the staff member who wrote last; else None."""
    if participant.moderator is not None and participant.moderator.is_enabled:
        return participant.moderator
    last = db.session.scalar(
        select(ModeratorMessage).where(ModeratorMessage.participant_id == participant.id,
                                       ModeratorMessage.direction == "to_participant")
        .order_by(ModeratorMessage.created_at.desc(), ModeratorMessage.id.desc()).limit(1))
    return last.sender if last is not None and last.sender.is_enabled else None


def conversation(participant: Participant, *, limit: int = 200) -> list[ModeratorMessage]:
    """The last ``limit`` messages, oldest first."""
    rows = db.session.scalars(
        select(ModeratorMessage).where(ModeratorMessage.participant_id == participant.id)
        .order_by(ModeratorMessage.created_at.desc(), ModeratorMessage.id.desc())
        .limit(limit)).all()
    return list(reversed(rows))


def mark_read(participant: Participant, *, reader: User) -> int:
    """Mark the other side's messages read; returns how many changed."""
    direction = ("to_participant" if reader.role == Role.PARTICIPANT else "from_participant")
    result = db.session.execute(
        update(ModeratorMessage)
        .where(ModeratorMessage.participant_id == participant.id,
               ModeratorMessage.direction == direction, ModeratorMessage.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False))
    return result.rowcount or 0


def unread_for_participant(participant: Participant) -> int:
    return db.session.scalar(
        select(func.count(ModeratorMessage.id)).where(
            ModeratorMessage.participant_id == participant.id,
            ModeratorMessage.direction == "to_participant",
            ModeratorMessage.read_at.is_(None))) or 0
