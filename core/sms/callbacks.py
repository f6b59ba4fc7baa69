"""Twilio status callbacks: ``queued → sent → delivered`` (or ``undelivered``/``failed``
with an error code), applied forward only. The callback URL carries our outbox id, so a
callback also settles a row whose send ended ``unknown``. Flushes; the caller commits."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import select

from core.clock import utcnow
from core.extensions import db
from core.models import Participant
from core.sms import statuses
from core.sms.models import OUT, SmsMessage
from core.sms.optout import opt_out

log = logging.getLogger("kinship.sms.status")


def _code(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    # ASCII digits only ("²".isdigit() is true) and small enough for the column
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


def _locked(message_id: int) -> SmsMessage | None:
    query = select(SmsMessage).where(SmsMessage.id == message_id, SmsMessage.direction == OUT)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def apply_status(message_id: int, form: Mapping[str, str]) -> str:
    """Apply one callback; return what happened ("moved", "ignored", "unknown_message",
    "sid_mismatch")."""
    message = _locked(message_id)
    if message is None:
        return "unknown_message"
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if message.twilio_sid and sid and message.twilio_sid != sid:
        log.warning("sms %s: status callback for another MessageSid", message.id)
        return "sid_mismatch"
    if message.status in (statuses.PENDING, statuses.CANCELLED):
        return "ignored"  # never handed to Twilio by us (a forged or stray callback)
    if message.twilio_sid is None and sid:
        message.twilio_sid = sid
    status = statuses.from_twilio(form.get("MessageStatus") or form.get("SmsStatus"))
    code = _code(form.get("ErrorCode"))
    now = utcnow()
    if message.status in (statuses.SENDING, statuses.UNKNOWN) and status is not None:
        statuses.advance(message, statuses.QUEUED, now=now)
    moved = status is not None and statuses.advance(message, status, now=now, error_code=code)
    if code == statuses.OPTED_OUT_CODE and message.participant_id is not None:
        opt_out(db.session.get(Participant, message.participant_id), source="twilio_21610")
    db.session.flush()
    log.info("sms %s status callback: %s (%s, code %s)", message.id,
             message.status, "moved" if moved else "kept", code)
    return "moved" if moved else "ignored"
