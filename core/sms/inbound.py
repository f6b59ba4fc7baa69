"""Texts in: store first, then keywords, screening and the registered handlers.

:func:`store` writes the inbound row (unique on MessageSid, so a webhook Twilio delivers
twice is stored once) and the webhook commits it before anything else happens.
:func:`process` then handles it in a second transaction: STOP/START/HELP, or risk
screening followed by the inbound handlers that other packages registered. A text whose
processing failed keeps ``handled_at`` empty and is processed again when Twilio retries
the webhook.

Replies go through the outbox (not TwiML ``<Message>``): they are then tracked like any
text (MessageSid, delivery status), count against the daily cost guard, respect STOP,
and show on the developer inbox. The webhook answers an empty ``<Response/>``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from core.screening import screen, screened
from core.sms import hooks, statuses
from core.sms.keywords import keyword
from core.sms.models import IN, SmsMessage
from core.sms.optout import opt_in, opt_out
from core.sms.outbox import queue_reply

log = logging.getLogger("kinship.sms.inbound")

START_CONFIRMATION = ("You will get texts from the study again. Reply STOP at any time to "
                      "stop them, or HELP for help.")


def participant_for(phone: str) -> Participant | None:
    """The participant with this E.164 number (the most recently enrolled if several)."""
    if not phone:
        return None
    return db.session.scalar(
        select(Participant).join(User, User.id == Participant.user_id)
        .where(Participant.phone == phone, User.is_enabled.is_(True))
        .order_by(Participant.enrolled_at.desc(), Participant.id.desc()).limit(1))


def store(form: Mapping[str, str]) -> tuple[SmsMessage, bool]:
    """Store an inbound text; return (row, whether it is new). Flushes."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not sid:
        raise ValueError("an inbound text needs a MessageSid")
    if len(sid) > 64:  # Twilio's are 34 characters; the column holds 64
        raise ValueError("a MessageSid is at most 64 characters")
    existing = db.session.scalar(select(SmsMessage).where(SmsMessage.twilio_sid == sid))
    if existing is not None:
        return existing, False
    phone = (form.get("From") or "").strip()[:20]
    participant = participant_for(phone)
    now = utcnow()
    row = SmsMessage(direction=IN, participant_id=participant.id if participant else None,
                     purpose="inbound", body=form.get("Body") or "", phone=phone,
                     status=statuses.RECEIVED, twilio_sid=sid, send_after=now, created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # the same webhook, twice at once
        first = select(SmsMessage).where(SmsMessage.twilio_sid == sid)
        return db.session.scalars(first).one(), False
    return row, True


def process(message: SmsMessage) -> str:
    """Handle a stored inbound text once; return its outcome. Flushes."""
    if message.handled_at is not None:
        return message.outcome or ""
    participant = message.participant
    word = keyword(message.body, opted_out=participant is None
                   or participant.sms_opted_out_at is not None)
    if participant is None:
        outcome = word or "unknown_sender"
    elif word is not None:
        outcome = _keyword(participant, word, message)
    else:
        outcome = _ordinary(participant, message)
    message.outcome, message.handled_at = outcome, utcnow()
    db.session.flush()
    log.info("sms %s in: %s", message.id, outcome)
    return outcome


def _keyword(participant: Participant, word: str, message: SmsMessage) -> str:
    if word == "stop":
        opt_out(participant, source="stop")  # no reply: carriers send their own
    elif word == "start":
        opt_in(participant)
        queue_reply(participant=participant, body=START_CONFIRMATION, purpose="start",
                    in_reply_to=message)
    else:
        queue_reply(participant=participant, body=hooks.help_text(participant), purpose="help",
                    in_reply_to=message)
    return word


def _ordinary(participant: Participant, message: SmsMessage) -> str:
    verdict = screen(message.body, channel="sms", author=participant.user)
    message.screening = verdict.action
    if verdict.action == "block":
        # kept (a reply is never lost) but not acted on; moderation sees it in the inbox
        return "blocked"
    screened(verdict, channel="sms", content_id=message.id, author=participant.user)
    for handler in hooks.inbound_handlers:
        reply = handler(message)
        if isinstance(reply, str):
            if reply.strip():
                queue_reply(participant=participant, body=reply, purpose="reply",
                            in_reply_to=message)
            return "handled"
    for tell in hooks.unsolicited_handlers:
        tell(message)
    return "unsolicited"
