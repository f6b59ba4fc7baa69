"""The moderator's caseload: one row of figures per participant.

Every figure of the whole list is read in a fixed number of grouped queries (the same
for 5 participants or 500), then the rows are filtered and sorted in Python. Only the
text search (``q``) runs in SQL, as bound parameters.

- **Last activity**: the newest activity event, as a traffic light (``BANDS``).
- **Mood trend** and **module progress**: :mod:`moderation.caseload_figures`.
- **SMS replies**: answered / sent symptom prompts planned in the last 14 days
  (``outcomes.prompts.services.response_rates``: sent means it reached the network).
- **Open risk alerts, open check-ins (overdue among them), unread replies.**

Participants who must not be contacted (``outcomes.participants.may_contact``) are kept
apart from the rest: they get no check-in prompts.

Read-only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, or_, select

from core.clock import utcnow
from core.events import last_activity
from core.extensions import db
from core.models import Participant, User
from core.names import display_key
from core.roles import MODERATORS, Role
from moderation.care_models import CheckInTask, ModeratorMessage
from moderation.caseload_figures import MoodTrend, Person, Progress, mood_trends, progress_for
from moderation.models import RiskAlert
from outcomes.models import Arm, Withdrawal
from outcomes.participants import may_contact
from outcomes.prompts.services import response_rates

#: traffic-light bands of days since last activity: (under this many days, colour, label)
BANDS = ((2, "green", "Active in the last 2 days"), (7, "amber", "Active in the last week"),
         (30, "red", "Quiet for over a week"))
BAND_CHOICES = {"green": "Under 2 days", "amber": "Under 7 days", "red": "Under 30 days",
                "grey": "30 days or more, or never"}
SORTS = {"last": "Last active", "name": "Name", "mood": "Mood trend", "sms": "SMS replies",
         "progress": "Module progress"}
HAS_CHOICES = {"alerts": "Open risk alerts", "checkins": "Open check-ins",
               "unread": "Unread replies"}
#: the arm filter's value for people not allocated yet
NO_ARM = "none"
SMS_DAYS = 14
Q_MAX = 80


class PermissionDenied(Exception):
    pass


# --------------------------------------------------------------------------- rows

@dataclass
class CaseloadRow:
    participant: Person
    arm: Arm | None
    last_active: datetime | None
    band: str
    band_label: str
    mood: MoodTrend = field(default_factory=MoodTrend)
    sms_answered: int = 0
    sms_sent: int = 0
    progress: Progress = field(default_factory=Progress)
    open_alerts: int = 0
    open_checkins: int = 0
    overdue_checkins: int = 0
    unread_replies: int = 0
    may_contact: bool = True
    #: moderator check-ins are on for them (their arm has them, no intervention withdrawal)
    checkins_on: bool = True

    @property
    def sms_rate(self) -> float | None:
        return self.sms_answered / self.sms_sent if self.sms_sent else None

    @property
    def sms_percent(self) -> int | None:
        rate = self.sms_rate
        return None if rate is None else round(rate * 100)

    @property
    def name(self) -> str:
        return self.participant.display_name or ""


def activity_band(last: datetime | None, now: datetime) -> tuple[str, str]:
    if last is None:
        return "grey", "No activity yet"
    days = (now - last) / timedelta(days=1)
    for limit, colour, label in BANDS:
        if days < limit:
            return colour, label
    return "grey", "Quiet for over 30 days"


# --------------------------------------------------------------------------- filters

@dataclass(frozen=True)
class Filters:
    """What the moderator asked the list for (always valid: unknown values fall back)."""

    sort: str = "last"
    descending: bool = False
    band: str = ""
    arm: str = ""
    has: str = ""
    q: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Filters:
        sort = args.get("sort", "")
        band, has = args.get("band", ""), args.get("has", "")
        return cls(sort=sort if sort in SORTS else "last",
                   descending=args.get("dir") == "desc",
                   band=band if band in BAND_CHOICES else "",
                   arm=(args.get("arm") or "").strip()[:30],
                   has=has if has in HAS_CHOICES else "",
                   q=" ".join((args.get("q") or "").split())[:Q_MAX])

    @property
    def direction(self) -> str:
        return "desc" if self.descending else "asc"

    def query(self, **changes: Any) -> dict[str, str]:
        """URL arguments for these filters with ``changes`` (defaults left out)."""
        values = {"sort": self.sort, "dir": self.direction, "band": self.band,
                  "arm": self.arm, "has": self.has, "q": self.q} | changes
        defaults = {"sort": "last", "dir": "asc"}
        return {k: str(v) for k, v in values.items() if v and defaults.get(k) != v}

    def sort_link(self, key: str) -> dict[str, str]:
        """Arguments of the link on a column heading: sort by it, or flip its direction."""
        flip = "asc" if self.sort == key and self.descending else (
            "desc" if self.sort == key else "asc")
        return self.query(sort=key, dir=flip)

    @property
    def active(self) -> bool:
        return bool(self.band or self.arm or self.has or self.q)


@dataclass
class Caseload:
    #: the people who may be contacted, filtered and sorted
    rows: list[CaseloadRow]
    #: the people who must not be contacted (withdrawn from the study), same filters
    apart: list[CaseloadRow]
    #: (code, name) of the arms in the list, for the arm filter
    arms: list[tuple[str, str]]
    filters: Filters
    #: how many people the list holds before filtering
    total: int


# --------------------------------------------------------------------------- the list

def caseload(actor: User, *, everyone: bool = False, filters: Filters | None = None,
             now: datetime | None = None) -> Caseload:
    """The actor's participants (clinicians may ask for everyone's) with their figures."""
    if actor.role not in MODERATORS:
        raise PermissionDenied("only moderators hold caseloads")
    filters = filters or Filters()
    now = now or utcnow()
    everyone = everyone and actor.role == Role.CLINICIAN
    people = _participants(actor, everyone=everyone, q=filters.q)
    rows = rows_for(people, now=now)
    arms = sorted({(r.arm.code, r.arm.name) for r in rows if r.arm is not None})
    if filters.arm and filters.arm != NO_ARM and filters.arm not in {code for code, _ in arms}:
        filters = replace(filters, arm="")
    shown = _sorted([r for r in rows if _matches(r, filters)], filters)
    return Caseload(rows=[r for r in shown if r.may_contact],
                    apart=[r for r in shown if not r.may_contact],
                    arms=arms, filters=filters,
                    total=_count(actor, everyone=everyone) if filters.q else len(rows))


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _scope(actor: User, *, everyone: bool) -> Select[Any]:
    query = select(Participant).where(Participant.status != "invited")
    return query if everyone else query.where(Participant.moderator_id == actor.id)


def _participants(actor: User, *, everyone: bool, q: str) -> list[Person]:
    query = (_scope(actor, everyone=everyone).join(User, User.id == Participant.user_id)
             .with_only_columns(Participant.id, Participant.study_code, Participant.status,
                                User.display_name, Participant.timezone, Participant.arm_id,
                                Participant.randomised_at, Participant.enrolled_at))
    if q:
        query = query.where(or_(
            User.display_key.like(_like(display_key(q)), escape="\\"),
            Participant.study_code.ilike(_like(q), escape="\\")))
    return [Person(*row) for row in db.session.execute(query.order_by(Participant.study_code))]


def _count(actor: User, *, everyone: bool) -> int:
    return db.session.scalar(select(func.count()).select_from(
        _scope(actor, everyone=everyone).subquery())) or 0


def row_for(participant: Participant, *, now: datetime | None = None) -> CaseloadRow:
    """One participant's caseload figures (the header of their staff page)."""
    person = Person(participant.id, participant.study_code, participant.status,
                    participant.user.display_name, participant.timezone, participant.arm_id,
                    participant.randomised_at, participant.enrolled_at)
    return rows_for([person], now=now or utcnow())[0]


