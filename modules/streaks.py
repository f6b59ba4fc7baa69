"""Streaks: a participant's current run of active local days, one missed day per ISO
week forgiven. Read by the home and progress pages through ``gamification.summary``."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select

from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant
from modules.progress import day_start, local_date, participant_zone

#: events that make a day count towards a streak (forum kinds arrive with the forum)
STREAK_KINDS = ("step_completed", "mood_logged", "quiz_answered", "action_checked",
                "reflection_written", "post_written", "comment_written")

#: how far back the first streak query looks; a longer streak costs one more query
STREAK_WINDOW_DAYS = 70


@dataclass(frozen=True)
class Streak:
    #: counted (active) days in the current run
    days: int
    #: missed days forgiven inside the run (at most one per ISO week)
    grace_days_used: int
    #: whether today already counts
    active_today: bool


def streak(participant: Participant, *, today: date | None = None) -> Streak:
    """The participant's current run of active local days.

    A day counts when the participant did any of ``STREAK_KINDS`` that day in their own
    time zone. The run ends today, or yesterday while today is not active yet. One missed
    day per ISO week (Monday to Sunday) is forgiven: it neither breaks nor adds to the run.
    """
    zone = participant_zone(participant)
    today = today or local_date(participant)
    floor: date | None = today - timedelta(days=STREAK_WINDOW_DAYS)
    while True:
        active = active_days(participant.id, STREAK_KINDS, zone, since=floor, until=today)
        result, reached_floor = count_streak(active, today, floor)
        if not reached_floor or floor is None:
            return result
        floor = None  # the run is longer than the window: look at everything


def count_streak(active: set[date], today: date, floor: date | None = None
                 ) -> tuple[Streak, bool]:
    """Walk back from today over ``active`` days; also say whether the walk hit ``floor``
    (the earliest day the caller looked at), where the answer may be incomplete."""
    active_today = today in active
    day = today if active_today else today - timedelta(days=1)
    days = used = pending = 0
    forgiven: set[tuple[int, int]] = set()
    while floor is None or day > floor:
        iso = day.isocalendar()
        week = (iso.year, iso.week)
        if day in active:
            days, used, pending = days + 1, used + pending, 0
        elif week not in forgiven:
            forgiven.add(week)
            pending += 1  # forgiven only if an active day comes before it
        else:
            break
        day -= timedelta(days=1)
    else:
        return Streak(days, used, active_today), True
    return Streak(days, used, active_today), False


def active_days(participant_id: int, kinds: tuple[str, ...], zone: ZoneInfo, *,
                since: date | None = None, until: date | None = None) -> set[date]:
    """The local days (in ``zone``) on which the participant has events of ``kinds``."""
    params: dict[str, Any] = {"participant_id": participant_id, "kinds": list(kinds)}
    if since is not None:
        params["since"] = day_start(since, zone)
    if until is not None:
        params["until"] = day_start(until + timedelta(days=1), zone)
    query = _active_days_query(since is not None, until is not None)
    return {at.astimezone(zone).date() for at in db.session.scalars(query, params)}


@functools.cache
def _active_days_query(since: bool, until: bool) -> Any:
    """Built once per shape and reused with new parameters (no statement building or
    cache-key work per request)."""
    query = select(ActivityEvent.at).where(
        ActivityEvent.participant_id == bindparam("participant_id"),
        ActivityEvent.kind.in_(bindparam("kinds", expanding=True)))
    if since:
        query = query.where(ActivityEvent.at >= bindparam("since"))
    if until:
        query = query.where(ActivityEvent.at < bindparam("until"))
    return query
