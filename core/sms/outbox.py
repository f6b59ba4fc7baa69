"""Writing to the outbox: :func:`queue` and :func:`cancel`.

Both run in the caller's transaction (they flush, never commit). Nothing leaves the
server here: the ``sms.dispatch`` job sends committed rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.clock import utcnow
from core.extensions import db
from core.models import Participant
from core.sms import statuses
from core.sms.models import OUT, SmsMessage


def may_text(participant: Participant | None) -> bool:
    """Whether the participant may be texted now: a phone, SMS consent, no STOP, enabled."""
    return bool(participant is not None and participant.phone and participant.sms_consent
                and participant.sms_opted_out_at is None and participant.user.is_enabled)


def queue(*, participant: Participant, body: str, purpose: str, dedupe_key: str | None = None,
          send_after: datetime | None = None) -> SmsMessage | None:
    """Add an outbound row; None (and nothing written) when the participant may not be
    texted. The same ``dedupe_key`` twice returns the first row."""
    if not may_text(participant):
        return None
    return _add(participant, body, purpose, dedupe_key, send_after)


def queue_reply(*, participant: Participant, body: str, purpose: str,
                in_reply_to: SmsMessage | None = None) -> SmsMessage | None:
    """A reply to a text the participant just sent (HELP, START, a handler's answer).
    They texted us, so only a missing phone or a STOP stops it; no consent check, as
    Twilio and carriers expect HELP to be answered."""
    if not participant.phone or participant.sms_opted_out_at is not None:
        return None
    row = _add(participant, body, purpose, None, None)
    if in_reply_to is not None:
        row.in_reply_to_id = in_reply_to.id
    return row


def _add(participant: Participant, body: str, purpose: str, dedupe_key: str | None,
         send_after: datetime | None) -> SmsMessage:
    if not body.strip():
        raise ValueError("an SMS needs a body")
    if dedupe_key is not None:
        existing = db.session.scalar(select(SmsMessage).where(SmsMessage.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    now = utcnow()
    row = SmsMessage(direction=OUT, participant_id=participant.id, purpose=purpose, body=body,
                     status=statuses.PENDING, dedupe_key=dedupe_key,
                     send_after=send_after or now, created_at=now)
    try:
        # a savepoint: a concurrent writer of the same key leaves the caller's
        # transaction usable, and we hand back that writer's row
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        if dedupe_key is None:
            raise
        return db.session.scalars(
            select(SmsMessage).where(SmsMessage.dedupe_key == dedupe_key)).one()
    return row


def cancel(message: SmsMessage, reason: str = "cancelled") -> bool:
    """Cancel a still-pending outbound row; False once a dispatcher has claimed it."""
    if message.direction != OUT:
        return False
    done = db.session.execute(
        update(SmsMessage)
        .where(SmsMessage.id == message.id, SmsMessage.status == statuses.PENDING)
        .values(status=statuses.CANCELLED, reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(message)
    return done == 1


def cancel_pending_for(participant: Participant, reason: str) -> int:
    """Cancel every still-pending outbound row of a participant (STOP, 21610)."""
    return db.session.execute(
        update(SmsMessage)
        .where(SmsMessage.participant_id == participant.id, SmsMessage.direction == OUT,
               SmsMessage.status == statuses.PENDING)
        .values(status=statuses.CANCELLED, reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
