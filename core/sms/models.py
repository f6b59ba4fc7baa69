"""``SmsMessage``: the SMS outbox and inbox in one table.

Outbound rows are written in the caller's transaction (``core.sms.queue``) and sent by
the ``sms.dispatch`` job after commit. Unique keys make every send and every receipt
happen once: ``dedupe_key`` (the caller's idea of "this prompt, this slot") and
``twilio_sid`` (Twilio's MessageSid, for outbound and inbound alike).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.extensions import db
from core.models import Participant

OUT = "out"
IN = "in"


class SmsMessage(db.Model):
    __tablename__ = "sms_message"
    __table_args__ = (
        # the dispatcher's query: due pending rows in send order
        Index("ix_sms_message_status_send_after", "status", "send_after"),
        Index("ix_sms_message_participant_created", "participant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "out" (outbox) or "in" (inbox)
    direction: Mapped[str] = mapped_column(String(3))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"))
    #: why: "prompt", "reminder", "feedback", "help", "reply", ...; "inbound" for texts in
    purpose: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    #: the other party in E.164: the number texted (out, taken at send time) or the sender (in)
    phone: Mapped[str | None] = mapped_column(String(20))
    #: out: pending, sending, unknown, queued, sent, delivered, undelivered, failed, cancelled;
    #: in: received
    status: Mapped[str] = mapped_column(String(20))
    #: Twilio's MessageSid (SM...), unique: a webhook delivered twice is stored once
    twilio_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: Twilio's error code (e.g. 30003), or ours for a refusal; see ``core.sms.statuses``
    error_code: Mapped[int | None]
    #: why a row was cancelled or failed without a Twilio code, e.g. "opted_out", "daily_limit"
    reason: Mapped[str | None] = mapped_column(String(40))
    #: the caller's idempotency key: the same key twice is one row
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    send_after: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: which dispatcher run claimed the row, and when (a row stuck in "sending" is reconciled)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    #: how many times reconciliation put a never-created message back in the queue (max 1)
    resends: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    #: inbound: when keywords and handlers were done with it (None: not yet, or they failed)
    handled_at: Mapped[datetime | None]
    #: inbound: "stop", "start", "help", "handled", "unsolicited", "unknown_sender", "blocked"
    outcome: Mapped[str | None] = mapped_column(String(20))
    #: inbound: the screening verdict's action (publish, flag, hold, block)
    screening: Mapped[str | None] = mapped_column(String(10))
    #: the outbound message this one answers (set by inbound handlers that know), if any
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("sms_message.id"))

    participant: Mapped[Participant | None] = relationship(foreign_keys=[participant_id])

    def __repr__(self) -> str:  # never the body or the phone number
        return f"<SmsMessage {self.id} {self.direction} {self.purpose} {self.status}>"
