"""Adherence and dropout metrics per participant, for the whole trial so far or per trial
week, worked out from one ``sources.Snapshot`` (a fixed number of queries).

Read-only. The meaning of every field is in ``definitions.DEFINITIONS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from core.clock import utcnow
from core.extensions import db
from core.models import Participant
from modules import gamification
from modules.overview import Context, unlock_state
from modules.progress import ProgressCounts
from outcomes.adherence import sources
from outcomes.adherence.definitions import (
    COUNTED_KINDS,
    DEFAULT_STOPPED_AFTER_DAYS,
    INTERVENTION_KINDS,
    USE_KINDS,
)
from outcomes.models import Study

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Adherence:
    """One participant's figures for one period (see ``DEFINITIONS`` for each field)."""

    participant_id: int
    arm: str | None
    week: int | None
    period_start: datetime
    period_end: datetime
    steps_completed: int
    steps_completed_in_period: int
    steps_available: int
    adherence_ratio: float | None
    modules_completed: int
    modules_available: int
    module_adherence_ratio: float | None
    core_modules_completed: int
    core_modules_total: int
    all_core_completed: bool | None
    active_days: int
    active_weeks: int
    weeks_in_period: int
    logins: int
    posts: int
    comments: int
    reactions: int
    sms_answered: int | None
    sms_delivered: int | None
    sms_response_rate: float | None
    assessments_completed: int | None
    assessments_due: int | None
    moderator_contacts: int
    received_intervention: bool
    last_active_at: datetime | None
    days_without_use: int
    stopped_using: bool
    post_treatment_completed: bool | None
    study_dropout: bool | None
    withdrawn_from: str

    def as_row(self) -> dict[str, Any]:
        """Metric name -> value, for exports (``participant_id`` is the caller's to map).
        Shallow: every value is a scalar, and ``asdict``'s deep copies were a fifth of the
        export's adherence table."""
        return {f.name: getattr(self, f.name) for f in _FIELDS}


_FIELDS = fields(Adherence)


@dataclass(frozen=True)
class _Timeline:
    """A participant's trial weeks: week k is local days [d0 + 7(k-1), d0 + 7k)."""

    zone: ZoneInfo
    randomised_at: datetime
    first_day: date

    def week_of(self, at: datetime) -> int:
        return (at.astimezone(self.zone).date() - self.first_day).days // 7 + 1

    def week_bounds(self, week: int) -> tuple[datetime, datetime]:
        start = self._day_start(self.first_day + timedelta(days=7 * (week - 1)))
        return max(start, self.randomised_at), self._day_start(
            self.first_day + timedelta(days=7 * week))

    def _day_start(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.zone).astimezone(UTC)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _timeline(person: sources.Person) -> _Timeline | None:
    if person.randomised_at is None:
        return None
    zone = _zone(person.timezone)
    return _Timeline(zone, person.randomised_at, person.randomised_at.astimezone(zone).date())


# --- public API ----------------------------------------------------------------------------

def adherence(participant_ids: Sequence[int], *, now: datetime | None = None,
              study: Study | None = None,
              stopped_after_days: int = DEFAULT_STOPPED_AFTER_DAYS) -> dict[int, Adherence]:
    """Whole-trial figures from randomisation to ``now`` for each randomised participant
    among ``participant_ids`` (the others are left out), in a fixed number of queries."""
    now = now or utcnow()
    snapshot = sources.load(participant_ids, end=now, study=study)
    result = {}
    for pid, person in snapshot.people.items():
        line = _timeline(person)
        if line is None or now <= person.randomised_at:
            continue
        result[pid] = _figures(snapshot, person, line, None, person.randomised_at, now,
                               stopped_after_days)
    return result


