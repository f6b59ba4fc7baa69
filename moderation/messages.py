"""Moderator <-> participant messages: one conversation per participant with "their
moderators".

Transaction contract: every function flushes and never commits; the outermost caller
(view, job, CLI) commits once. Refusals are :class:`MessageError` (a sentence for the
writer, with the form field it belongs to) or :class:`PermissionDenied`.

**Staff to participant.** Only a moderator who may see the participant
(``moderation.services.can_view``: a peer their own caseload, a clinician anyone) writes,
and never to someone who must not be contacted (withdrawn from the study). The message
notifies the participant in the app (``moderator_message``) and, when ``by_sms`` is asked
and they may be texted, also goes into the SMS outbox (sent after commit by the dispatch
job). It records the ``moderator_contact`` activity event and an audit entry (ids only).

**Participant to staff.** A reply notifies whoever answers for the participant
(:func:`reply_recipients`): their caseload moderator; else the staff member who wrote to
them last (if they may still see them); else the on-call clinician; else every clinician,
so someone on the team is always told. It records ``moderator_message_written``.
It is screened like every other channel once ``core.screening`` lists the
``moderator_message`` channel: never held or refused (it goes to care staff anyway), but
risk words open a risk alert for the on-call clinician and the page shows the author the
crisis resources (:func:`write` says so).

Bodies are plain text as typed; pages escape them and keep line breaks. Neither the
audit log, activity events nor notifications carry a body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from core import audit, notifications, screening
from core.clock import utcnow
from core.events import record_event, register_kind
from core.extensions import db
from core.models import Participant, User
from core.notifications import Notification
from core.roles import MODERATORS, Role
from core.sms import SmsMessage, outbox
from moderation.care_models import ModeratorMessage
from moderation.record import TimelineEntry
from moderation.services import can_view
from outcomes.participants import may_contact

BODY_MAX = 2000
#: an SMS copy is cut to this many characters (about three SMS segments)
SMS_MAX = 459
SMS_PURPOSE = "moderator_message"
#: how participants see a staff member who has no display name (never their e-mail)
TEAM_NAME = "Your moderator"
#: the screening channel of participants' messages
SCREENING_CHANNEL = "moderator_message"

register_kind("moderator_contact", "A moderator got in touch")
register_kind("moderator_message_written", "Wrote to their moderator")
notifications.register_kind("participant_message", "A participant wrote to you",
                            "{count} new messages from participants")


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


def staff_name(user: User) -> str:
    """How a participant sees a staff member: their display name, never their e-mail."""
    return user.display_name or TEAM_NAME


def sms_refusal(participant: Participant) -> str | None:
    """Why a message cannot also go out as a text now (a sentence for staff), or None."""
    if outbox.may_text(participant):
        return None
    if not participant.phone:
        return "They have not given a mobile number."
    if participant.sms_opted_out_at is not None:
        return "They texted STOP, so the study does not text them."
    if not participant.sms_consent:
        return "They have not agreed to text messages."
    return "Their account is switched off."


def contact_refusal(participant: Participant) -> str | None:
    """Why staff may not write to this participant at all, or None."""
    if not may_contact(participant):
        return "They have withdrawn from the study and must not be contacted."
    if not participant.user.is_enabled:
        return "Their account is switched off."
    return None


def send(participant: Participant, body: str, *, actor: User, by_sms: bool = False,
         task_id: int | None = None) -> ModeratorMessage:
    """A moderator writes to a participant. ``by_sms`` also texts it when the participant
    may be texted (``outbox.may_text``); check ``message.sms_message_id`` to know (pages
    that must refuse instead ask :func:`sms_refusal` first)."""
    if actor.role not in MODERATORS or not can_view(actor, participant):
        raise PermissionDenied("only the participant's moderators write to them")
    refusal = contact_refusal(participant)
    if refusal is not None:
        raise MessageError(refusal)
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
                         text=f"{staff_name(actor)} sent you a message", url="/messages",
                         actor=actor, dedupe_key="moderator-messages")
    record_event(participant, "moderator_contact", message_id=message.id,
                 by_sms=message.sms_message_id is not None, task_id=task_id)
    audit.record("moderation.message.sent", actor=actor, target=participant.user,
                 message_id=message.id, by_sms=message.sms_message_id is not None)
    db.session.flush()
    return message


def send_from_page(participant: Participant, body: str, *, actor: User,
                   by_sms: bool = False) -> ModeratorMessage:
    """:func:`send` for a person who ticked "also send as a text": when the participant
    may not be texted it refuses (on the ``by_sms`` field) instead of sending in the app
    only, so the writer can decide."""
    if actor.role not in MODERATORS or not can_view(actor, participant):
        raise PermissionDenied("only the participant's moderators write to them")
    reason = sms_refusal(participant) if by_sms else None
    if reason is not None:
        raise MessageError(f"This cannot go out as a text: {reason}", "by_sms")
    return send(participant, body, actor=actor, by_sms=by_sms)


@dataclass(frozen=True)
class Written:
    message: ModeratorMessage
    #: the words suggest risk: a clinician was alerted; show the author crisis resources
    is_risk: bool


def write(participant: Participant, body: str) -> Written:
    """The participant writes to their moderators (the first message or a reply)."""
    body = clean_body(body)
    message = ModeratorMessage(participant_id=participant.id, sender_id=participant.user_id,
                               direction="from_participant", body=body, created_at=utcnow())
    db.session.add(message)
    db.session.flush()
    _tell_staff(participant, "wrote to you")
    record_event(participant, "moderator_message_written", message_id=message.id)
    return Written(message, _screen(participant, message))


def from_text(participant: Participant, sms: SmsMessage) -> ModeratorMessage | None:
    """File a text the participant sent that answers no prompt in their conversation
    (linked to the SMS; None for an empty one) and tell the staff as for a message
    written in the app. The SMS gateway has screened it already (channel ``sms``)."""
    body = (sms.body or "").replace("\r\n", "\n").strip()
    if not body:
        return None
    message = ModeratorMessage(participant_id=participant.id, sender_id=participant.user_id,
                               direction="from_participant", body=body[:BODY_MAX],
                               created_at=utcnow(), sms_message_id=sms.id)
    db.session.add(message)
    db.session.flush()
    _tell_staff(participant, "sent a text message")
    return message


def _tell_staff(participant: Participant, what: str) -> None:
    for recipient in reply_recipients(participant):
        notifications.notify(recipient, kind="participant_message",
                             text=f"{participant.user.name} ({participant.study_code}) {what}",
                             url=f"/moderation/participants/{participant.id}/messages",
                             actor=participant.user,
                             dedupe_key=f"participant-message:{participant.id}")


def reply(participant: Participant, body: str) -> ModeratorMessage:
    """:func:`write`, for callers that only need the message."""
    return write(participant, body).message


def _screen(participant: Participant, message: ModeratorMessage) -> bool:
    """Screen a stored message; whether it is risk. Until core lists the channel
    (see the report to the lead) there is nothing to screen it with."""
    if SCREENING_CHANNEL not in screening.CHANNELS:
        return False
    verdict = screening.screen(message.body, channel=SCREENING_CHANNEL,
                               author=participant.user)
    screening.screened(verdict, channel=SCREENING_CHANNEL, content_id=message.id,
                       author=participant.user)
    return verdict.is_risk


def _last_writer(participant: Participant) -> User | None:
    last = db.session.scalar(
        select(ModeratorMessage).options(joinedload(ModeratorMessage.sender))
        .where(ModeratorMessage.participant_id == participant.id,
               ModeratorMessage.direction == "to_participant")
        .order_by(ModeratorMessage.created_at.desc(), ModeratorMessage.id.desc()).limit(1))
    return last.sender if last is not None else None


def _reachable(user: User | None, participant: Participant) -> bool:
    return user is not None and user.is_enabled and can_view(user, participant)


def reply_recipient(participant: Participant) -> User | None:
    """The one person who answers for the participant: the caseload moderator; else the
    staff member who wrote last, if they may still see the participant; else None."""
    if _reachable(participant.moderator, participant):
        return participant.moderator
    last = _last_writer(participant)
    return last if _reachable(last, participant) else None


def reply_recipients(participant: Participant) -> list[User]:
    """Who is told of a participant's message: :func:`reply_recipient`; failing that the
    on-call clinician; failing that every clinician."""
    from moderation import alerts  # alerts imports much of moderation; only needed here

    first = reply_recipient(participant)
    if first is not None:
        return [first]
    entry = alerts.on_call()
    if entry is not None:
        return [entry.user]
    return alerts.clinicians()


def conversation(participant: Participant, *, limit: int = 200) -> list[ModeratorMessage]:
    """The last ``limit`` messages, oldest first, with their senders loaded."""
    rows = db.session.scalars(
        select(ModeratorMessage).options(joinedload(ModeratorMessage.sender))
        .where(ModeratorMessage.participant_id == participant.id)
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
    # rows already in the session must not keep showing "unread"
    for loaded in list(db.session.identity_map.values()):
        if isinstance(loaded, ModeratorMessage) and loaded.participant_id == participant.id:
            db.session.expire(loaded, ["read_at"])
    return result.rowcount or 0


def _unread(participant_id: int, direction: str) -> int:
    return db.session.scalar(
        select(func.count(ModeratorMessage.id)).where(
            ModeratorMessage.participant_id == participant_id,
            ModeratorMessage.direction == direction,
            ModeratorMessage.read_at.is_(None))) or 0


def unread_for_participant(participant: Participant) -> int:
    """The moderators' messages the participant has not opened yet."""
    return _unread(participant.id, "to_participant")


