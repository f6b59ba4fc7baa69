"""The moderator's caseload: one row of figures per participant.

Every figure of the whole list is read in seven queries (the same for 5 participants or
500: one list query with the counts, the arms, the SMS replies, the mood sums, the module
library and steps done),
then the rows are filtered and sorted in Python. Only the text search (``q``) runs in
SQL, as bound parameters. The list query is built once per process and kind of list
(every value in it is a bound parameter), and the ids it is about never leave the
database: the other queries take them as a subquery, not as a list of ids.

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
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, case, func, or_, select

from core.clock import utcnow
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant, User
from core.names import display_key
from core.roles import MODERATORS, Role
from moderation.care_models import CheckInTask, ModeratorMessage
from moderation.caseload_figures import (
    Library,
    MoodTrend,
    Person,
    Progress,
    mood_columns,
    mood_params,
    mood_sums,
    mood_trend,
    progress_of,
    read_library,
)
from moderation.models import RiskAlert
from modules.models import Award
from outcomes.models import Arm, Withdrawal
from outcomes.participants import may_contact
from outcomes.prompts.models import PlannedPrompt
from outcomes.prompts.services import response_counts

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
    rows = rows_for(*_list_of(actor, everyone=everyone, q=filters.q, now=now))
    arms = sorted({(r.arm.code, r.arm.name) for r in rows if r.arm is not None})
    if filters.arm and filters.arm != NO_ARM and filters.arm not in {code for code, _ in arms}:
        filters = replace(filters, arm="")
    shown = _sorted([r for r in rows if _matches(r, filters)], filters)
    return Caseload(rows=[r for r in shown if r.may_contact],
                    apart=[r for r in shown if not r.may_contact],
                    arms=arms, filters=filters,
                    total=_count(actor, everyone=everyone) if filters.q else len(rows))


def version(actor: User, *, everyone: bool = False) -> tuple[int, int, int]:
    """What a cached caseload page is checked against (``core.pagecache``): how many
    people the list holds and the sums of their ids and data versions. ``core.changes``
    moves a person's data version with anything of theirs and with joining or leaving a
    list, so the figures change with anything the page shows about them."""
    kind = "everyone" if everyone and actor.role == Role.CLINICIAN else "caseload"
    count, ids, versions = db.session.execute(_version_query(kind),
                                              {"moderator": actor.id}).one()
    return int(count), int(ids), int(versions)


@cache
def _version_query(kind: str) -> Select[Any]:
    query = select(func.count(), func.coalesce(func.sum(Participant.id), 0),
                   func.coalesce(func.sum(Participant.data_version), 0)
                   ).where(Participant.status != "invited")
    if kind == "caseload":
        query = query.where(Participant.moderator_id == bindparam("moderator"))
    return query


def _list_of(actor: User, *, everyone: bool, q: str,
             now: datetime) -> tuple[str, dict[str, Any]]:
    """The kind of list (:func:`_who`) and its parameters."""
    kind, who = ("everyone", {}) if everyone else ("caseload", {"moderator": actor.id})
    if q:
        kind, who = kind + "+q", who | {"name_like": _like(display_key(q)),
                                        "code_like": _like(q)}
    return kind, _params(now, **who)


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _scope(actor: User, *, everyone: bool) -> Select[Any]:
    query = select(Participant).where(Participant.status != "invited")
    return query if everyone else query.where(Participant.moderator_id == actor.id)


def _count(actor: User, *, everyone: bool) -> int:
    return db.session.scalar(select(func.count()).select_from(
        _scope(actor, everyone=everyone).subquery())) or 0


@cache
def _who(kind: str) -> Select[Any]:
    """The ids of the people a list is of, by ``kind`` ("one" participant, the actor's
    "caseload" or "everyone", "+q" when searched), with bound parameters (see
    :func:`_params`): the list query selects its columns from this, the others take it as
    a subquery."""
    if kind == "one":
        return select(Participant.id).where(Participant.id == bindparam("participant"))
    query = select(Participant.id).where(Participant.status != "invited")
    if kind.startswith("caseload"):
        query = query.where(Participant.moderator_id == bindparam("moderator"))
    if kind.endswith("+q"):
        names = select(User.id).where(
            User.display_key.like(bindparam("name_like"), escape="\\"))
        query = query.where(or_(
            Participant.user_id.in_(names),
            Participant.study_code.ilike(bindparam("code_like"), escape="\\")))
    return query


def _params(now: datetime, **who: Any) -> dict[str, Any]:
    """The bound parameters of the list's queries: ``who`` (the ids' parameters) and the
    times its figures are counted at."""
    return {"now": now, "sms_from": now - timedelta(days=SMS_DAYS), **mood_params(now),
            **who}


def row_for(participant: Participant, *, now: datetime | None = None) -> CaseloadRow:
    """One participant's caseload figures (the header of their staff page)."""
    return rows_for("one", _params(now or utcnow(), participant=participant.id))[0]


