"""Tables of the SMS symptom-prompt protocol.

- ``SmsProtocolVersion``: every saved version of a study's protocol, with who and when.
- ``PlannedPrompt``: one prompt for one participant on one local day, unique on
  (participant, prompt key, local date), so planning twice never sends twice. It points at
  its outbox rows (``core.sms.SmsMessage``): the prompt and, if any, its reminder.
- ``PromptReply``: every reply matched to a prompt (answered, late or unreadable), the
  outcome data of the protocol.
- ``SmsOptChange``: STOP and START as the trial sees them (STOP is counted as an SMS
  withdrawal once per opt-out).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.extensions import db

#: a reply that could be scored
ANSWERED = "answered"
#: a reply that came after the prompt had expired: stored, never scored
LATE = "late"
#: a reply that could not be read as an answer (or was out of range)
UNREADABLE = "unreadable"


class SmsProtocolVersion(db.Model):
    __tablename__ = "sms_protocol_version"
    __table_args__ = (UniqueConstraint("study_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    #: 1, 2, 3... within the study
    version: Mapped[int]
    #: the YAML as the researcher typed it (comments kept)
    source: Mapped[str] = mapped_column(Text)
    #: the checked mapping the planner reads
    data: Mapped[dict[str, Any]]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlannedPrompt(db.Model):
    __tablename__ = "sms_prompt"
    __table_args__ = (
        UniqueConstraint("participant_id", "prompt_key", "slot"),
        Index("ix_sms_prompt_participant_planned", "participant_id", "planned_at"),
        Index("ix_sms_prompt_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    protocol_version_id: Mapped[int] = mapped_column(ForeignKey("sms_protocol_version.id"))
    prompt_key: Mapped[str] = mapped_column(String(40))
    #: the participant's local date the prompt belongs to
    slot: Mapped[date]
    planned_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    #: when the reminder is due (None: the prompt has none, or it would fall outside hours)
    reminder_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(ForeignKey("sms_message.id"))
    reminder_message_id: Mapped[int | None] = mapped_column(ForeignKey("sms_message.id"))
    #: the first readable, in-time answer
    answered_at: Mapped[datetime | None]
    #: set by the ``sms.expire`` job when the prompt closed without an answer
    expired_at: Mapped[datetime | None]
    #: the one help text for an unreadable reply was sent
    help_sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptReply(db.Model):
    __tablename__ = "sms_prompt_reply"
    __table_args__ = (Index("ix_sms_prompt_reply_participant_at", "participant_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("sms_prompt.id"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    prompt_key: Mapped[str] = mapped_column(String(40))
    #: answered, late or unreadable
    status: Mapped[str] = mapped_column(String(12))
    #: the answer read from the text: a number, true/false, or a list of digits (None when
    #: unreadable)
    value: Mapped[Any | None] = mapped_column(db.JSON)
    #: the number analysed: the scale value, 1/0 for yes/no, the instrument's total score
    score: Mapped[float | None]
    #: how the score was made, for instrument answers (instrument version and rule)
    scoring: Mapped[str | None] = mapped_column(Text)
    #: "out_of_range" or "unreadable" for unreadable replies
    problem: Mapped[str | None] = mapped_column(String(20))
    received_at: Mapped[datetime]
    #: seconds from the prompt's send (or planned) time to the reply
    latency_seconds: Mapped[int | None]
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("sms_message.id"),
                                                           unique=True)
    #: the prompt's outbound message this reply answers
    prompt_message_id: Mapped[int | None] = mapped_column(ForeignKey("sms_message.id"))

    @property
    def is_late(self) -> bool:
        return self.status == LATE


class SmsOptChange(db.Model):
    """A STOP or START, with the SMS withdrawal it was counted as (STOP)."""

    __tablename__ = "sms_opt_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    #: "stop" or "start"
    keyword: Mapped[str] = mapped_column(String(5))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawal_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawal.id"))