def weekly(participant_ids: Sequence[int], *, now: datetime | None = None,
           study: Study | None = None,
           stopped_after_days: int = DEFAULT_STOPPED_AFTER_DAYS) -> dict[int, list[Adherence]]:
    """Figures for each trial week from week 1 to the current (partial) week, for each
    randomised participant, in a fixed number of queries."""
    now = now or utcnow()
    snapshot = sources.load(participant_ids, end=now, study=study)
    result: dict[int, list[Adherence]] = {}
    for pid, person in snapshot.people.items():
        line = _timeline(person)
        if line is None or now <= person.randomised_at:
            continue
        weeks = []
        for week in range(1, line.week_of(now) + 1):
            start, end = line.week_bounds(week)
            weeks.append(_figures(snapshot, person, line, week, start, min(end, now),
                                  stopped_after_days))
        result[pid] = weeks
    return result


def for_study(study: Study, *, now: datetime | None = None,
              stopped_after_days: int = DEFAULT_STOPPED_AFTER_DAYS) -> dict[int, Adherence]:
    """Whole-trial figures for every randomised participant of ``study``."""
    ids = list(db.session.scalars(select(Participant.id).where(
        Participant.study_id == study.id, Participant.randomised_at.is_not(None))))
    return adherence(ids, now=now, study=study, stopped_after_days=stopped_after_days)


# --- one participant, one period -----------------------------------------------------------

