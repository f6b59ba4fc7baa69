"""Points, levels and badges, driven by the rule table in ``gamification.yaml``; streaks
live in ``modules.streaks`` and are summed up here (``summary``).

Transaction contract: functions here flush and never commit; the outermost caller commits.

- Every award is an ``Award`` row made unique by (participant, kind, key), so an award
  happens once however often it is asked for, and an ``ActivityEvent`` so it can be
  analysed as dose: ``points_awarded``, ``badge_awarded``, ``level_reached``.
  Reached levels are remembered as ``Award(kind="level", key="<number>")`` rows, so
  each ``level_reached`` event is written once even when two awards race.
- A participant whose study arm has gamification switched off gets no points, badges or
  levels; the events of what they did are still recorded by the services.
- ``award_for_event`` is the entry point for other packages (the forum calls it after
  recording ``post_written``, ``comment_written``, ``reaction_given`` or ``helpful_marked``).

The rule table (``gamification.yaml``) is loaded and checked by
``modules.gamification_rules``; a bad file raises ``RulesError`` listing each problem
as ``file:line: message``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, bindparam, cast, func, null, select, union_all
from sqlalchemy.exc import IntegrityError

from core.clock import utcnow
from core.events import ActivityEvent, record_event
from core.extensions import db
from core.models import Participant
from modules import (
    activity,  # noqa: F401 - registers the event kinds
    streaks,
)
from modules.gamification_rules import (
    REASONS,
    RULES_FILE,
    AnyRule,
    Badge,
    CountRule,
    LevelDef,
    Rule,
    Rules,
    RulesError,
    load_rules,
    rules,
)
from modules.models import Award, Module, QuizAttempt, Step
from modules.progress import (
    completed_keys,
    completion_events,
    day_start,
    local_date,
    participant_zone,
    progress_counts,
)
from modules.streaks import (
    STREAK_KINDS,
    Streak,
    active_days,
    count_streak,
    streak,
)
from outcomes.services import features_for

__all__ = ["REASONS", "RULES_FILE", "STREAK_KINDS", "Badge", "BadgeView", "GameSummary",
           "Level", "LevelDef", "Rules", "RulesError", "Streak", "active_days",
           "award_for_event", "award_points", "badge_status", "count_streak", "enabled",
           "evaluate_badges", "level_for", "load_rules", "recent_badges", "rules", "streak",
           "summary", "total_points"]


# --------------------------------------------------------------------------- points


@dataclass(frozen=True)
class Level:
    number: int
    name: str
    floor: int
    #: the points total of the next level, None at the top
    next_floor: int | None
    #: points still needed for the next level (0 at the top)
    points_to_next: int
    next_name: str | None = None


def enabled(participant: Participant) -> bool:
    """Whether the participant's arm has points, badges and levels."""
    return bool(features_for(participant.user).get("gamification", True))


def total_points(participant: Participant) -> int:
    """The participant's points (one query)."""
    return int(db.session.scalar(_points_query(), {"participant_id": participant.id}) or 0)


@functools.cache
def _points_query() -> Any:
    """Built once and reused with new parameters."""
    return points_subquery(bindparam("participant_id")).element


def points_subquery(participant_id: Any) -> Any:
    """The participant's points as a scalar subquery, to read beside other columns
    (``participant_id``: an id or a bind parameter)."""
    return (select(func.coalesce(func.sum(Award.points), 0))
            .where(Award.participant_id == participant_id, Award.kind == "points")
            .scalar_subquery())


def level_for(points: int) -> Level:
    levels = rules().levels
    current = levels[0]
    for level in levels:
        if points >= level.floor:
            current = level
    following = next((level for level in levels if level.number == current.number + 1), None)
    if following is None:
        return Level(current.number, current.name, current.floor, None, 0)
    return Level(current.number, current.name, current.floor, following.floor,
                 following.floor - points, following.name)


