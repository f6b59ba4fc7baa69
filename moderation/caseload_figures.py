"""Two caseload figures that take more than a count: the mood trend and module progress.

Both are read for a whole list of participants in a fixed number of queries (see
:mod:`moderation.caseload`) and worked out per participant in Python, in the
participant's own time zone.

- **Mood trend**: the mean mood of the participant's last 7 local days against the 7
  before (``modules.mood``: one score 1-5 per local day).
- **Module progress**: steps done / steps of the modules open to them now, by the
  library's own unlock rules (``modules.overview.unlock_state``), and modules completed.

Read-only: nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, case, func, select

from core.events import ActivityEvent
from core.extensions import db
from modules import gamification
from modules.models import Module, MoodEntry, Step, StepProgress
from modules.overview import Context, unlock_state
from modules.progress import ProgressCounts, completed_keys, local_date, participant_zone
from outcomes.models import Arm

MOOD_DAYS = 7
#: a change of mood smaller than this (either way) counts as steady
STEADY = 0.5


@dataclass(frozen=True)
class Person:
    """What the caseload needs of a participant (read as plain columns: an ORM object per
    row costs more than every figure together on a long list)."""

    id: int
    study_code: str
    status: str
    display_name: str | None
    timezone: str
    arm_id: int | None
    randomised_at: datetime | None
    enrolled_at: datetime


@dataclass(frozen=True)
class MoodTrend:
    """Mean mood of the last ``MOOD_DAYS`` local days (today included) and of the days before."""

    recent: float | None = None
    previous: float | None = None
    recent_days: int = 0
    previous_days: int = 0
    #: recent - previous, to one decimal (None when either week has no mood)
    change: float | None = field(init=False, default=None)
    #: "up", "down", "steady", "new" (no earlier week to compare) or "none"
    direction: str = field(init=False, default="none")

    def __post_init__(self) -> None:
        # worked out once: pages and sorting read them for every row
        change = None
        if self.recent is not None and self.previous is not None:
            change = round(self.recent - self.previous, 1)
        object.__setattr__(self, "change", change)
        object.__setattr__(self, "direction", _direction(self.recent, change))


def _direction(recent: float | None, change: float | None) -> str:
    if recent is None:
        return "none"
    if change is None:
        return "new"
    if change >= STEADY:
        return "up"
    return "down" if change <= -STEADY else "steady"

@dataclass(frozen=True)
class Progress:
    has_modules: bool = False
    steps_done: int = 0
    steps_available: int = 0
    modules_completed: int = 0

    @property
    def ratio(self) -> float | None:
        if not self.has_modules or not self.steps_available:
            return None
        return self.steps_done / self.steps_available

    @property
    def percent(self) -> int | None:
        ratio = self.ratio
        return None if ratio is None else round(ratio * 100)

# --------------------------------------------------------------------------- mood trend

#: the weeks a trend compares, as (first, last) days back from the participant's today
MOOD_WEEKS = ((0, MOOD_DAYS - 1), (MOOD_DAYS, 2 * MOOD_DAYS - 1))


def mood_sums(who: Select[Any], params: Mapping[str, Any]) -> dict[int, Sequence[int]]:
    """Participant id -> the sums and day counts of both weeks for each of the three
    possible local "todays" (12 figures), for each participant of ``who`` (a select of
    participant ids, with its bound ``params`` and :func:`mood_params`) with a mood in the
    last 2 x ``MOOD_DAYS`` local days. One grouped query.

    A participant's local day is the UTC day, the one before or the one after, so each
    participant takes the sums of their own (:func:`mood_trend`); Python never sees the
    moods. A query of its own, not a subquery joined to the caseload's list: a join to an
    aggregate lets the planner re-run the aggregate for every person when its statistics
    are stale (830 ms for 500 people on freshly loaded tables)."""
    return {pid: values for pid, *values in db.session.execute(_mood_query(who), params)}


@lru_cache(maxsize=16)
def _mood_query(who: Select[Any]) -> Select[Any]:
    """Built once per process and kind of list (``who`` is one of the caseload's selects,
    built once too; every value is a bound parameter)."""
    sums = []
    for n in range(len(MOOD_WEEKS) * 3):
        inside = MoodEntry.local_date.between(bindparam(f"mood_{n}_from"),
                                              bindparam(f"mood_{n}_to"))
        sums += [func.sum(case((inside, MoodEntry.score), else_=0)),
                 func.sum(case((inside, 1), else_=0))]
    return (select(MoodEntry.participant_id, *sums)
            .where(MoodEntry.participant_id.in_(who),
                   MoodEntry.local_date >= bindparam("mood_from"))
            .group_by(MoodEntry.participant_id))


def mood_params(now: datetime) -> dict[str, date]:
    """The days :func:`mood_sums` adds up at ``now``: each week of each possible today."""
    todays = _todays(now)
    weeks = [(today - timedelta(days=last), today - timedelta(days=first))
             for today in todays for first, last in MOOD_WEEKS]
    return {"mood_from": todays[0] - timedelta(days=MOOD_WEEKS[-1][1]),
            **{f"mood_{n}_{end}": day for n, week in enumerate(weeks)
               for end, day in zip(("from", "to"), week, strict=True)}}


def mood_columns(now: datetime) -> dict[date, int]:
    """Local today -> where that today's four sums start in a row of :func:`mood_sums`
    (worked out once per list, not per person)."""
    return {today: 4 * n for n, today in enumerate(_todays(now))}


def mood_trend(person: Person, sums: Sequence[int | None] | None, *, now: datetime,
               columns: Mapping[date, int]) -> MoodTrend:
    """The trend of ``person`` from their figures of :func:`mood_sums` (none: no moods)."""
    if not sums:
        return MoodTrend()
    at = columns[local_date(person, now)]  # type: ignore[arg-type]
    recent, recent_days, previous, previous_days = (int(v or 0) for v in sums[at:at + 4])
    return _trend_of(recent, recent_days, previous, previous_days)


def _todays(now: datetime) -> list[date]:
    utc_today = now.astimezone(UTC).date()
    return [utc_today + timedelta(days=shift) for shift in (-1, 0, 1)]


def trend(scores: Mapping[date, int], today: date) -> MoodTrend:
    """The trend of ``scores`` (local day -> score) as of the local day ``today``."""
    weeks = [[s for day, s in scores.items() if first <= (today - day).days <= last]
             for first, last in MOOD_WEEKS]
    return _trend_of(sum(weeks[0]), len(weeks[0]), sum(weeks[1]), len(weeks[1]))


def _trend_of(recent_sum: int, recent_days: int, previous_sum: int,
              previous_days: int) -> MoodTrend:
    return MoodTrend(recent=_mean(recent_sum, recent_days),
                     previous=_mean(previous_sum, previous_days),
                     recent_days=recent_days, previous_days=previous_days)


def _mean(total: int, count: int) -> float | None:
    return round(total / count, 1) if count else None

# --------------------------------------------------------------------------- module progress

@dataclass(frozen=True)
class _Module:
    """The fields of a module the unlock rules read (plain values: they are read for
    every module of every person)."""

    id: int
    key: str
    title: str
    unlock: dict[str, Any]


@dataclass
class Library:
    modules: list[_Module]
    #: (id, key) of each module and key -> title, read once rather than per person
    keys: list[tuple[int, str]]
    titles: dict[str, str]
    totals: dict[int, int]
    #: participant id -> module id -> steps done
    done: dict[int, dict[int, int]]
    #: participant id -> keys of modules with a module_completed event
    events: dict[int, set[str]]


def read_library(who: Select[Any], params: Mapping[str, Any]) -> Library:
    """The active modules with their step totals and, for each participant of ``who``
    (a select of participant ids, with its bound ``params``), the steps done per module
    and the modules completed by event: three queries however many people."""
    modules_query, done_query, events_query = _library_queries(who)
    modules, totals = [], {}
    for mid, key, title, unlock, total in db.session.execute(modules_query):
        modules.append(_Module(mid, key, title, dict(unlock or {})))
        if total:
            totals[mid] = total
    done: dict[int, dict[int, int]] = defaultdict(dict)
    for pid, module_id, count in db.session.execute(done_query, params):
        done[pid][module_id] = count
    events: dict[int, set[str]] = defaultdict(set)
    for pid, detail in db.session.execute(events_query, params):
        if (detail or {}).get("module"):
            events[pid].add(str(detail["module"]))
    return Library(modules, [(m.id, m.key) for m in modules],
                   {m.key: m.title for m in modules}, totals, done, events)


@lru_cache(maxsize=16)
def _library_queries(who: Select[Any]) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """The modules with their totals, steps done, modules completed: built once per
    process and kind of list (as :func:`_mood_query`)."""
    steps = (select(func.count(Step.id)).where(Step.module_id == Module.id, Step.is_active)
             .correlate(Module).scalar_subquery())
    return (select(Module.id, Module.key, Module.title, Module.unlock, steps)
            .where(Module.is_active).order_by(Module.position, Module.key),
            select(StepProgress.participant_id, Step.module_id, func.count(StepProgress.id))
            .join(Step, Step.id == StepProgress.step_id)
            .where(StepProgress.participant_id.in_(who), Step.is_active)
            .group_by(StepProgress.participant_id, Step.module_id),
            select(ActivityEvent.participant_id, ActivityEvent.detail)
            .where(ActivityEvent.participant_id.in_(who),
                   ActivityEvent.kind == "module_completed"))


def progress_of(person: Person, arm: Arm | None, library: Library, points: int | None, *,
                now: datetime) -> Progress:
    """As the participant's own library page works it out (``modules.overview``);
    ``points`` (levels open modules) come with the caseload's list query."""
    if arm is not None and not arm.has("modules"):
        return Progress(has_modules=False)
    done = library.done.get(person.id, {})
    counts = ProgressCounts(total=library.totals, done=done)
    completed = completed_keys(library.keys, counts, library.events.get(person.id, set()))
    levels_apply = arm is None or arm.has("gamification")
    level = gamification.level_for(int(points or 0)).number
    ctx = Context(now=now, start=person.randomised_at or person.enrolled_at,
                  zone=participant_zone(person), level=level if levels_apply else 1,
                  levels_apply=levels_apply, modules=library.modules,  # type: ignore[arg-type]
                  counts=counts,
                  completed=frozenset(completed),
                  titles=library.titles)
    # unlock_state reads only the context, built here from what was read for everyone
    open_modules = [m for m in library.modules
                    if library.totals.get(m.id) and unlock_state(person, m, ctx=ctx)[0]]  # type: ignore[arg-type]
    return Progress(has_modules=True,
                    steps_done=sum(min(done.get(m.id, 0), library.totals[m.id])
                                   for m in open_modules),
                    steps_available=sum(library.totals[m.id] for m in open_modules),
                    modules_completed=len(completed))
