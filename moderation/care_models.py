"""Tables of the moderators' care work: check-in rules and tasks, check-in message
templates, moderator <-> participant messages and staff notes.

Kept apart from :mod:`moderation.models` (screening, queue, alerts): these rows are about
looking after people, not about content. Free text here (messages, notes) is staff- or
participant-written and never leaves the platform in exports.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User

#: why a check-in task exists (rule reasons first, then the manual one)
CHECKIN_REASONS = {
    "inactive": "Inactive for a while",
    "missed_prompts": "Missed SMS prompts in a row",
    "mood_drop": "Mood dropping",
    "high_loneliness": "High loneliness on SMS",
    "alert_follow_up": "Follow-up after a risk alert",
    "manual": "Added by a moderator",
}
#: how the moderator got in touch when completing a task
CHECKIN_CHANNELS = {
    "in_app": "Message in the app",
    "sms": "Text message",
    "phone": "Phone call",
    "in_person": "In person",
    "other": "Other",
    "none": "No contact made",
}
#: what came of it
CHECKIN_OUTCOMES = {
    "reached": "Reached, doing all right",
    "reached_support": "Reached, support offered",
    "no_answer": "No answer yet",
    "declined": "Did not want contact",
    "referred": "Referred to a clinician",
    "not_needed": "No check-in needed",
}
TASK_STATUSES = ("open", "done", "cancelled")
#: who wrote a message
MESSAGE_DIRECTIONS = ("to_participant", "from_participant")


class CheckInRule(db.Model):
    """A study's setting for one automatic check-in rule. A missing row means the rule's
    defaults (see ``moderation.checkins``)."""

    __tablename__ = "checkin_rule"
    __table_args__ = (UniqueConstraint("study_id", "reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    reason: Mapped[str] = mapped_column(String(30))
    is_enabled: Mapped[bool] = mapped_column(default=True)
    #: the rule's number: days inactive, prompts missed in a row, mood points dropped,
    #: UCLA-3 score; unused by ``alert_follow_up``
    threshold: Mapped[float]
    #: hours from the task's creation to its due time
    due_hours: Mapped[int] = mapped_column(default=48)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class CheckInTask(db.Model):
    """A check-in a moderator owes a participant, made by a rule or by hand.

    ``open_key`` is ``"<participant id>:<reason>"`` while the task is open and NULL once
    it is done or cancelled: the unique index makes "one open task per participant and
    reason" hold even when two job runs race (NULLs never collide)."""

    __tablename__ = "checkin_task"
    __table_args__ = (Index("ix_checkin_task_moderator_status", "moderator_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    #: the caseload moderator when the task was made (None: nobody yet; any moderator may
    #: take it)
    moderator_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reason: Mapped[str] = mapped_column(String(30))
    #: the figures that triggered it, e.g. {"days": 9} or {"alert_id": 4}; codes, no text
    detail: Mapped[dict[str, Any]] = mapped_column(db.JSON, default=dict)
    open_key: Mapped[str | None] = mapped_column(String(60), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    channel: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(30))
    #: the moderator's staff-only note on the contact
    note: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("moderator_message.id"))
    #: optimistic concurrency: two moderators completing the same task, one wins
    version: Mapped[int] = mapped_column(default=1)

    participant: Mapped[Participant] = relationship(foreign_keys=[participant_id])
    moderator: Mapped[User | None] = relationship(foreign_keys=[moderator_id])
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id])
    message: Mapped[ModeratorMessage | None] = relationship(foreign_keys=[message_id])


class CheckInTemplate(db.Model):
    """An editable check-in message. ``body`` may use ``{name}`` (the participant's
    display name) and ``{moderator}`` (the sender's display name)."""

    __tablename__ = "checkin_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    #: the reason it suits best (a key of CHECKIN_REASONS), or None for any
    reason: Mapped[str | None] = mapped_column(String(30))
    is_active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class ModeratorMessage(db.Model):
    """One message between the moderators and a participant. A participant has one
    conversation with "their moderators"; replies reach the caseload moderator (or, when
    none, whoever wrote last)."""

    __tablename__ = "moderator_message"
    __table_args__ = (Index("ix_moderator_message_participant", "participant_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    #: the staff member who wrote it, or the participant's own user for replies
    sender_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    direction: Mapped[str] = mapped_column(String(20))
    #: plain text as typed (pages escape it and keep line breaks)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: when the other side first read it (participant for to_participant, staff otherwise)
    read_at: Mapped[datetime | None]
    #: set when the message also went out as a text (the outbox row)
    sms_message_id: Mapped[int | None] = mapped_column(ForeignKey("sms_message.id"))

    participant: Mapped[Participant] = relationship(foreign_keys=[participant_id])
    sender: Mapped[User] = relationship(foreign_keys=[sender_id])


class StaffNote(db.Model):
    """A staff-only note on a participant's record (never shown to participants, never
    exported). ``clinician_only`` notes are hidden from peer moderators."""

    __tablename__ = "staff_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    body: Mapped[str] = mapped_column(Text)
    clinician_only: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship(foreign_keys=[author_id])
