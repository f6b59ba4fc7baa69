"""Tables of the assessment schedule and of the answers given.

A ``Timepoint`` is one assessment occasion of a study (baseline, week 6, ...). Each
participant fills one ``AssessmentResponse`` per timepoint and instrument; every answer
is its own ``ItemAnswer`` row, saved as it is given (so nothing is lost and the long
export is a plain join). On submit the response keeps the score from
``outcomes.scoring.score`` together with the instrument version and the scoring and
missing-data rules as text. ``AssessmentReminder`` makes each reminder happen once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.extensions import db


class Timepoint(db.Model):
    __tablename__ = "assessment_timepoint"
    __table_args__ = (UniqueConstraint("study_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    #: stable identifier used in exports, e.g. "baseline", "week12"
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(80))
    #: order in the schedule (0 first)
    position: Mapped[int] = mapped_column(default=0)
    #: instrument ids, in the order they are filled
    instruments: Mapped[list[Any]] = mapped_column(default=list)
    #: open from consent until randomisation (``opens_day``/``closes_day`` unused)
    is_baseline: Mapped[bool] = mapped_column(default=False)
    #: the timepoint whose absence counts as study dropout
    is_post_treatment: Mapped[bool] = mapped_column(default=False)
    #: local days after the day of randomisation: opens at the start of ``opens_day``
    #: and closes at the end of ``closes_day``
    opens_day: Mapped[int | None]
    closes_day: Mapped[int | None]
    #: overdue from the start of the local day this many days after opening
    overdue_after_days: Mapped[int] = mapped_column(default=7)
    #: days after opening on which an in-app reminder goes out, e.g. [0, 3, 7]
    reminder_days: Mapped[list[Any]] = mapped_column(default=list)
    #: days after opening on which an SMS reminder (a link) goes out
    sms_reminder_days: Mapped[list[Any]] = mapped_column(default=list)
    #: baseline only: stratification factors worked out from baseline scores,
    #: {factor: {instrument, score, cut_off, at_or_above, below}} or {factor: {instrument, label}}
    stratum_rules: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AssessmentResponse(db.Model):
    """One participant's answers to one instrument at one timepoint, and its score."""

    __tablename__ = "assessment_response"
    __table_args__ = (UniqueConstraint("participant_id", "timepoint_id", "instrument"),
                      Index("ix_assessment_response_timepoint_submitted", "timepoint_id",
                            "submitted_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    timepoint_id: Mapped[int] = mapped_column(ForeignKey("assessment_timepoint.id"))
    instrument: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    # --- the stored score, set on submit from outcomes.scoring.score -------------
    instrument_version: Mapped[str | None] = mapped_column(String(20))
    total: Mapped[float | None]
    #: further totals, e.g. MSPSS {"total_sum": 60.0}
    extra_totals: Mapped[dict[str, Any]] = mapped_column(default=dict)
    subscales: Mapped[dict[str, Any]] = mapped_column(default=dict)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    missing: Mapped[int | None]
    #: "ok" or "insufficient" (outcomes.scoring)
    score_status: Mapped[str | None] = mapped_column(String(20))
    scoring_rule: Mapped[str | None] = mapped_column(Text)
    missing_rule: Mapped[str | None] = mapped_column(Text)

    timepoint: Mapped[Timepoint] = relationship()
    answers: Mapped[list[ItemAnswer]] = relationship(
        back_populates="response", order_by="ItemAnswer.item", cascade="all, delete-orphan")


class ItemAnswer(db.Model):
    """One item's answer, saved when it is given (changed answers overwrite it)."""

    __tablename__ = "assessment_item_answer"
    __table_args__ = (UniqueConstraint("response_id", "item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("assessment_response.id"))
    #: the item number in the instrument definition
    item: Mapped[int]
    value: Mapped[int]
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)

    response: Mapped[AssessmentResponse] = relationship(back_populates="answers")


class AssessmentReminder(db.Model):
    """A reminder that went out (or was due and could not be sent): one per participant,
    timepoint, channel and reminder day, so the job never repeats one."""

    __tablename__ = "assessment_reminder"
    __table_args__ = (UniqueConstraint("participant_id", "timepoint_id", "channel", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    timepoint_id: Mapped[int] = mapped_column(ForeignKey("assessment_timepoint.id"))
    #: "app" or "sms"
    channel: Mapped[str] = mapped_column(String(10))
    #: the reminder offset (days after opening) this row stands for
    day: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: "sent", or "not_sent" (e.g. no SMS consent): either way it is not tried again
    outcome: Mapped[str] = mapped_column(String(20), default="sent")