#: the columns of the list query, in order
_PERSON = slice(0, 8)
_LAST, _WITHDREW, _POINTS, _ALERTS, _CHECKINS, _OVERDUE, _UNREAD = range(8, 15)


def rows_for(kind: str, params: dict[str, Any]) -> list[CaseloadRow]:
    """Every figure of every participant of the ``kind`` of list (:func:`_who`), by study
    code, in seven queries: the list with the counts (:func:`_list_query`), their arms,
    SMS replies, mood sums and the module library with the steps done (three)."""
    found = db.session.execute(_list_query(kind), params).all()
    if not found:
        return []
    now = params["now"]
    people = [Person(*values[_PERSON]) for values in found]
    arms = _arms({p.arm_id for p in people if p.arm_id is not None})
    moods, columns = mood_sums(_who(kind), params), mood_columns(now)
    sms, library = _sms_rates(kind, params), read_library(_who(kind), params)
    return [_row(p, values, arms.get(p.arm_id) if p.arm_id is not None else None, library,
                 mood_trend(p, moods.get(p.id), now=now, columns=columns),
                 sms.get(p.id, (0, 0)), now)
            for p, values in zip(people, found, strict=True)]


def _row(p: Person, values: Row[Any], arm: Arm | None, library: Library, mood: MoodTrend,
         sms: tuple[int, int], now: datetime) -> CaseloadRow:
    last = values[_LAST]
    return CaseloadRow(
        p, arm, last, *activity_band(last, now), mood=mood,
        sms_answered=sms[0], sms_sent=sms[1],
        progress=progress_of(p, arm, library, values[_POINTS], now=now),
        open_alerts=values[_ALERTS] or 0, open_checkins=values[_CHECKINS] or 0,
        overdue_checkins=int(values[_OVERDUE] or 0), unread_replies=values[_UNREAD] or 0,
        may_contact=may_contact(p),  # type: ignore[arg-type]
        checkins_on=(arm is None or arm.has("checkins")) and not values[_WITHDREW])


@cache
def _list_query(kind: str) -> Select[Any]:
    """One row per participant of the ``kind`` of list: the person's columns, then each
    count as a subquery on the participant's own rows (None: no rows). Built once per
    process and kind: every value is a bound parameter.

    Correlated subqueries, not joins of grouped ones: each is an index look-up per person
    whatever the table statistics say, and the planner has no join order to search (nine
    joins took longer to plan than the whole list takes to run)."""
    name = (select(User.display_name).where(User.id == Participant.user_id)
            .correlate(Participant).scalar_subquery())
    return (_who(kind).with_only_columns(
                Participant.id, Participant.study_code, Participant.status, name,
                Participant.timezone, Participant.arm_id, Participant.randomised_at,
                Participant.enrolled_at, *_counts())
            .order_by(Participant.study_code))


def _counts() -> list[Any]:
    """The figures counted in the database, in the order of ``_LAST`` to ``_UNREAD``."""
    def of(model: Any, *columns: Any) -> Select[Any]:
        return select(*columns).select_from(model).where(model.participant_id == Participant.id)

    now = bindparam("now")
    checkins = of(CheckInTask).where(CheckInTask.status == "open")
    queries = [
        of(ActivityEvent, func.max(ActivityEvent.at)),
        of(Withdrawal, func.count(Withdrawal.id)).where(Withdrawal.kind == "intervention"),
        of(Award, func.sum(Award.points)).where(Award.kind == "points"),
        of(RiskAlert, func.count(RiskAlert.id)).where(RiskAlert.resolved_at.is_(None)),
        checkins.with_only_columns(func.count(CheckInTask.id)),
        checkins.with_only_columns(func.sum(case((CheckInTask.due_at < now, 1), else_=0))),
        of(ModeratorMessage, func.count(ModeratorMessage.id))
        .where(ModeratorMessage.direction == "from_participant",
               ModeratorMessage.read_at.is_(None))]
    return [query.correlate(Participant).scalar_subquery() for query in queries]


def _sms_rates(kind: str, params: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """Participant id -> (answered, delivered) prompts planned in the last ``SMS_DAYS``
    days, counted as ``outcomes.prompts.services.response_rates`` counts them (delivered:
    reached the network, or answered; prompts still open do not count). One grouped query
    of its own: as a subquery per person it joined every prompt to its text twice."""
    return {pid: (int(done or 0), int(delivered))
            for pid, done, delivered in db.session.execute(_sms_query(kind), params)}


@cache
def _sms_query(kind: str) -> Select[Any]:
    return response_counts(bindparam("now")).where(
        PlannedPrompt.participant_id.in_(_who(kind)),
        PlannedPrompt.planned_at >= bindparam("sms_from"))


def _arms(arm_ids: set[int]) -> dict[int, Arm]:
    if not arm_ids:
        return {}
    return {arm.id: arm for arm in db.session.scalars(select(Arm).where(Arm.id.in_(arm_ids)))}


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
