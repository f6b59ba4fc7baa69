"""Fidelity figures: did the moderators do what the intervention promises?

For a date range (UTC days, the end day included):

- **Check-ins**: tasks *due* in the range, by the moderator whose caseload they were on
  when made: done on time (completed by the due time), done late, overdue and still open,
  open and not yet due, and cancelled (not counted as due).
- **Flags**: review-queue items (automatic flags and reports) *created* in the range:
  median hours from ``created_at`` to the first ``handled_at``, by the moderator who
  handled them; still-open ones are counted, not timed.
- **Risk alerts** opened in the range: median hours from ``opened_at`` to
  ``acknowledged_at``, by the clinician who took them.

Optionally for one study: only the tasks, flags and alerts about its participants (flags on
staff writing belong to no study and are left out then).

Four queries whatever the size of the range; the medians are worked out here. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from statistics import median
from typing import Any

from sqlalchemy import Select, select

from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from moderation.care_models import CheckInTask
from moderation.models import QueueItem, RiskAlert

DEFAULT_DAYS = 90
MAX_DAYS = 731
HOUR = timedelta(hours=1)


@dataclass
class Figures:
    """One line of the table: one moderator, or everyone (``moderator_id`` None and
    ``label`` "All moderators"), or the caseless ("Unassigned")."""

    label: str
    moderator_id: int | None = None
    on_time: int = 0
    late: int = 0
    overdue: int = 0
    not_yet_due: int = 0
    cancelled: int = 0
    flag_hours: list[float] = field(default_factory=list)
    flags_open: int = 0
    alert_hours: list[float] = field(default_factory=list)
    alerts_open: int = 0

    @property
    def due(self) -> int:
        return self.on_time + self.late + self.overdue + self.not_yet_due

    @property
    def done(self) -> int:
        return self.on_time + self.late

    @property
    def median_flag_hours(self) -> float | None:
        return round(median(self.flag_hours), 1) if self.flag_hours else None

    @property
    def median_alert_hours(self) -> float | None:
        return round(median(self.alert_hours), 1) if self.alert_hours else None

    @property
    def on_time_percent(self) -> int | None:
        """Done on time, as a share of those whose due time has passed."""
        passed = self.on_time + self.late + self.overdue
        return round(100 * self.on_time / passed) if passed else None


@dataclass
class Fidelity:
    start: date
    end: date
    now: datetime
    overall: Figures
    rows: list[Figures]


def default_range(today: date) -> tuple[date, date]:
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def check_range(start: date, end: date) -> None:
    if start > end:
        raise ValueError("The start date must be on or before the end date.")
    if (end - start).days >= MAX_DAYS:
        raise ValueError(f"Choose a range of at most {MAX_DAYS} days.")


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time.min, tzinfo=UTC),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))


class _Table:
    def __init__(self) -> None:
        self.overall = Figures("All moderators")
        self.by_id: dict[int | None, Figures] = {}

    def row(self, moderator_id: int | None) -> Figures:
        if moderator_id not in self.by_id:
            self.by_id[moderator_id] = Figures("Unassigned" if moderator_id is None else "",
                                               moderator_id)
        return self.by_id[moderator_id]

    def both(self, moderator_id: int | None) -> tuple[Figures, Figures]:
        return self.overall, self.row(moderator_id)


def _task_state(status: str, due_at: datetime, completed_at: datetime | None,
                now: datetime) -> str:
    if status == "cancelled":
        return "cancelled"
    if status == "done":
        return "on_time" if completed_at is not None and completed_at <= due_at else "late"
    return "overdue" if due_at <= now else "not_yet_due"


def _of_study(query: Select[Any], model: Any, study_id: int | None) -> Select[Any]:
    if study_id is None:
        return query
    return query.where(model.participant_id.in_(
        select(Participant.id).where(Participant.study_id == study_id)))


def _add_tasks(table: _Table, low: datetime, high: datetime, now: datetime,
               study_id: int | None) -> None:
    rows = db.session.execute(_of_study(
        select(CheckInTask.moderator_id, CheckInTask.status, CheckInTask.due_at,
               CheckInTask.completed_at)
        .where(CheckInTask.due_at >= low, CheckInTask.due_at < high), CheckInTask, study_id)).all()
    for moderator_id, status, due_at, completed_at in rows:
        state = _task_state(status, due_at, completed_at, now)
        for figures in table.both(moderator_id):
            setattr(figures, state, getattr(figures, state) + 1)


def _add_flags(table: _Table, low: datetime, high: datetime, study_id: int | None) -> None:
    _add_responses(table, db.session.execute(_of_study(
        select(QueueItem.handled_by_id, QueueItem.created_at, QueueItem.handled_at)
        .where(QueueItem.created_at >= low, QueueItem.created_at < high), QueueItem,
        study_id)).all(), "flags_open", "flag_hours")


def _add_alerts(table: _Table, low: datetime, high: datetime, study_id: int | None) -> None:
    _add_responses(table, db.session.execute(_of_study(
        select(RiskAlert.acknowledged_by_id, RiskAlert.opened_at, RiskAlert.acknowledged_at)
        .where(RiskAlert.opened_at >= low, RiskAlert.opened_at < high), RiskAlert,
        study_id)).all(), "alerts_open", "alert_hours")


def _add_responses(table: _Table, rows: Any, open_count: str, hours_list: str) -> None:
    """(responder id, opened, first response) rows: unanswered ones count as open overall;
    answered ones add their hours to the responder's figures and the overall ones."""
    for responder_id, opened_at, answered_at in rows:
        if answered_at is None:
            setattr(table.overall, open_count, getattr(table.overall, open_count) + 1)
            continue
        hours = (answered_at - opened_at) / HOUR
        for figures in table.both(responder_id):
            getattr(figures, hours_list).append(hours)


def fidelity(start: date, end: date, *, now: datetime | None = None,
             study_id: int | None = None) -> Fidelity:
    """The figures for ``start``..``end`` (UTC days, both included), of every study or of
    ``study_id``'s participants."""
    check_range(start, end)
    now = now or utcnow()
    low, high = _bounds(start, end)
    table = _Table()
    _add_tasks(table, low, high, now, study_id)
    _add_flags(table, low, high, study_id)
    _add_alerts(table, low, high, study_id)
    ids = [i for i in table.by_id if i is not None]
    people = db.session.execute(select(User.id, User.display_name, User.email)
                                .where(User.id.in_(ids))).all() if ids else []
    labels = {uid: name or email or f"user {uid}" for uid, name, email in people}
    for moderator_id, figures in table.by_id.items():
        if moderator_id is not None:
            figures.label = labels.get(moderator_id, f"user {moderator_id}")
    rows = sorted(table.by_id.values(), key=lambda f: (f.moderator_id is None, f.label.lower()))
    return Fidelity(start, end, now, table.overall, rows)