def unread_for_participant_fact() -> Any:
    """``unread_for_participant`` of the outer ``Participant``, for ``core.principal``."""
    return (select(func.count(ModeratorMessage.id)).where(
        ModeratorMessage.participant_id == Participant.id,
        ModeratorMessage.direction == "to_participant",
        ModeratorMessage.read_at.is_(None)).scalar_subquery())


def unread_for_staff(participant: Participant) -> int:
    """The participant's messages no staff member has opened yet."""
    return _unread(participant.id, "from_participant")


def text_copies(conversation: list[ModeratorMessage]) -> dict[int, SmsMessage]:
    """The outbox rows of the messages that also went out as texts, by message id (one
    query), so staff see whether each text was sent, delivered or held back."""
    wanted = {m.sms_message_id: m.id for m in conversation if m.sms_message_id}
    if not wanted:
        return {}
    rows = db.session.scalars(select(SmsMessage).where(SmsMessage.id.in_(list(wanted))))
    return {wanted[row.id]: row for row in rows}


def has_conversation(participant: Participant) -> bool:
    return db.session.scalar(
        select(ModeratorMessage.id).where(ModeratorMessage.participant_id == participant.id)
        .limit(1)) is not None


def open_inbox(participant: Participant) -> int:
    """The participant opens their messages: the moderators' messages, and the
    notifications that only said "your moderator sent you a message", are marked read.
    Returns how many messages were new."""
    opened = mark_read(participant, reader=participant.user)
    db.session.execute(
        update(Notification)
        .where(Notification.user_id == participant.user_id,
               Notification.kind == "moderator_message", Notification.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False))
    return opened


