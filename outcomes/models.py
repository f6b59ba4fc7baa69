"""Study and arm tables, the participant path (status changes, withdrawals) and the
allocation sequence (seed and slots).

An arm's feature flags decide which parts of the platform its participants
see; other packages ask ``outcomes.services.features_for``. The allocation tables
are read and written only by ``outcomes.randomisation``: no page shows them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.extensions import db

#: every feature an arm can switch on or off, with what it means for participants
FEATURES = {
    "modules": "Therapy modules",
    "gamification": "Points, badges and levels",
    "forum": "Peer forum",
    "checkins": "Moderator check-ins",
    "sms": "SMS symptom prompts",
}


class Study(db.Model):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    #: prefix of generated study codes, e.g. KIN
    code_prefix: Mapped[str] = mapped_column(String(10), default="KIN")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    #: shown to participants who ask for help (SMS HELP, the help page)
    contact: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: set by ``randomisation.open_enrolment``, together with the allocation seed
    enrolment_opened_at: Mapped[datetime | None]
    #: the recruiting sites, the levels of the ``site`` stratum
    sites: Mapped[list[Any]] = mapped_column(default=list)
    #: names of the stratification factors, in order, e.g. ["site", "baseline_loneliness"]
    strata: Mapped[list[Any]] = mapped_column(default=list)
    #: levels of each factor other than ``site``, e.g. {"baseline_loneliness": ["high", "low"]}
    stratum_levels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: randomise a participant as soon as their baseline questionnaires are complete
    #: (strata worked out from their site and baseline scores); otherwise a researcher does it
    randomise_on_baseline: Mapped[bool] = mapped_column(default=False)
    #: the consent text participants of this study agree to (one of the published
    #: ``ConsentVersion`` rows); chosen on the set-up page
    consent_version_id: Mapped[int | None] = mapped_column(ForeignKey("consent_version.id"))
    #: no activity for this many days makes a followed-up participant lost to follow-up
    lost_after_days: Mapped[int] = mapped_column(default=28)

    arms: Mapped[list[Arm]] = relationship(back_populates="study", order_by="Arm.id")


class Arm(db.Model):
    __tablename__ = "study_arm"
    __table_args__ = (UniqueConstraint("study_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    code: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    #: relative allocation weight
    ratio: Mapped[int] = mapped_column(default=1)
    #: {feature: bool} for each key of FEATURES
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)

    study: Mapped[Study] = relationship(back_populates="arms")

    def has(self, feature: str) -> bool:
        return bool(self.features.get(feature, False))


class StatusChange(db.Model):
    """One step of a participant along the path, with its date (for the trial flow)."""

    __tablename__ = "participant_status_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: optional staff-entered free text; may identify people, so it is kept out of
    #: exports and of the audit log
    reason: Mapped[str | None] = mapped_column(Text)


class Withdrawal(db.Model):
    """A participant stopping part of the study: the intervention, the study, or SMS."""

    __tablename__ = "withdrawal"
    __table_args__ = (Index("ix_withdrawal_participant_kind", "participant_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    #: "intervention", "study" or "sms" (see ``outcomes.participants.WITHDRAWAL_KINDS``)
    kind: Mapped[str] = mapped_column(String(20))
    #: when the participant withdrew (may be earlier than when it was recorded)
    at: Mapped[datetime]
    #: staff-entered free text; may identify people, so it is kept out of exports and of
    #: the audit log (which records only the kind and this row's id)
    reason: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class AllocationSeed(db.Model):
    """The secret from which a study's whole allocation sequence is derived.

    Never shown on any page: anyone holding it can compute every future allocation.
    """

    __tablename__ = "allocation_seed"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), unique=True)
    seed: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AllocationSlot(db.Model):
    """One position of a stratum's allocation sequence; taken when a participant is
    randomised into it."""

    __tablename__ = "allocation_slot"
    __table_args__ = (UniqueConstraint("study_id", "stratum", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    #: canonical stratum key, e.g. "site=North clinic|baseline_loneliness=high"
    stratum: Mapped[str] = mapped_column(String(255))
    #: 1, 2, 3... within the stratum, in allocation order
    position: Mapped[int]
    arm_id: Mapped[int] = mapped_column(ForeignKey("study_arm.id"))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"), unique=True)
    assigned_at: Mapped[datetime | None]
