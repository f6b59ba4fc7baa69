"""Caseload queries and the audited staff view of a participant.

Read-only except ``view_participant``, which writes an audit entry (flushes;
the view commits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core import audit
from core.clock import utcnow
from core.events import ActivityEvent, events_for, last_activity
from core.extensions import db
from core.models import Participant, User
from core.roles import MODERATORS, Role

#: traffic-light bands of days since last activity
BANDS = ((2, "green", "Active in the last 2 days"), (7, "amber", "Active in the last week"),
         (30, "red", "Quiet for over a week"))


class PermissionDenied(Exception):
    pass


@dataclass
class CaseloadRow:
    participant: Participant
    last_active: datetime | None
    band: str
    band_label: str


def activity_band(last: datetime | None, now: datetime) -> tuple[str, str]:
    if last is None:
        return "grey", "No activity yet"
    days = (now - last) / timedelta(days=1)
    for limit, colour, label in BANDS:
        if days < limit:
            return colour, label
    return "grey", "Quiet for over 30 days"


def caseload(actor: User, *, everyone: bool = False) -> list[CaseloadRow]:
    """The actor's participants (clinicians may ask for everyone's), newest activity last."""
    if actor.role not in MODERATORS:
        raise PermissionDenied("only moderators hold caseloads")
    query = select(Participant).options(joinedload(Participant.user)).where(
        Participant.status != "invited")
    if not (everyone and actor.role == Role.CLINICIAN):
        query = query.where(Participant.moderator_id == actor.id)
    participants = db.session.scalars(query.order_by(Participant.study_code)).all()
    last = last_activity([p.id for p in participants])
    now = utcnow()
    rows = [CaseloadRow(p, last.get(p.id), *activity_band(last.get(p.id), now))
            for p in participants]
    rows.sort(key=lambda r: r.last_active or datetime.min.replace(tzinfo=now.tzinfo))
    return rows


def can_view(actor: User, participant: Participant) -> bool:
    if actor.role == Role.CLINICIAN:
        return True
    return actor.role == Role.PEER_MODERATOR and participant.moderator_id == actor.id


def view_participant(participant: Participant, *, actor: User) -> list[ActivityEvent]:
    """Load a participant's timeline for a staff member and audit the look."""
    if not can_view(actor, participant):
        raise PermissionDenied("not on your caseload")
    audit.record("participant.viewed", actor=actor, target=participant)
    return events_for(participant.id, limit=200)
