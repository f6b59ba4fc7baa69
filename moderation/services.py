"""Who may look at a participant's record, and the audited staff view of it.

The caseload itself is :mod:`moderation.caseload` (re-exported here). The page of a
participant is made of the header facts, the merged timeline of
:func:`moderation.record.timeline` grouped by the participant's local day, and the
registered panels.

Read-only except ``view_participant``, which writes an audit entry (flushes; the view
commits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from core import audit
from core.clock import utcnow
from core.models import Participant, User
from core.roles import Role
from moderation import record, timeline
from moderation.caseload import (  # noqa: F401 - the caseload's API, as before
    BANDS,
    Caseload,
    CaseloadRow,
    Filters,
    PermissionDenied,
    activity_band,
    caseload,
    row_for,
)
from modules.progress import participant_zone

#: the periods the timeline offers, in days (None: everything, newest ``LIMIT`` first)
PERIODS = {"7": 7, "30": 30, "90": 90, "all": None}
DEFAULT_PERIOD = "90"
LIMIT = 300


def can_view(actor: User, participant: Participant) -> bool:
    if actor.role == Role.CLINICIAN:
        return True
    return actor.role == Role.PEER_MODERATOR and participant.moderator_id == actor.id


@dataclass(frozen=True)
class Day:
    """The timeline entries of one local day of the participant, newest first."""

    day: date
    entries: list[record.TimelineEntry]


@dataclass
class ParticipantRecord:
    person: Participant
    #: the caseload's figures for them: last activity, mood trend, SMS replies, progress,
    #: open alerts, check-ins and unread replies, whether they may be contacted
    figures: CaseloadRow
    days: list[Day]
    #: the kinds the timeline shows (all of ``timeline.KIND_LABELS`` when not filtered)
    shown: frozenset[str]
    period: str
    #: the newest ``LIMIT`` entries only: there are more
    truncated: bool
    panels: list[tuple[record.Panel, dict[str, Any]]]


def parse_kinds(values: list[str]) -> frozenset[str] | None:
    """``show`` arguments (repeated, or comma-separated) -> known kinds; None for all."""
    kinds = {kind.strip() for value in values for kind in value.split(",")}
    known = frozenset(kinds & set(timeline.KIND_LABELS))
    return known or None


def view_participant(participant: Participant, *, actor: User,
                     kinds: frozenset[str] | None = None,
                     period: str = DEFAULT_PERIOD) -> ParticipantRecord:
    """Load a participant's record for a staff member and audit the look."""
    if not can_view(actor, participant):
        raise PermissionDenied("not on your caseload")
    audit.record("participant.viewed", actor=actor, target=participant)
    now = utcnow()
    period = period if period in PERIODS else DEFAULT_PERIOD
    days = PERIODS[period]
    entries = record.timeline(participant, actor, kinds=set(kinds) if kinds else None,
                              since=now - timedelta(days=days) if days else None,
                              limit=LIMIT)
    return ParticipantRecord(
        person=participant, figures=row_for(participant, now=now),
        days=by_day(entries, participant),
        shown=kinds or frozenset(timeline.KIND_LABELS), period=period,
        truncated=len(entries) >= LIMIT, panels=record.panels(participant, actor))


def by_day(entries: list[record.TimelineEntry], participant: Participant) -> list[Day]:
    """Entries (newest first) grouped by the participant's local day, newest day first."""
    zone = participant_zone(participant)
    days: list[Day] = []
    for entry in entries:
        day = entry.at.astimezone(zone).date()
        if not days or days[-1].day != day:
            days.append(Day(day, []))
        days[-1].entries.append(entry)
    return days
