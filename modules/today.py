"""What the home page (``/modules/today``) needs to know about the participant beyond
the library context, asked in one statement.

Read-only: nothing here writes. ``today_facts`` is one query: a row of scalar
subqueries (today's mood, whether a "did you try it?" check is due, whether a
suggestion is waiting), so the page runs the row-returning queries for checks and
suggestions only when there is something to show. ``home_context`` reads the same
columns beside the library standing of ``modules.overview`` and each module's first
undone step, in that one query, and names the next step from the catalogue
(``modules.catalogue.steps``) instead of asking for it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select

from core.clock import utcnow
from core.extensions import db
from core.models import Participant
from modules import catalogue
from modules.models import ActionPlan, ContentSuggestion, Module, MoodEntry, Step
from modules.overview import (
    Context,
    build_context,
    first_undone_step,
    next_module,
    next_step,
    standing_of,
    standing_query,
)
from modules.progress import local_date


@dataclass(frozen=True)
class TodayMood:
    """Today's mood entry as the page shows it."""

    score: int
    note: str | None


@dataclass(frozen=True)
class TodayFacts:
    #: the mood logged for the participant's local today, None before they log one
    mood: TodayMood | None
    #: whether ``services.due_action_checks`` has anything to return
    has_checks: bool
    #: whether ``services.suggestions_for`` has anything to return
    has_suggestions: bool


@dataclass(frozen=True)
class NextStep:
    """The step to carry on with, as the home page shows it (``overview.next_step``'s
    step, read from the catalogue instead of its own query)."""

    key: str
    title: str
    kind: str
    module: Module


@dataclass(frozen=True)
class Home:
    ctx: Context
    facts: TodayFacts
    next_step: Step | NextStep | None


def home_context(participant: Participant) -> Home:
    """The library context, today's facts and the next step for the home page: one
    query beside the catalogue's (where the participant stands, as
    ``overview.standing_query``, today's facts and each module's first undone step),
    one more when no module exists or the step is not in the catalogue snapshot."""
    now = utcnow()
    rows = db.session.execute(_home_query(), _params(participant, now)).all()
    if not rows:
        ctx = build_context(participant, now=now)
        return Home(ctx, today_facts(participant, now=now), next_step(participant, ctx=ctx))
    ctx = build_context(participant, now=now, standing=standing_of(rows))
    undone = {row[0]: row[6] for row in rows}
    return Home(ctx, _facts_of(rows[0][-4:]), _next_step(participant, ctx, undone))


def _next_step(participant: Participant, ctx: Context, undone: dict[int, int | None]
               ) -> Step | NextStep | None:
    module = next_module(participant, ctx)
    if module is None or undone.get(module.id) is None:
        return None
    known = catalogue.steps(catalogue.current_version(participant.user)) or {}
    info = known.get(undone[module.id])  # type: ignore[arg-type]
    if info is None:
        return next_step(participant, ctx=ctx)
    return NextStep(info.key, info.title, info.kind, module)


def today_facts(participant: Participant, *, now: datetime | None = None) -> TodayFacts:
    """Today's mood and whether checks or suggestions are waiting: one query. The
    conditions are those of ``mood.today_mood``, ``services.due_action_checks`` and
    ``services.suggestions_for``."""
    now = now or utcnow()
    return _facts_of(db.session.execute(_facts_query(), _params(participant, now)).one())


def _params(participant: Participant, now: datetime) -> dict[str, Any]:
    return {"participant_id": participant.id, "day": local_date(participant, now), "now": now}


def _facts_of(row: Sequence[Any]) -> TodayFacts:
    mood = TodayMood(row[0], row[1]) if row[0] is not None else None
    return TodayFacts(mood=mood, has_checks=bool(row[2]), has_suggestions=bool(row[3]))


@functools.cache
def _home_query() -> Select[Any]:
    """``overview.standing_query`` with each module's first undone step and today's
    facts as five more columns; built once."""
    return standing_query().add_columns(first_undone_step(bindparam("participant_id")),
                                        *_facts_query().selected_columns)


@functools.cache
def _facts_query() -> Select[Any]:
    """Built once and reused with new parameters (no statement building or cache-key
    work per request)."""
    participant_id = bindparam("participant_id")
    today = select(MoodEntry).where(MoodEntry.participant_id == participant_id,
                                    MoodEntry.local_date == bindparam("day"))
    # correlate(None): ``home_context`` reads these beside a query over module and
    # module_step, which must not leak into the subqueries
    checks = (select(ActionPlan.id).join(Step, Step.id == ActionPlan.step_id)
              .where(ActionPlan.participant_id == participant_id,
                     ActionPlan.checked_at.is_(None), ActionPlan.check_due_at <= bindparam("now"),
                     Step.is_active).correlate(None).exists())
    suggestions = (select(ContentSuggestion.id)
                   .join(Module, Module.id == ContentSuggestion.module_id)
                   .where(ContentSuggestion.participant_id == participant_id,
                          ContentSuggestion.dismissed_at.is_(None), Module.is_active)
                   .correlate(None).exists())
    return select(today.with_only_columns(MoodEntry.score).scalar_subquery(),
                  today.with_only_columns(MoodEntry.note).scalar_subquery(), checks, suggestions)