def award_points(participant: Participant, reason: str, key: str, *,
                 at: datetime | None = None) -> int:
    """Give the points for ``reason`` once per ``key``; return the points given now."""
    table = rules().points
    if reason not in table:
        raise ValueError(f"unknown point reason {reason!r}")
    award_key = f"{reason}:{key}"
    if len(award_key) > 120:
        raise ValueError(f"award key too long: {award_key!r}")
    if not enabled(participant) or _has_award(participant.id, "points", award_key):
        return 0
    at = at or utcnow()
    points = table[reason]
    if not _insert_award(participant.id, "points", award_key, points, at):
        return 0
    if points:
        record_event(participant, "points_awarded", at=at, reason=reason, key=key, points=points)
        _mark_levels(participant, at)
    return points


def award_for_event(participant: Participant, kind: str, key: str, *, at: datetime | None = None
                    ) -> int:
    """Award what an already recorded event earns: its points (once per ``key``, when the
    kind is a point reason) and any badges now due. Return the points given now.

    For other packages, e.g. after the forum records ``comment_written`` for comment 42:
    ``award_for_event(participant, "comment_written", "42")``.
    """
    points = award_points(participant, kind, key, at=at) if kind in rules().points else 0
    evaluate_badges(participant, at=at)
    return points


def _has_award(participant_id: int, kind: str, key: str) -> bool:
    return db.session.scalar(select(Award.id).where(
        Award.participant_id == participant_id, Award.kind == kind, Award.key == key)) is not None


def _insert_award(participant_id: int, kind: str, key: str, points: int, at: datetime) -> bool:
    """Insert an award unless a concurrent transaction just did (the unique key decides)."""
    try:
        with db.session.begin_nested():
            db.session.add(Award(participant_id=participant_id, kind=kind, key=key,
                                 points=points, at=at))
    except IntegrityError:
        return False
    return True


def _mark_levels(participant: Participant, at: datetime) -> None:
    """Record ``level_reached`` for each level the total has reached and not yet marked.

    Comparing against the stored markers (not the total before this award) means a
    crossing missed by two racing awards is caught by the next award.
    """
    total = total_points(participant)
    current = level_for(total)
    if current.number < 2:
        return
    marked = set(db.session.scalars(select(Award.key).where(
        Award.participant_id == participant.id, Award.kind == "level")))
    for level in rules().levels[1:current.number]:
        if str(level.number) in marked:
            continue
        if _insert_award(participant.id, "level", str(level.number), 0, at):
            record_event(participant, "level_reached", at=at, level=level.number,
                         name=level.name, points=total)


# --------------------------------------------------------------------------- badges


@dataclass(frozen=True)
class BadgeView:
    id: str
    name: str
    description: str
    how: str
    earned_at: datetime | None

    @property
    def earned(self) -> bool:
        return self.earned_at is not None


