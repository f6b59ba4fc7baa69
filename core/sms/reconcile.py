"""``sms.reconcile``: find out what became of texts whose send had no clear answer.

Candidates: rows marked ``unknown`` (5xx, timeout) and rows stuck in ``sending`` (the
dispatcher died mid-send), once a grace period has passed so Twilio's own status
callback (which carries our outbox id in its URL) can settle most of them first.

For each: with a MessageSid, fetch it; without one, list the texts sent to that number
since the claim and match the body. Found: record the sid and status. Proven never
created: back to ``pending`` (at most once per row), else ``failed``. Twilio not
answering: left for the next run. Commits per row.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from core.clock import utcnow
from core.extensions import db
from core.sms import statuses
from core.sms.gateway import Gateway, LookupFailed, RemoteMessage, get_gateway
from core.sms.models import OUT, SmsMessage

log = logging.getLogger("kinship.sms.reconcile")

#: a resend after proof that Twilio never created the message: at most this many
MAX_RESENDS = 1


def reconcile(*, gateway: Gateway | None = None, limit: int = 200) -> dict[str, int]:
    gateway = gateway or get_gateway()
    config = current_app.config
    now = utcnow()
    settled = now - timedelta(seconds=int(config["SMS_RECONCILE_AFTER_SECONDS"]))
    stuck = now - timedelta(seconds=int(config["SMS_STUCK_AFTER_SECONDS"]))
    rows = list(db.session.scalars(
        select(SmsMessage)
        .where(SmsMessage.direction == OUT,
               or_(and_(SmsMessage.status == statuses.UNKNOWN,
                        SmsMessage.claimed_at <= settled),
                   and_(SmsMessage.status == statuses.SENDING, SmsMessage.claimed_at <= stuck)))
        .order_by(SmsMessage.claimed_at).limit(limit)))
    report = {"checked": len(rows), "found": 0, "requeued": 0, "failed": 0, "unreachable": 0}
    for row in rows:
        outcome = _reconcile_one(row, gateway)
        report[outcome] += 1
        log.info("sms %s reconciled: %s", row.id, outcome)
        db.session.commit()
    return report


def _reconcile_one(row: SmsMessage, gateway: Gateway) -> str:
    if not row.phone and not row.twilio_sid:
        # claimed but never prepared: nothing was sent
        _requeue(row, count=False)
        return "requeued"
    try:
        if row.twilio_sid:
            remote = gateway.fetch(row.twilio_sid)
            found = [remote] if remote is not None else []
        else:
            found = gateway.find(to=row.phone or "", body=row.body,
                                 created_after=row.claimed_at or row.created_at)
    except LookupFailed:
        return "unreachable"
    if found:
        _record(row, sorted(found, key=lambda m: m.created_at or utcnow())[0], len(found))
        return "found"
    if row.resends < MAX_RESENDS:
        _requeue(row, count=True)
        return "requeued"
    row.status, row.reason = statuses.FAILED, "unconfirmed"
    return "failed"


def _record(row: SmsMessage, remote: RemoteMessage, copies: int) -> None:
    if copies > 1:
        log.warning("sms %s: Twilio holds %s copies", row.id, copies)
    if row.twilio_sid is None:
        taken = db.session.scalar(select(SmsMessage.id).where(SmsMessage.twilio_sid == remote.sid))
        if taken is None:
            row.twilio_sid = remote.sid
    status = statuses.from_twilio(remote.status) or statuses.QUEUED
    if row.status in (statuses.SENDING, statuses.UNKNOWN):
        row.status = statuses.QUEUED
        row.sent_at = row.sent_at or remote.created_at or utcnow()
    statuses.advance(row, status, now=utcnow(), error_code=remote.error_code)
    try:
        db.session.flush()
    except IntegrityError:  # a status callback recorded the sid on another row meanwhile
        db.session.rollback()


def _requeue(row: SmsMessage, *, count: bool) -> None:
    row.status, row.claimed_by, row.claimed_at = statuses.PENDING, None, None
    row.send_after = utcnow()
    if count:
        row.resends += 1
