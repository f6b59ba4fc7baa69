"""The console backend (embedded default): nothing leaves the machine.

A "sent" text is the outbox row itself, marked delivered at once; the developer SMS
inbox page (development mode only) shows it, and lets you reply as the participant
through the real, signed inbound webhook.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import select

from core.extensions import db
from core.sms.gateway import ACCEPTED, RemoteMessage, SendResult
from core.sms.models import SmsMessage

log = logging.getLogger("kinship.sms.console")


class ConsoleGateway:
    def send(self, *, to: str, body: str, status_callback: str | None) -> SendResult:
        sid = "SM" + uuid.uuid4().hex
        log.info("console SMS stored as %s (see the developer SMS inbox)", sid)
        return SendResult(ACCEPTED, sid=sid, status="delivered")

    def fetch(self, sid: str) -> RemoteMessage | None:
        row = db.session.scalar(select(SmsMessage).where(SmsMessage.twilio_sid == sid))
        if row is None:
            return None
        return RemoteMessage(sid=sid, status="delivered", to=row.phone or "", body=row.body,
                             created_at=row.sent_at)

    def find(self, *, to: str, body: str, created_after: datetime) -> list[RemoteMessage]:
        # console sends never fail half-way: a row that has no sid was never "sent"
        return []
