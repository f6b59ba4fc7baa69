"""The activity-event spine: one append-only row per meaningful participant action.

Adherence, streaks, points and the moderator timeline are all derived from
these rows. ``record_event`` flushes; the caller commits.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.extensions import db

#: the kinds known so far; domain packages add theirs with ``register_kind``
KINDS: dict[str, str] = {
    "login": "Signed in",
    "invite_accepted": "Set up their account",
    "consent_given": "Gave consent",
    "profile_updated": "Updated their settings",
}


class ActivityEvent(db.Model):
    __tablename__ = "activity_event"
    __table_args__ = (
        Index("ix_activity_event_participant_at", "participant_id", "at"),
        Index("ix_activity_event_kind_at", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: small structured facts (ids, scores); never free text
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


def register_kind(kind: str, label: str) -> None:
    KINDS[kind] = label


def record_event(
    participant: Any, kind: str, *, at: datetime | None = None, **detail: Any
) -> ActivityEvent:
    if kind not in KINDS:
        raise ValueError(f"unknown activity event kind {kind!r}; register it first")
    event = ActivityEvent(participant_id=participant.id, kind=kind, at=at or utcnow(),
                          detail=json.loads(json.dumps(detail, default=str)))
    db.session.add(event)
    db.session.flush()
    return event


def events_for(participant_id: int, *, since: datetime | None = None, limit: int = 200
               ) -> list[ActivityEvent]:
    query = select(ActivityEvent).where(ActivityEvent.participant_id == participant_id)
    if since is not None:
        query = query.where(ActivityEvent.at >= since)
    return list(db.session.scalars(query.order_by(ActivityEvent.at.desc()).limit(limit)))


def last_activity(participant_ids: list[int]) -> dict[int, datetime]:
    """The newest event time of each participant, in one query."""
    if not participant_ids:
        return {}
    rows = db.session.execute(
        select(ActivityEvent.participant_id, db.func.max(ActivityEvent.at))
        .where(ActivityEvent.participant_id.in_(participant_ids))
        .group_by(ActivityEvent.participant_id)
    ).all()
    return dict(rows)
