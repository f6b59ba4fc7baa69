"""Read-side services: unlock rules, the library, a module's progress and resume.

Read-only (``ensure_unlocked`` raises, nothing writes). A page builds one ``Context`` per
request with ``build_context`` and passes it to every call, so the page costs a fixed
number of queries whatever the number of modules, steps or progress rows; each function
builds its own context when none is given. ``modules.services`` re-exports all of this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, bindparam, exists, func, select

from core.clock import utcnow
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant
from modules import catalogue, gamification
from modules.errors import ModuleError
from modules.models import Module, Pathway, Step, StepProgress
from modules.progress import (
    ProgressCounts,
    completed_keys,
    participant_zone,
)

# --------------------------------------------------------------------------- unlocking


@dataclass
class Context:
    """One snapshot of where a participant stands in the library, built once per request
    by ``build_context`` (a fixed number of queries) and shared by every unlock check."""

    now: datetime
    #: week rules count from here: randomisation if it happened, else enrolment
    start: datetime
    zone: ZoneInfo
    level: int
    #: level rules apply only with gamification on (otherwise levels do not exist)
    levels_apply: bool
    #: active modules in library order, pathways loaded
    modules: list[Module]
    counts: ProgressCounts
    #: keys of completed modules
    completed: frozenset[str]
    titles: dict[str, str] = field(default_factory=dict)
    #: the participant's points when ``build_context`` read them (None otherwise)
    points: int | None = None


@dataclass(frozen=True)
class Standing:
    """Where the participant stands across the library (``standing_query``)."""

    counts: ProgressCounts
    #: keys of the modules they have a ``module_completed`` event for
    events: set[str]
    #: their points; None when no module exists (the query returned no row)
    points: int | None


def build_context(participant: Participant, *, now: datetime | None = None,
                  standing: Standing | None = None) -> Context:
    """The participant's snapshot: the catalogue (``modules.catalogue``: no query while
    this process holds the current content version, else one) and one query for where
    the participant stands (none when the caller read ``standing`` with its own; one
    more only when the library is empty)."""
    modules, totals = catalogue.library(catalogue.current_version(participant.user))
    if standing is None:
        standing = standing_of(db.session.execute(
            standing_query(), {"participant_id": participant.id}).all())
    counts = ProgressCounts(total=totals, done=standing.counts.done,
                            last_at=standing.counts.last_at)
    completed = completed_keys([(m.id, m.key) for m in modules], counts, standing.events)
    levels_apply = gamification.enabled(participant)
    points = standing.points
    if points is None and levels_apply:
        points = gamification.total_points(participant)
    return Context(now=now or utcnow(), start=participant.randomised_at or participant.enrolled_at,
                   zone=participant_zone(participant),
                   level=gamification.level_for(points or 0).number if levels_apply else 1,
                   levels_apply=levels_apply, modules=modules, counts=counts,
                   completed=frozenset(completed), titles={m.key: m.title for m in modules},
                   points=points)


def standing_of(rows: Sequence[Sequence[Any]]) -> Standing:
    """``Standing`` from the rows of ``standing_query`` (its first six columns)."""
    counts = ProgressCounts(done={row[0]: row[2] for row in rows if row[2]},
                            last_at={row[0]: row[3] for row in rows if row[2]})
    return Standing(counts, {row[1] for row in rows if row[4]},
                    int(rows[0][5] or 0) if rows else None)


@functools.cache
def standing_query() -> Select[Any]:
    """One row per module (active or not; parameter ``participant_id``): the
    participant's done count and last progress there (active steps only, as
    ``progress.progress_counts``), whether they have a ``module_completed`` event for it,
    and their points beside.

    Built once: the statement object is reused with new parameters, which spares
    SQLAlchemy building it and working out its cache key on every request."""
    participant_id = bindparam("participant_id")
    events = select(ActivityEvent.detail["module"].as_string()).where(
        ActivityEvent.participant_id == participant_id, ActivityEvent.kind == "module_completed")
    return (select(Module.id, Module.key, func.count(StepProgress.id),
                   func.max(StepProgress.completed_at), Module.key.in_(events),
                   gamification.points_subquery(participant_id))
            .outerjoin(Step, and_(Step.module_id == Module.id, Step.is_active))
            .outerjoin(StepProgress, and_(StepProgress.step_id == Step.id,
                                          StepProgress.participant_id == participant_id))
            .group_by(Module.id, Module.key))


def unlock_state(participant: Participant, module: Module, *, ctx: Context) -> tuple[bool, str]:
    """Whether the module is open to the participant and, if not, a participant-facing
    reason such as "Opens after you finish 'Small steps to reach out'".

    A module the participant has started or completed stays open whatever its rule says
    now (content edits never take away progress). An ``after`` rule naming a module that
    is no longer in the library counts as met.
    """
    if module.key in ctx.completed or ctx.counts.done.get(module.id):
        return True, ""
    rule = module.unlock or {}
    for name, check in _UNLOCK_RULES.items():
        if name in rule:
            return check(rule[name], ctx)
    return True, ""


def _unlock_after(key: Any, ctx: Context) -> tuple[bool, str]:
    if key in ctx.completed or key not in ctx.titles:
        return True, ""
    return False, f"Opens after you finish '{ctx.titles[key]}'"


def _unlock_level(level: Any, ctx: Context) -> tuple[bool, str]:
    if not ctx.levels_apply or ctx.level >= int(level):
        return True, ""
    return False, f"Opens at level {int(level)}"


def _unlock_week(week: Any, ctx: Context) -> tuple[bool, str]:
    opens_at = ctx.start + timedelta(weeks=int(week) - 1)
    if ctx.now >= opens_at:
        return True, ""
    day = opens_at.astimezone(ctx.zone)
    return False, f"Opens in week {int(week)} (on {day.day} {day:%b})"


_UNLOCK_RULES: dict[str, Callable[[Any, Context], tuple[bool, str]]] = {
    "after": _unlock_after,
    "level": _unlock_level,
    "week": _unlock_week,
}


def ensure_unlocked(participant: Participant, module: Module, *,
                    ctx: Context | None = None) -> None:
    """Raise ``ModuleError`` with the participant-facing reason if the module is locked."""
    unlocked, reason = unlock_state(participant, module, ctx=ctx or build_context(participant))
    if not unlocked:
        raise ModuleError(reason)


# --------------------------------------------------------------------------- library


@dataclass(frozen=True)
class ModuleCard:
    module: Module
    pathway: Pathway | None
    steps_total: int
    steps_done: int
    unlocked: bool
    #: why it is locked ("" when unlocked)
    reason: str
    completed: bool
    started: bool

    @property
    def percent(self) -> int:
        return _percent(self.steps_done, self.steps_total)


def _percent(done: int, total: int) -> int:
    return 100 if total and done >= total else (done * 100 // total if total else 0)


def library(participant: Participant, *, ctx: Context | None = None) -> list[ModuleCard]:
    """Every active module in pathway and position order, with the participant's
    progress and lock state, in a fixed number of queries."""
    ctx = ctx or build_context(participant)
    return [_card(participant, module, ctx) for module in ctx.modules]


def _card(participant: Participant, module: Module, ctx: Context) -> ModuleCard:
    unlocked, reason = unlock_state(participant, module, ctx=ctx)
    done = ctx.counts.done.get(module.id, 0)
    return ModuleCard(module=module, pathway=module.pathway,
                      steps_total=ctx.counts.total.get(module.id, 0), steps_done=done,
                      unlocked=unlocked, reason=reason, completed=module.key in ctx.completed,
                      started=done > 0)


@dataclass(frozen=True)
class StepState:
    step: Step
    done: bool
    completed_at: datetime | None
    #: 1-based position among the module's active steps
    number: int


@dataclass(frozen=True)
class ModulePage:
    module: Module
    steps: list[StepState]
    #: the first step not done yet (None when all are done)
    next_step: Step | None
    percent: int
    steps_done: int
    steps_total: int
    unlocked: bool
    reason: str
    completed: bool

    def neighbours(self, step: Step) -> tuple[Step | None, Step | None]:
        """The steps before and after ``step`` in this module (for back and next)."""
        ids = [state.step.id for state in self.steps]
        if step.id not in ids:
            return None, None
        at = ids.index(step.id)
        before = self.steps[at - 1].step if at > 0 else None
        after = self.steps[at + 1].step if at + 1 < len(self.steps) else None
        return before, after


def module_progress(participant: Participant, module: Module, *,
                    ctx: Context | None = None) -> ModulePage:
    """A module's active steps with done flags, the next step and the percentage done,
    in a fixed number of queries."""
    ctx = ctx or build_context(participant)
    rows = db.session.execute(_module_steps_query(), {
        "participant_id": participant.id, "module_id": module.id}).all()
    steps = [StepState(step, at is not None, at, number)
             for number, (step, at) in enumerate(rows, start=1)]
    done = sum(state.done for state in steps)
    unlocked, reason = unlock_state(participant, module, ctx=ctx)
    return ModulePage(module=module, steps=steps,
                      next_step=next((s.step for s in steps if not s.done), None),
                      percent=_percent(done, len(steps)), steps_done=done,
                      steps_total=len(steps), unlocked=unlocked, reason=reason,
                      completed=module.key in ctx.completed)


def next_step(participant: Participant, *, ctx: Context | None = None) -> Step | None:
    """Where to carry on: the first undone step of the open module the participant most
    recently made progress in; else of the first open, unfinished module in library
    order; None when there is nothing left to do."""
    ctx = ctx or build_context(participant)
    module = next_module(participant, ctx)
    if module is None:
        return None
    return db.session.scalar(_next_step_query(), {
        "participant_id": participant.id, "module_id": module.id})


def next_module(participant: Participant, ctx: Context) -> Module | None:
    """The module ``next_step`` carries on in (no query)."""
    return _resume_module(participant, ctx) or _first_open_module(participant, ctx)


def first_undone_step(participant_id: Any) -> Any:
    """The id of the outer query's ``Module``'s first active step the participant has
    not done, as a correlated scalar subquery (the step ``next_step`` returns)."""
    done = (select(StepProgress.id).where(StepProgress.step_id == Step.id,
                                          StepProgress.participant_id == participant_id)
            .correlate(Step).exists())
    # only the module is the outer one: module_step here is this subquery's own
    return (select(Step.id).where(Step.module_id == Module.id, Step.is_active, ~done)
            .order_by(Step.position, Step.id).limit(1).correlate(Module).scalar_subquery())


@functools.cache
def _module_steps_query() -> Select[Any]:
    """A module's active steps with the participant's completion time; built once and
    reused with new parameters."""
    return (select(Step, StepProgress.completed_at)
            .outerjoin(StepProgress, and_(StepProgress.step_id == Step.id,
                                          StepProgress.participant_id == bindparam(
                                              "participant_id")))
            .where(Step.module_id == bindparam("module_id"), Step.is_active)
            .order_by(Step.position, Step.id))


@functools.cache
def _next_step_query() -> Select[Any]:
    """A module's first active step the participant has not done; built once."""
    return (select(Step).where(
        Step.module_id == bindparam("module_id"), Step.is_active,
        ~exists().where(StepProgress.step_id == Step.id,
                        StepProgress.participant_id == bindparam("participant_id")))
        .order_by(Step.position, Step.id).limit(1))


def _has_undone(module: Module, ctx: Context) -> bool:
    return ctx.counts.done.get(module.id, 0) < ctx.counts.total.get(module.id, 0)


def _resume_module(participant: Participant, ctx: Context) -> Module | None:
    started = [m for m in ctx.modules if m.id in ctx.counts.last_at and _has_undone(m, ctx)
               and unlock_state(participant, m, ctx=ctx)[0]]
    return max(started, key=lambda m: ctx.counts.last_at[m.id], default=None)


def _first_open_module(participant: Participant, ctx: Context) -> Module | None:
    return next((m for m in ctx.modules if m.key not in ctx.completed and _has_undone(m, ctx)
                 and unlock_state(participant, m, ctx=ctx)[0]), None)