class _Facts:
    """What badge rules ask about one participant, each answered once per evaluation."""

    def __init__(self, participant: Participant, today: date, plain_kinds: set[str]) -> None:
        self.participant = participant
        self.today = today
        #: kinds counted without a ``where``: fetched together in one grouped query
        self.plain_kinds = plain_kinds
        self._cache: dict[tuple[Any, ...], Any] = {}

    def _once(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def count(self, kinds: tuple[str, ...], where: tuple[tuple[str, Any], ...]) -> int:
        if not where and set(kinds) <= self.plain_kinds:
            counts = self._once(("counts",), lambda: _count_by_kind(
                self.participant.id, self.plain_kinds))
            return sum(counts.get(kind, 0) for kind in kinds)
        return int(self._once(("count", kinds, where), lambda: _count_events(
            self.participant.id, kinds, where)))

    def days(self, kinds: tuple[str, ...]) -> int:
        return len(self._once(("days", kinds), lambda: active_days(
            self.participant.id, kinds, participant_zone(self.participant))))

    def streak_days(self) -> int:
        return self._once(("streak",), lambda: streak(self.participant, today=self.today)).days

    def completed_all(self, what: str) -> bool:
        check = _all_quizzes_passed if what == "quizzes" else _all_core_completed
        return bool(self._once(("all", what), lambda: check(self.participant.id)))


def _count_by_kind(participant_id: int, kinds: set[str]) -> dict[str, int]:
    rows = db.session.execute(
        select(ActivityEvent.kind, func.count(ActivityEvent.id))
        .where(ActivityEvent.participant_id == participant_id,
               ActivityEvent.kind.in_(sorted(kinds)))
        .group_by(ActivityEvent.kind))
    return {kind: count for kind, count in rows}


def _plain_kinds(rules_: Iterable[Rule]) -> set[str]:
    """The kinds that ``count`` rules without ``where`` ask about, nested rules included."""
    kinds: set[str] = set()
    for rule in rules_:
        if isinstance(rule, CountRule) and not rule.where:
            kinds.update(rule.kinds)
        elif isinstance(rule, AnyRule):
            kinds |= _plain_kinds(rule.rules)
    return kinds


def _count_events(participant_id: int, kinds: tuple[str, ...],
                  where: tuple[tuple[str, Any], ...]) -> int:
    query = select(func.count(ActivityEvent.id)).where(
        ActivityEvent.participant_id == participant_id, ActivityEvent.kind.in_(kinds))
    for name, value in where:
        query = query.where(_detail_equals(name, value))
    return int(db.session.scalar(query) or 0)


def _detail_equals(name: str, value: Any) -> Any:
    element = ActivityEvent.detail[name]
    if isinstance(value, bool):
        return element.as_boolean() == value
    if isinstance(value, int):
        return element.as_integer() == value
    if isinstance(value, float):
        return element.as_float() == value
    return element.as_string() == value


def _all_core_completed(participant_id: int) -> bool:
    core = [(module_id, key) for module_id, key in db.session.execute(
        select(Module.id, Module.key).where(Module.is_active, Module.is_core))]
    if not core:
        return False
    done = completed_keys(core, progress_counts(participant_id),
                          completion_events(participant_id))
    return all(key in done for _, key in core)


def _all_quizzes_passed(participant_id: int) -> bool:
    quizzes = set(db.session.scalars(
        select(Step.id).join(Module, Module.id == Step.module_id)
        .where(Step.kind == "quiz", Step.is_active, Module.is_active)))
    if not quizzes:
        return False
    passed = set(db.session.scalars(select(QuizAttempt.step_id).distinct().where(
        QuizAttempt.participant_id == participant_id, QuizAttempt.passed)))
    return quizzes <= passed


def evaluate_badges(participant: Participant, *, at: datetime | None = None) -> list[str]:
    """Award every badge whose rule is now met; return the ids awarded now."""
    if not enabled(participant):
        return []
    at = at or utcnow()
    earned = _earned_badges(participant.id)
    pending = [badge for badge in rules().badges if badge.id not in earned]
    facts = _Facts(participant, local_date(participant, at),
                   _plain_kinds(badge.rule for badge in pending))
    awarded = []
    for badge in pending:
        if not badge.rule.met(facts):
            continue
        if _insert_award(participant.id, "badge", badge.id, 0, at):
            record_event(participant, "badge_awarded", at=at, badge=badge.id)
            awarded.append(badge.id)
    return awarded


def _earned_badges(participant_id: int) -> dict[str, datetime]:
    rows = db.session.execute(select(Award.key, Award.at).where(
        Award.participant_id == participant_id, Award.kind == "badge")).all()
    return {key: at for key, at in rows}


def badge_status(participant: Participant) -> list[BadgeView]:
    """Every badge in rule-file order, with when the participant earned it (or None)."""
    earned = _earned_badges(participant.id)
    return [_view(badge, earned.get(badge.id)) for badge in rules().badges]


def _view(badge: Badge, earned_at: datetime | None) -> BadgeView:
    return BadgeView(badge.id, badge.name, badge.description, badge.how, earned_at)


def recent_badges(participant: Participant, limit: int = 3) -> list[BadgeView]:
    """The newest badges earned, newest first (badges since removed from the file skipped)."""
    by_id = {badge.id: badge for badge in rules().badges}
    rows = db.session.execute(_recent_badges_query(), {
        "participant_id": participant.id, "keys": list(by_id), "limit": limit}).all()
    return [_view(by_id[key], at) for key, at in rows]


@functools.cache
def _recent_badges_query() -> Any:
    """Built once and reused with new parameters."""
    return (select(Award.key, Award.at)
            .where(Award.participant_id == bindparam("participant_id"), Award.kind == "badge",
                   Award.key.in_(bindparam("keys", expanding=True)))
            .order_by(Award.at.desc(), Award.id.desc()).limit(bindparam("limit")))


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class GameSummary:
    points: int
    level: Level
    streak: Streak
    #: up to three, newest first
    recent_badges: list[BadgeView]
    #: False when the participant's arm has no gamification (show none of it)
    enabled: bool


def summary(participant: Participant, *, points: int | None = None) -> GameSummary:
    """Points, level, streak and recent badges for the home and progress pages: two
    queries (one when the caller passes the ``points`` it already has). With
    gamification off, everything is zero and empty, and no query."""
    if not enabled(participant):
        return GameSummary(0, level_for(0), Streak(0, 0, False), [], False)
    points = total_points(participant) if points is None else points
    run, badges = _streak_and_badges(participant)
    return GameSummary(points, level_for(points), run, badges, True)


def _streak_and_badges(participant: Participant, limit: int = 3
                       ) -> tuple[Streak, list[BadgeView]]:
    """``streak`` and ``recent_badges`` in one query (one more when the run is longer
    than ``STREAK_WINDOW_DAYS``, as ``streak`` does)."""
    zone = participant_zone(participant)
    today = local_date(participant)
    floor = today - timedelta(days=streaks.STREAK_WINDOW_DAYS)
    by_id = {badge.id: badge for badge in rules().badges}
    rows = db.session.execute(_streak_and_badges_query(), {
        "participant_id": participant.id, "kinds": list(STREAK_KINDS),
        "since": day_start(floor, zone), "until": day_start(today + timedelta(days=1), zone),
        "keys": list(by_id), "limit": limit}).all()
    run, reached_floor = count_streak(
        {at.astimezone(zone).date() for key, at, _ in rows if key is None}, today, floor)
    if reached_floor:
        run = count_streak(active_days(participant.id, STREAK_KINDS, zone, until=today),
                           today)[0]
    earned = sorted((row for row in rows if row[0] is not None),
                    key=lambda row: (row[1], row[2]), reverse=True)
    return run, [_view(by_id[key], at) for key, at, _ in earned]


@functools.cache
def _streak_and_badges_query() -> Any:
    """The event times of ``streak``'s window (NULL key) and the newest badges (key, at,
    id) as one UNION ALL; built once and reused with new parameters."""
    events = select(cast(null(), String), ActivityEvent.at, cast(null(), Integer)).where(
        ActivityEvent.participant_id == bindparam("participant_id"),
        ActivityEvent.kind.in_(bindparam("kinds", expanding=True)),
        ActivityEvent.at >= bindparam("since"), ActivityEvent.at < bindparam("until"))
    badges = (select(Award.key, Award.at, Award.id)
              .where(Award.participant_id == bindparam("participant_id"), Award.kind == "badge",
                     Award.key.in_(bindparam("keys", expanding=True)))
              .order_by(Award.at.desc(), Award.id.desc()).limit(bindparam("limit")).subquery())
    return union_all(events, select(badges.c.key, badges.c.at, badges.c.id))