def _figures(snap: sources.Snapshot, person: sources.Person, line: _Timeline, week: int | None,
             start: datetime, end: datetime, stopped_after_days: int) -> Adherence:
    events = [(kind, at) for kind, at in snap.events.get(person.id, ()) if start <= at < end]
    counts = Counter(kind for kind, _ in events)
    use_days = {at.astimezone(line.zone).date() for kind, at in events if kind in USE_KINDS}
    use_weeks = {(day - line.first_day).days // 7 + 1 for day in use_days}
    last_use = max((at for at in snap.use_times.get(person.id, ()) if at < end), default=None)
    idle = end - max(line.randomised_at, last_use or line.randomised_at)
    received = any(kind in INTERVENTION_KINDS and at < end
                   for kind, at in snap.events.get(person.id, ()))
    whole = week is None
    return Adherence(
        participant_id=person.id, arm=person.arm_code, week=week, period_start=start,
        period_end=end, **_module_figures(snap, person, start, end),
        active_days=len(use_days), active_weeks=len(use_weeks),
        weeks_in_period=_weeks_between(line, start, end),
        logins=counts[COUNTED_KINDS["logins"]], posts=counts[COUNTED_KINDS["posts"]],
        comments=counts[COUNTED_KINDS["comments"]], reactions=counts[COUNTED_KINDS["reactions"]],
        **_sms_figures(snap, person.id, counts[COUNTED_KINDS["sms_answered"]], whole),
        **_assessment_figures(snap, person.id, whole),
        moderator_contacts=counts[COUNTED_KINDS["moderator_contacts"]],
        received_intervention=received, last_active_at=last_use,
        days_without_use=idle // DAY, stopped_using=idle >= timedelta(days=stopped_after_days),
        **_dropout_figures(snap, person.id, end, whole),
        withdrawn_from=", ".join(sorted({kind for kind, at in snap.withdrawals.get(person.id, ())
                                         if at < end})))


def _weeks_between(line: _Timeline, start: datetime, end: datetime) -> int:
    if end <= start:
        return 0
    return line.week_of(end - timedelta(microseconds=1)) - line.week_of(start) + 1


def _ratio(done: int, total: int) -> float | None:
    return done / total if total else None


def _module_figures(snap: sources.Snapshot, person: sources.Person, start: datetime,
                    end: datetime) -> dict[str, Any]:
    done = [(module_id, step_id, at) for module_id, step_id, at in
            snap.steps_done.get(person.id, ()) if at < end]
    by_module = Counter(module_id for module_id, _, _ in done)
    completed = _completed_keys(snap, by_module, {key for key, at in
                                                  snap.module_events.get(person.id, ())
                                                  if at < end})
    core = [m for m in snap.modules if m.is_core]
    core_done = sum(1 for m in core if m.key in completed)
    has_modules = bool(person.features.get("modules"))
    available = _available_modules(snap, person, by_module, completed, end) if has_modules else []
    steps_available = sum(snap.step_totals.get(m.id, 0) for m in available)
    steps_done = sum(by_module.get(m.id, 0) for m in available)
    modules_done = sum(1 for m in available if m.key in completed)
    return {
        "steps_completed": len(done),
        "steps_completed_in_period": sum(1 for _, _, at in done if at >= start),
        "steps_available": steps_available,
        "adherence_ratio": _ratio(steps_done, steps_available),
        "modules_completed": len(completed),
        "modules_available": len(available),
        "module_adherence_ratio": _ratio(modules_done, len(available)),
        "core_modules_completed": core_done,
        "core_modules_total": len(core),
        "all_core_completed": (core_done == len(core)) if has_modules and core else None,
    }


def _completed_keys(snap: sources.Snapshot, by_module: Counter[int],
                    events: set[str]) -> set[str]:
    """As ``modules.progress.completed_keys``: an event, or every active step done."""
    return {m.key for m in snap.modules
            if m.key in events or (snap.step_totals.get(m.id, 0)
                                   and by_module.get(m.id, 0) >= snap.step_totals[m.id])}


def _available_modules(snap: sources.Snapshot, person: sources.Person, by_module: Counter[int],
                       completed: set[str], end: datetime) -> list[Any]:
    """The modules with steps that the platform's own unlock rules open at ``end``."""
    levels_apply = bool(person.features.get("gamification"))
    points = sum(p for at, p in snap.points.get(person.id, ()) if at < end)
    ctx = Context(now=end, start=person.randomised_at or person.enrolled_at,
                  zone=_zone(person.timezone),
                  level=gamification.level_for(points).number if levels_apply else 1,
                  levels_apply=levels_apply, modules=snap.modules,
                  counts=ProgressCounts(total=snap.step_totals, done=dict(by_module)),
                  completed=frozenset(completed), titles={m.key: m.title for m in snap.modules})
    # unlock_state reads only the context, which is built here from the snapshot
    return [m for m in snap.modules
            if snap.step_totals.get(m.id) and unlock_state(None, m, ctx=ctx)[0]]  # type: ignore


def _sms_figures(snap: sources.Snapshot, pid: int, answered_events: int,
                 whole: bool) -> dict[str, Any]:
    if whole and snap.sms is not None:
        answered, delivered = snap.sms.get(pid, (0, 0))
        return {"sms_answered": answered, "sms_delivered": delivered,
                "sms_response_rate": _ratio(answered, delivered)}
    return {"sms_answered": answered_events, "sms_delivered": None, "sms_response_rate": None}


def _assessment_figures(snap: sources.Snapshot, pid: int, whole: bool) -> dict[str, Any]:
    if whole and snap.assessments is not None:
        completed, due = snap.assessments.get(pid, (0, 0))
        return {"assessments_completed": completed, "assessments_due": due}
    return {"assessments_completed": None, "assessments_due": None}


def _dropout_figures(snap: sources.Snapshot, pid: int, end: datetime,
                     whole: bool) -> dict[str, Any]:
    """Post-treatment completion and study dropout at ``end``: completed by a
    ``timepoint_completed`` event (or, for the whole trial so far, by the schedule's own
    count); a dropout once withdrawn from the study or past the window's close."""
    key = snap.post_treatment_key
    if key is None:
        return {"post_treatment_completed": None, "study_dropout": None}
    done = any(k == key for k, at in snap.timepoint_events.get(pid, ()) if at < end) or (
        whole and pid in snap.post_treatment_done)
    withdrawn = any(kind == "study" and at < end for kind, at in snap.withdrawals.get(pid, ()))
    closes = (snap.post_treatment_closes or {}).get(pid)
    if done or withdrawn or closes is not None and end >= closes:
        dropout: bool | None = not done
    elif snap.post_treatment_closes is None:
        dropout = None
    else:
        dropout = False
    return {"post_treatment_completed": done, "study_dropout": dropout}
