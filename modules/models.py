"""Therapy content (synced from ``modules/content``) and participants' progress.

Content rows carry a stable ``key`` from the content files, so editing or
reordering content never loses progress: progress points at rows whose key
does not change, and steps removed from the files are deactivated, not deleted.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.extensions import db

STEP_KINDS = ("read", "video", "reflect", "quiz", "action", "checkpoint")


class Pathway(db.Model):
    __tablename__ = "module_pathway"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)


class Module(db.Model):
    __tablename__ = "module"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the content folder name; stable across edits
    key: Mapped[str] = mapped_column(String(60), unique=True)
    pathway_id: Mapped[int | None] = mapped_column(ForeignKey("module_pathway.id"))
    title: Mapped[str] = mapped_column(String(120))
    summary: Mapped[str] = mapped_column(Text, default="")
    #: position within the pathway
    position: Mapped[int] = mapped_column(default=0)
    minutes: Mapped[int] = mapped_column(default=10)
    #: counts towards "all core modules" (adherence and a badge)
    is_core: Mapped[bool] = mapped_column(default=True)
    #: e.g. ["cbt", "self-compassion"]
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    #: {"after": module key} | {"level": n} | {"week": n} | {} (open)
    unlock: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: SHA-256 of the source files, so sync can tell what changed
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)

    pathway: Mapped[Pathway | None] = relationship()
    steps: Mapped[list[Step]] = relationship(
        back_populates="module", order_by="Step.position",
        primaryjoin="and_(Step.module_id == Module.id, Step.is_active)", viewonly=True)


class Step(db.Model):
    __tablename__ = "module_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the ``id`` in the step file's front matter; stable and unique in the library
    key: Mapped[str] = mapped_column(String(80), unique=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("module.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(160))
    #: sanitised HTML rendered from the Markdown body at sync time
    body_html: Mapped[str] = mapped_column(Text, default="")
    #: kind-specific data (quiz questions, prompt, panels, video...), HTML pre-rendered
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(default=True)

    module: Mapped[Module] = relationship(back_populates="steps", foreign_keys=[module_id])


class StepProgress(db.Model):
    """A step a participant has completed (one row per participant and step)."""

    __tablename__ = "step_progress"
    __table_args__ = (UniqueConstraint("participant_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("module_step.id"), index=True)
    completed_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuizAttempt(db.Model):
    __tablename__ = "quiz_attempt"
    __table_args__ = (Index("ix_quiz_attempt_participant_step", "participant_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    step_id: Mapped[int] = mapped_column(ForeignKey("module_step.id"))
    #: {question index: [chosen option indexes]}
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: fraction of questions answered exactly right, 0..1
    score: Mapped[float] = mapped_column(default=0.0)
    passed: Mapped[bool] = mapped_column(default=False)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ActionPlan(db.Model):
    """A real-world step a participant said they would try, and the later check."""

    __tablename__ = "action_plan"
    __table_args__ = (UniqueConstraint("participant_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("module_step.id"))
    planned_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: when to ask "did you try it?"
    check_due_at: Mapped[datetime]
    checked_at: Mapped[datetime | None]
    tried: Mapped[bool | None]
    #: 1 (not well) .. 5 (really well), when tried
    rating: Mapped[int | None]

    step: Mapped[Step] = relationship()


class JournalEntry(db.Model):
    """A private reflection. Only its author sees it, unless screening flags it for a
    clinician (the consent text says so)."""

    __tablename__ = "journal_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    step_id: Mapped[int | None] = mapped_column(ForeignKey("module_step.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: set by risk screening once it exists: None (not screened), "clear", "flagged"
    screening: Mapped[str | None] = mapped_column(String(20))


class CheckpointRating(db.Model):
    __tablename__ = "checkpoint_rating"
    __table_args__ = (UniqueConstraint("participant_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("module_step.id"))
    #: 1 (not helpful) .. 5 (very helpful)
    rating: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class MoodEntry(db.Model):
    """One mood per participant per local day; a second entry that day updates it."""

    __tablename__ = "mood_entry"
    __table_args__ = (UniqueConstraint("participant_id", "local_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    #: the day in the participant's own time zone
    local_date: Mapped[date]
    #: 1 (very low) .. 5 (very good)
    score: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Award(db.Model):
    """Points and badges. The unique key makes every award happen once."""

    __tablename__ = "award"
    __table_args__ = (UniqueConstraint("participant_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    #: "points", "badge", or "level" (a level reached, so level_reached is recorded once)
    kind: Mapped[str] = mapped_column(String(10))
    #: what earned it, e.g. "step_completed:ul-what-is" or the badge id "first-step"
    key: Mapped[str] = mapped_column(String(120))
    points: Mapped[int] = mapped_column(default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ContentSuggestion(db.Model):
    """A module or step a moderator suggests to a participant ("suggested for you")."""

    __tablename__ = "content_suggestion"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("module.id"))
    step_id: Mapped[int | None] = mapped_column(ForeignKey("module_step.id"))
    #: a short note from the moderator, plain text
    note: Mapped[str] = mapped_column(Text, default="")
    suggested_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dismissed_at: Mapped[datetime | None]

    module: Mapped[Module] = relationship()
    step: Mapped[Step | None] = relationship()
