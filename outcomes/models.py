"""Study and arm tables.

An arm's feature flags decide which parts of the platform its participants
see; other packages ask ``outcomes.services.features_for``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
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
    enrolment_opened_at: Mapped[datetime | None]

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
