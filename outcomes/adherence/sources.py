"""Where the adherence metrics read from: one fixed set of grouped queries for any
number of participants, and the other packages' counts (SMS prompts, assessments).

Read-only. ``load`` runs the same number of queries whether it is given one participant
or a thousand; the metrics are then worked out in Python from what it returns.

The SMS prompt protocol (``outcomes.prompts``) and the assessment schedule
(``outcomes.assessments``) are optional here: when a package (or one of its functions) is
not installed, its figures are ``None`` ("not known") and everything else still works.
"""

from __future__ import annotations

import importlib
import inspect
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant
from modules.models import Award, Module, Step, StepProgress
from outcomes.adherence.definitions import (
    MODULE_COMPLETED,
    READ_KINDS,
    TIMEPOINT_COMPLETED,
    USE_KINDS,
)
from outcomes.models import Arm, Study, Withdrawal

PROMPTS = "outcomes.prompts.services"
ASSESSMENTS = "outcomes.assessments.services"
COMPLETION = "outcomes.assessments.completion"
SCHEDULE = "outcomes.assessments.schedule"


def optional(module: str, name: str) -> Callable[..., Any] | None:
    """``module.name`` if that package is installed, else None. Only a missing module is
    forgiven: an error inside an installed one still raises, and so does an installed one
    without ``name`` (a renamed or moved function must not vanish from the figures)."""
    try:
        found = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise
    try:
        return getattr(found, name)
    except AttributeError:
        raise AttributeError(f"{module} is installed but has no {name!r}: the adherence "
                             "figures read it (outcomes.adherence.sources)") from None