def view_conversation(participant: Participant, *, actor: User) -> list[ModeratorMessage]:
    """A moderator opens the conversation: authorised, audited, the participant's
    messages marked read."""
    if actor.role not in MODERATORS or not can_view(actor, participant):
        raise PermissionDenied("not on your caseload")
    opened = mark_read(participant, reader=actor)
    audit.record("moderation.messages.viewed", actor=actor, target=participant.user,
                 marked_read=opened)
    return conversation(participant)


@dataclass(frozen=True)
class Summary:
    """The messages panel of the staff page of a participant."""

    recent: list[ModeratorMessage]
    unread: int
    total: int
    last_at: datetime | None


def summary(participant: Participant, *, recent: int = 3) -> Summary:
    rows = conversation(participant, limit=recent)
    total = db.session.scalar(select(func.count(ModeratorMessage.id)).where(
        ModeratorMessage.participant_id == participant.id)) or 0
    return Summary(rows, unread_for_staff(participant), total,
                   rows[-1].created_at if rows else None)


def panel_data(participant: Participant, viewer: User) -> dict[str, object] | None:
    """The "messages" panel of the staff page: the last three messages and the counts."""
    if viewer.role not in MODERATORS or not can_view(viewer, participant):
        return None
    return {"summary": summary(participant),
            "url": f"/moderation/participants/{participant.id}/messages"}


PREVIEW_MAX = 200


def preview(body: str) -> str:
    text = " ".join(body.split())
    return text if len(text) <= PREVIEW_MAX else text[:PREVIEW_MAX - 1].rstrip() + "…"


def timeline_source(participant: Participant, viewer: User,
                    since: datetime | None) -> list[TimelineEntry]:
    """The "message" timeline source: every message of the conversation, either way."""
    if viewer.role not in MODERATORS or not can_view(viewer, participant):
        return []
    query = (select(ModeratorMessage).options(joinedload(ModeratorMessage.sender))
             .where(ModeratorMessage.participant_id == participant.id))
    if since is not None:
        query = query.where(ModeratorMessage.created_at >= since)
    url = f"/moderation/participants/{participant.id}/messages"
    entries = []
    for message in db.session.scalars(query.order_by(ModeratorMessage.created_at)):
        if message.direction == "from_participant":
            text = "They wrote to their moderators"
        else:
            text = f"{message.sender.name} wrote to them" + (
                " (also as a text)" if message.sms_message_id else "")
        entries.append(TimelineEntry(at=message.created_at, kind="message", text=text,
                                     url=f"{url}#message-{message.id}",
                                     detail=(preview(message.body),)))
    return entries
