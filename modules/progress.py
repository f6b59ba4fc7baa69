"""Read-only progress facts shared by the services and the gamification rules.

What "completed" means lives here, once: a module is completed when the participant
has a ``module_completed`` event for it, or has done every one of its active steps.
The event makes completion stick when new steps are added to a finished module later,
so "opens after module X" never locks again. Every function runs a fixed number of
queries, whatever the number of modules, steps or progress rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select

from core.clock import utcnow
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant
from modules.models import Module, Step, StepProgress


@dataclass
class ProgressCounts:
    """Per active module id: active steps, steps the participant has done, last progress."""

    total: dict[int, int] = field(default_factory=dict)
    done: dict[int, int] = field(default_factory=dict)
    last_at: dict[int, datetime] = field(default_factory=dict)


def progress_counts(participant_id: int) -> ProgressCounts:
    """Step totals and the participant's done counts per module, in two queries."""
    total = db.session.execute(
        select(Step.module_id, func.count(Step.id))
        .join(Module, Module.id == Step.module_id)
        .where(Step.is_active, Module.is_active)
        .group_by(Step.module_id)
    ).all()
    done = db.session.execute(
        select(Step.module_id, func.count(StepProgress.id), func.max(StepProgress.completed_at))
        .join(Step, Step.id == StepProgress.step_id)
        .where(StepProgress.participant_id == participant_id, Step.is_active)
        .group_by(Step.module_id)
    ).all()
    return ProgressCounts(
        total={module_id: count for module_id, count in total},
        done={module_id: count for module_id, count, _ in done},
        last_at={module_id: last for module_id, _, last in done},
    )


def completion_events(participant_id: int) -> set[str]:
    """Keys of the modules the participant has a ``module_completed`` event for."""
    details = db.session.scalars(
        select(ActivityEvent.detail).where(ActivityEvent.participant_id == participant_id,
                                           ActivityEvent.kind == "module_completed"))
    return {str(detail["module"]) for detail in details if detail.get("module")}


def completed_keys(modules: Iterable[tuple[int, str]], counts: ProgressCounts,
                   events: set[str]) -> set[str]:
    """The keys among ``modules`` (id, key) that count as completed."""
    completed = set()
    for module_id, key in modules:
        total = counts.total.get(module_id, 0)
        if key in events or (total and counts.done.get(module_id, 0) >= total):
            completed.add(key)
    return completed


def participant_zone(participant: Participant) -> ZoneInfo:
    """The participant's IANA time zone (UTC if the stored name is unknown)."""
    try:
        return ZoneInfo(participant.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_date(participant: Participant, at: datetime | None = None) -> date:
    """The participant's own calendar day at ``at`` (now by default)."""
    return (at or utcnow()).astimezone(participant_zone(participant)).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day begins in ``zone``."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