def _call(function: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """Call another package's function with those of ``options`` it accepts (``now`` is
    optional in the contracts)."""
    accepted = inspect.signature(function).parameters
    return function(*args, **{k: v for k, v in options.items() if k in accepted})


@dataclass(frozen=True)
class Person:
    id: int
    arm_id: int | None
    arm_code: str | None
    #: the arm's feature flags ({} before allocation)
    features: dict[str, Any]
    study_id: int
    status: str
    timezone: str
    enrolled_at: datetime
    randomised_at: datetime | None


@dataclass
class Snapshot:
    """Everything the metrics need about a set of participants, read once."""

    people: dict[int, Person]
    #: participant id -> [(kind, at)] of READ_KINDS since randomisation, oldest first
    events: dict[int, list[tuple[str, datetime]]]
    #: participant id -> times of every use event before ``end`` (also before randomisation)
    use_times: dict[int, list[datetime]]
    #: participant id -> [(module key, at)] of module_completed events
    module_events: dict[int, list[tuple[str, datetime]]]
    #: participant id -> [(timepoint key, at)] of timepoint_completed events
    timepoint_events: dict[int, list[tuple[str, datetime]]]
    #: participant id -> [(module id, step id, completed at)] for active steps
    steps_done: dict[int, list[tuple[int, int, datetime]]]
    #: participant id -> [(at, points)]
    points: dict[int, list[tuple[datetime, int]]]
    #: participant id -> [(kind, at)]
    withdrawals: dict[int, list[tuple[str, datetime]]]
    #: active modules in library order
    modules: list[Module]
    #: module id -> number of active steps
    step_totals: dict[int, int]
    sms: dict[int, tuple[int, int]] | None = None
    assessments: dict[int, tuple[int, int]] | None = None
    post_treatment_key: str | None = None
    #: participant id -> when their post-treatment window closes (None: open-ended or not
    #: known yet); the whole dict is None when the schedule cannot say
    post_treatment_closes: dict[int, datetime | None] | None = None
    #: participants whose post-treatment questionnaires are all submitted (at ``end``)
    post_treatment_done: set[int] = field(default_factory=set)


def load(participant_ids: Sequence[int], *, end: datetime, study: Any | None = None) -> Snapshot:
    """Read every source for ``participant_ids`` in a fixed number of queries."""
    ids = sorted(set(participant_ids))
    snapshot = Snapshot(people=_people(ids), events=defaultdict(list),
                        use_times=defaultdict(list), module_events=defaultdict(list),
                        timepoint_events=defaultdict(list), steps_done=defaultdict(list),
                        points=defaultdict(list), withdrawals=defaultdict(list),
                        modules=[], step_totals={})
    if not ids:
        return snapshot
    _load_events(snapshot, ids, end)
    _load_details(snapshot, ids, end)
    _load_modules(snapshot, ids, end)
    for pid, at, points in db.session.execute(
            select(Award.participant_id, Award.at, Award.points)
            .where(Award.participant_id.in_(ids), Award.kind == "points", Award.at < end)):
        snapshot.points[pid].append((at, points))
    for pid, kind, at in db.session.execute(
            select(Withdrawal.participant_id, Withdrawal.kind, Withdrawal.at)
            .where(Withdrawal.participant_id.in_(ids))):
        snapshot.withdrawals[pid].append((kind, at))
    _load_outcome_sources(snapshot, ids, end=end, study=study)
    return snapshot


def _people(ids: list[int]) -> dict[int, Person]:
    if not ids:
        return {}
    rows = db.session.execute(
        select(Participant.id, Participant.arm_id, Arm.code, Arm.features, Participant.study_id,
               Participant.status,
               Participant.timezone, Participant.enrolled_at, Participant.randomised_at)
        .outerjoin(Arm, Arm.id == Participant.arm_id)
        .where(Participant.id.in_(ids)))
    return {row[0]: Person(row[0], row[1], row[2], dict(row[3] or {}), *row[4:]) for row in rows}


def _load_events(snapshot: Snapshot, ids: list[int], end: datetime) -> None:
    """Counted and use events since randomisation, and every earlier use event's time
    (for the last use), in one query."""
    rows = db.session.execute(
        select(ActivityEvent.participant_id, ActivityEvent.kind, ActivityEvent.at,
               ActivityEvent.at >= Participant.randomised_at)
        .join(Participant, Participant.id == ActivityEvent.participant_id)
        .where(ActivityEvent.participant_id.in_(ids), ActivityEvent.kind.in_(READ_KINDS),
               ActivityEvent.at < end)
        .order_by(ActivityEvent.participant_id, ActivityEvent.at, ActivityEvent.id))
    for pid, kind, at, after_randomisation in rows:
        if after_randomisation:
            snapshot.events[pid].append((kind, at))
        if kind in USE_KINDS:
            snapshot.use_times[pid].append(at)


def _load_details(snapshot: Snapshot, ids: list[int], end: datetime) -> None:
    rows = db.session.execute(
        select(ActivityEvent.participant_id, ActivityEvent.kind, ActivityEvent.at,
               ActivityEvent.detail)
        .where(ActivityEvent.participant_id.in_(ids), ActivityEvent.at < end,
               ActivityEvent.kind.in_((MODULE_COMPLETED, TIMEPOINT_COMPLETED)))
        .order_by(ActivityEvent.at, ActivityEvent.id))
    for pid, kind, at, detail in rows:
        if kind == MODULE_COMPLETED and (detail or {}).get("module"):
            snapshot.module_events[pid].append((str(detail["module"]), at))
        elif kind == TIMEPOINT_COMPLETED and (detail or {}).get("timepoint"):
            snapshot.timepoint_events[pid].append((str(detail["timepoint"]), at))


def _load_modules(snapshot: Snapshot, ids: list[int], end: datetime) -> None:
    snapshot.modules = list(db.session.scalars(
        select(Module).where(Module.is_active).order_by(Module.position, Module.key)))
    snapshot.step_totals = dict(db.session.execute(
        select(Step.module_id, func.count(Step.id)).join(Module, Module.id == Step.module_id)
        .where(Step.is_active, Module.is_active).group_by(Step.module_id)).all())
    rows = db.session.execute(
        select(StepProgress.participant_id, Step.module_id, Step.id, StepProgress.completed_at)
        .join(Step, Step.id == StepProgress.step_id)
        .join(Module, Module.id == Step.module_id)
        .where(StepProgress.participant_id.in_(ids), Step.is_active, Module.is_active,
               StepProgress.completed_at < end))
    for pid, module_id, step_id, at in rows:
        snapshot.steps_done[pid].append((module_id, step_id, at))


# --- the other packages' figures ----------------------------------------------------------

def _load_outcome_sources(snapshot: Snapshot, ids: list[int], *, end: datetime,
                          study: Any | None) -> None:
    response_rates = optional(PROMPTS, "response_rates")
    if response_rates is not None:
        # prompts planned before ``end``; those still open at ``end`` are left out
        snapshot.sms = dict(_call(response_rates, ids, end=end, now=end))
    assessments_done = optional(COMPLETION, "assessments_done")
    if assessments_done is not None:
        snapshot.assessments = dict(_call(assessments_done, ids, now=end))
    if study is None and snapshot.people:
        study = db.session.get(Study, next(iter(snapshot.people.values())).study_id)
    if study is not None:
        _load_post_treatment(snapshot, ids, end=end, study=study)


def _load_post_treatment(snapshot: Snapshot, ids: list[int], *, end: datetime,
                         study: Any) -> None:
    """The post-treatment timepoint's key, and each participant's window and completion
    from the assessment schedule's own bulk functions (a fixed number of queries)."""
    post_key = optional(COMPLETION, "post_treatment_key")
    if post_key is None:
        return
    snapshot.post_treatment_key = key = post_key(study)
    found = [optional(SCHEDULE, "timepoints_of"), optional(ASSESSMENTS, "facts_for"),
             optional(ASSESSMENTS, "statuses")]
    if key is None or None in found:
        return
    timepoints_of, facts_for, statuses = found
    timepoint = next((t for t in timepoints_of(study) if t.key == key), None)
    if timepoint is None:
        return
    people = db.session.scalars(select(Participant).where(Participant.id.in_(ids)))
    states = statuses([timepoint], facts_for(people), now=end)
    snapshot.post_treatment_closes = {pid: window.closes_at
                                      for (pid, _), (_, window) in states.items()}
    snapshot.post_treatment_done = {pid for (pid, _), (status, _) in states.items()
                                    if status == "completed"}