def rows_for(people: list[Person], *, now: datetime) -> list[CaseloadRow]:
    """Every figure of every row, in a fixed number of queries."""
    ids = [p.id for p in people]
    if not ids:
        return []
    last = last_activity(ids)
    arms = _arms({p.arm_id for p in people if p.arm_id is not None})
    withdrew = _intervention_withdrawals(ids)
    moods = mood_trends(people, now=now)
    sms = response_rates(ids, start=now - timedelta(days=SMS_DAYS), now=now)
    progress = progress_for(people, arms, now=now)
    alerts, checkins, unread = _open_alerts(ids), _open_checkins(ids, now), _unread(ids)
    rows = []
    for p in people:
        arm = arms.get(p.arm_id) if p.arm_id is not None else None
        rows.append(CaseloadRow(
            p, arm, last.get(p.id), *activity_band(last.get(p.id), now),
            mood=moods.get(p.id, MoodTrend()), sms_answered=sms.get(p.id, (0, 0))[0],
            sms_sent=sms.get(p.id, (0, 0))[1], progress=progress.get(p.id, Progress()),
            open_alerts=alerts.get(p.id, 0), open_checkins=checkins.get(p.id, (0, 0))[0],
            overdue_checkins=checkins.get(p.id, (0, 0))[1], unread_replies=unread.get(p.id, 0),
            may_contact=may_contact(p),
            checkins_on=(arm is None or arm.has("checkins")) and p.id not in withdrew))
    return rows


def _arms(arm_ids: set[int]) -> dict[int, Arm]:
    if not arm_ids:
        return {}
    return {arm.id: arm for arm in db.session.scalars(select(Arm).where(Arm.id.in_(arm_ids)))}


def _intervention_withdrawals(ids: list[int]) -> set[int]:
    return set(db.session.scalars(select(Withdrawal.participant_id).where(
        Withdrawal.participant_id.in_(ids), Withdrawal.kind == "intervention")))


def _open_alerts(ids: list[int]) -> dict[int, int]:
    return dict(db.session.execute(
        select(RiskAlert.participant_id, func.count(RiskAlert.id))
        .where(RiskAlert.participant_id.in_(ids), RiskAlert.resolved_at.is_(None))
        .group_by(RiskAlert.participant_id)).all())


def _open_checkins(ids: list[int], now: datetime) -> dict[int, tuple[int, int]]:
    """Participant id -> (open tasks, overdue among them)."""
    rows = db.session.execute(
        select(CheckInTask.participant_id, func.count(CheckInTask.id),
               func.sum(case((CheckInTask.due_at < now, 1), else_=0)))
        .where(CheckInTask.participant_id.in_(ids), CheckInTask.status == "open")
        .group_by(CheckInTask.participant_id))
    return {pid: (int(count), int(overdue or 0)) for pid, count, overdue in rows}


def _unread(ids: list[int]) -> dict[int, int]:
    return dict(db.session.execute(
        select(ModeratorMessage.participant_id, func.count(ModeratorMessage.id))
        .where(ModeratorMessage.participant_id.in_(ids),
               ModeratorMessage.direction == "from_participant",
               ModeratorMessage.read_at.is_(None))
        .group_by(ModeratorMessage.participant_id)).all())


# --------------------------------------------------------------------------- filter, sort

def _matches(row: CaseloadRow, filters: Filters) -> bool:
    if filters.band and row.band != filters.band:
        return False
    if filters.arm == NO_ARM and row.arm is not None:
        return False
    if filters.arm not in ("", NO_ARM) and (row.arm is None or row.arm.code != filters.arm):
        return False
    return _has(row, filters.has)


def _has(row: CaseloadRow, what: str) -> bool:
    counts = {"alerts": row.open_alerts, "checkins": row.open_checkins,
              "unread": row.unread_replies}
    return not what or counts[what] > 0


_NEVER = datetime.min.replace(tzinfo=UTC)
#: sort key -> the value a row sorts by (None: the figure is missing, always listed last)
SORT_KEYS: dict[str, Callable[[CaseloadRow], Any]] = {
    # never active counts as the quietest of all
    "last": lambda row: row.last_active or _NEVER,
    "name": lambda row: (display_key(row.name), row.participant.study_code),
    "mood": lambda row: row.mood.change,
    "sms": lambda row: row.sms_rate,
    "progress": lambda row: row.progress.ratio,
}


def _sorted(rows: list[CaseloadRow], filters: Filters) -> list[CaseloadRow]:
    """Sorted by the chosen figure (ties by study code); rows without it come last."""
    key = SORT_KEYS[filters.sort]
    rows = sorted(rows, key=lambda row: row.participant.study_code)
    known = sorted((r for r in rows if key(r) is not None), key=key, reverse=filters.descending)
    return known + [r for r in rows if key(r) is None]
