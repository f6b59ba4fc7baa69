"""Turning the study's rules into check-in tasks: :func:`evaluate` (the daily job calls it
for every study) and :func:`open_task` (also used for tasks added by hand).

**Who.** Participants of the study who are randomised or active, may still be contacted
(not withdrawn from the study), have an enabled account, and whose arm has moderator
check-ins (``checkins`` feature) and who have not withdrawn from the intervention.

**One open task per participant and reason.** A task's ``open_key`` is
``"<participant>:<reason>"`` while it is open; the unique index holds even when two runs
race. Each insert happens in a SAVEPOINT, and a unique violation means "already open".

**No churn.** A rule only counts evidence newer than the last time a task of the same
reason was closed (done or cancelled) for that participant: inactivity and missed prompts
are counted again from that moment, a mood drop and a UCLA-3 score must be recorded after
it, and an alert must have been resolved after it. So re-running the job the same or the
next day opens nothing new, and a closed task opens again only on new evidence.

**Withdrawal.** Open tasks of someone who withdraws from the study or from the
intervention are cancelled at once, with a note saying so (``close_on_withdrawal``, run by
``outcomes.participants.withdraw``); the daily run also cancels any left open.

Transaction contract: flushes, never commits; the job wrapper commits once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from core import audit, notifications
from core.clock import utcnow
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant, User
from core.sms.models import SmsMessage
from moderation.care_models import CHECKIN_REASONS, CheckInTask
from moderation.checkins.settings import RuleSetting, rules_for
from moderation.models import RiskAlert
from modules.models import MoodEntry
from modules.progress import participant_zone
from outcomes.adherence.definitions import USE_KINDS
from outcomes.models import Study, Withdrawal
from outcomes.participants import may_contact, on_withdrawal
from outcomes.prompts.models import ANSWERED, PlannedPrompt, PromptReply
from outcomes.prompts.protocol import default_data, protocol_for, read_protocol
from outcomes.prompts.services import DELIVERED

ELIGIBLE_STATUSES = ("randomised", "active")
#: a mood drop is looked for among the moods of the last 3 days and today
MOOD_DAYS = 3
#: a UCLA-3 answer older than this does not open a task
LONELINESS_RECENT = timedelta(days=7)
#: a resolved alert is followed up from the next day, for this many days if the job missed
FOLLOW_UP_DAYS = 3
UCLA3 = "ucla3"

notifications.register_kind("checkin_due", "A new check-in to do", "{count} new check-ins to do")


@dataclass
class Report:
    """What one evaluation did."""

    study_id: int
    checked: int = 0
    created: Counter[str] = field(default_factory=Counter)
    #: the rule fired but a task of that reason was already open
    already_open: Counter[str] = field(default_factory=Counter)
    #: open tasks cancelled because the participant withdrew
    closed: int = 0

    @property
    def total_created(self) -> int:
        return sum(self.created.values())


@dataclass
class Context:
    """What every rule needs: the eligible people and when each reason was last closed."""

    study: Study
    now: datetime
    people: dict[int, Participant]
    #: (participant id, reason) -> newest completed_at of a closed task
    floors: dict[tuple[int, str], datetime]

    def floor(self, participant_id: int, reason: str) -> datetime | None:
        return self.floors.get((participant_id, reason))

    def after_floor(self, participant_id: int, reason: str, at: datetime | None) -> bool:
        floor = self.floor(participant_id, reason)
        return at is not None and (floor is None or at > floor)

    def ids(self) -> Select[Any]:
        """The study's randomised and active participants, as a subquery (no long IN
        lists); the rules then keep only ``people``."""
        return (select(Participant.id)
                .where(Participant.study_id == self.study.id,
                       Participant.status.in_(ELIGIBLE_STATUSES)))


# --------------------------------------------------------------------------- who


def eligible(study: Study) -> list[Participant]:
    """The participants of ``study`` whom check-ins are for (see the module docstring)."""
    people = db.session.scalars(
        select(Participant).options(joinedload(Participant.user))
        .where(Participant.study_id == study.id, Participant.status.in_(ELIGIBLE_STATUSES))
        .order_by(Participant.id)).all()
    arms = {arm.id: arm for arm in study.arms}
    withdrawn = set(db.session.scalars(
        select(Withdrawal.participant_id)
        .join(Participant, Participant.id == Withdrawal.participant_id)
        .where(Withdrawal.kind == "intervention", Participant.study_id == study.id)))
    return [p for p in people
            if may_contact(p) and p.user.is_enabled and p.id not in withdrawn
            and (p.arm_id is None or (p.arm_id in arms and arms[p.arm_id].has("checkins")))]


def _floors(study: Study) -> dict[tuple[int, str], datetime]:
    rows = db.session.execute(
        select(CheckInTask.participant_id, CheckInTask.reason,
               func.max(CheckInTask.completed_at))
        .join(Participant, Participant.id == CheckInTask.participant_id)
        .where(Participant.study_id == study.id, CheckInTask.status != "open")
        .group_by(CheckInTask.participant_id, CheckInTask.reason)).all()
    return {(pid, reason): at for pid, reason, at in rows if at is not None}


def _open_keys(study: Study) -> set[str]:
    return set(db.session.scalars(
        select(CheckInTask.open_key).join(Participant, Participant.id == CheckInTask.participant_id)
        .where(Participant.study_id == study.id, CheckInTask.open_key.is_not(None))))


# --------------------------------------------------------------------------- the rules
# Each takes the context and the rule's threshold and returns participant id -> detail
# (figures only, never text).


def inactive(ctx: Context, days: int) -> dict[int, dict[str, Any]]:
    """No use (``USE_KINDS``) for ``days`` days since the newest of: last use,
    randomisation, the last closed inactivity check-in."""
    last = dict(db.session.execute(
        select(ActivityEvent.participant_id, func.max(ActivityEvent.at))
        .where(ActivityEvent.participant_id.in_(ctx.ids()), ActivityEvent.kind.in_(USE_KINDS))
        .group_by(ActivityEvent.participant_id)).all())
    found = {}
    for pid, person in ctx.people.items():
        anchors = [t for t in (last.get(pid), person.randomised_at, ctx.floor(pid, "inactive"))
                   if t is not None]
        if not anchors:
            continue
        quiet = (ctx.now - max(anchors)) / timedelta(days=1)
        if quiet >= days:
            found[pid] = {"days": int(quiet), "never_active": last.get(pid) is None}
    return found


def missed_prompts(ctx: Context, count: int) -> dict[int, dict[str, Any]]:
    """The newest ``count`` delivered and closed SMS prompts all expired unanswered, all
    after the last closed task of this reason."""
    closed = or_(PlannedPrompt.answered_at.is_not(None), PlannedPrompt.expired_at.is_not(None))
    ranked = (
        select(PlannedPrompt.participant_id, PlannedPrompt.planned_at, PlannedPrompt.answered_at,
               func.row_number().over(partition_by=PlannedPrompt.participant_id,
                                      order_by=(PlannedPrompt.planned_at.desc(),
                                                PlannedPrompt.id.desc())).label("rank"))
        .join(SmsMessage, SmsMessage.id == PlannedPrompt.message_id)
        .where(PlannedPrompt.participant_id.in_(ctx.ids()), SmsMessage.status.in_(DELIVERED),
               closed)
        .subquery())
    rows = db.session.execute(select(ranked.c.participant_id, ranked.c.planned_at,
                                     ranked.c.answered_at).where(ranked.c.rank <= count)).all()
    newest: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for pid, planned_at, answered_at in rows:
        newest[pid].append((planned_at, answered_at))
    found = {}
    for pid, prompts in newest.items():
        if pid not in ctx.people or len(prompts) < count:
            continue
        if all(answered is None and ctx.after_floor(pid, "missed_prompts", planned)
               for planned, answered in prompts):
            found[pid] = {"missed": count, "since": min(p for p, _ in prompts).date().isoformat()}
    return found


def mood_drop(ctx: Context, points: int) -> dict[int, dict[str, Any]]:
    """The first mood of the participant's last ``MOOD_DAYS`` local days and today is at
    least ``points`` above the newest one (moods saved after the last closed task only)."""
    earliest = (ctx.now - timedelta(days=MOOD_DAYS + 1)).date()
    rows = db.session.scalars(
        select(MoodEntry).where(MoodEntry.participant_id.in_(ctx.ids()),
                                MoodEntry.local_date >= earliest)
        .order_by(MoodEntry.participant_id, MoodEntry.local_date)).all()
    moods: dict[int, list[MoodEntry]] = defaultdict(list)
    for entry in rows:
        moods[entry.participant_id].append(entry)
    found = {}
    for pid, entries in moods.items():
        person = ctx.people.get(pid)
        if person is None:
            continue
        today = ctx.now.astimezone(participant_zone(person)).date()
        recent = [e for e in entries if today - timedelta(days=MOOD_DAYS) <= e.local_date <= today
                  and ctx.after_floor(pid, "mood_drop", e.updated_at or e.created_at)]
        if len(recent) >= 2 and recent[0].score - recent[-1].score >= points:
            found[pid] = {"from": recent[0].score, "to": recent[-1].score,
                          "days": (recent[-1].local_date - recent[0].local_date).days}
    return found


def ucla3_keys(study: Study) -> set[str]:
    """The study's SMS prompt keys scored with the UCLA-3 instrument."""
    stored = protocol_for(study.id)
    protocol = stored[1] if stored is not None else read_protocol(default_data())
    return {p.key for p in protocol.prompts if p.answer.instrument == UCLA3}


def high_loneliness(ctx: Context, threshold: int) -> dict[int, dict[str, Any]]:
    """The newest UCLA-3 SMS answer of the last 7 days scores ``threshold`` or more."""
    keys = ucla3_keys(ctx.study)
    if not keys:
        return {}
    rows = db.session.execute(
        select(PromptReply.participant_id, PromptReply.score, PromptReply.received_at)
        .where(PromptReply.participant_id.in_(ctx.ids()), PromptReply.status == ANSWERED,
               PromptReply.prompt_key.in_(keys), PromptReply.score.is_not(None),
               PromptReply.received_at >= ctx.now - LONELINESS_RECENT)
        .order_by(PromptReply.received_at, PromptReply.id)).all()
    newest = {pid: (score, at) for pid, score, at in rows}
    return {pid: {"score": score} for pid, (score, at) in newest.items()
            if pid in ctx.people and score >= threshold
            and ctx.after_floor(pid, "high_loneliness", at)}


def _study_zone(study: Study) -> ZoneInfo:
    try:
        return ZoneInfo(study.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def alert_follow_up(ctx: Context, _threshold: int | None) -> dict[int, dict[str, Any]]:
    """A risk alert resolved before today (the study's local day), within the last few
    days, and after the last closed follow-up task."""
    zone = _study_zone(ctx.study)
    today = ctx.now.astimezone(zone).date()
    start_of_today = datetime.combine(today, time.min, tzinfo=zone).astimezone(UTC)
    rows = db.session.execute(
        select(RiskAlert.participant_id, RiskAlert.id, RiskAlert.resolved_at)
        .where(RiskAlert.participant_id.in_(ctx.ids()),
               RiskAlert.resolved_at >= start_of_today - timedelta(days=FOLLOW_UP_DAYS),
               RiskAlert.resolved_at < start_of_today)
        .order_by(RiskAlert.resolved_at, RiskAlert.id)).all()
    found = {}
    for pid, alert_id, resolved_at in rows:
        if pid in ctx.people and ctx.after_floor(pid, "alert_follow_up", resolved_at):
            found[pid] = {"alert_id": alert_id}
    return found


RULES: dict[str, Callable[[Context, Any], dict[int, dict[str, Any]]]] = {
    "inactive": inactive,
    "missed_prompts": missed_prompts,
    "mood_drop": mood_drop,
    "high_loneliness": high_loneliness,
    "alert_follow_up": alert_follow_up,
}


# --------------------------------------------------------------------------- tasks


def open_task(person: Participant, reason: str, *, due_at: datetime,
              detail: dict[str, Any] | None = None, actor: User | None = None,
              note: str | None = None, now: datetime | None = None) -> CheckInTask | None:
    """Open a task, or return None when one of this reason is already open for them
    (even one another transaction has just made). Audited; the caseload moderator is
    told in the app."""
    if reason not in CHECKIN_REASONS:
        raise ValueError(f"unknown check-in reason {reason!r}")
    now = now or utcnow()
    task = CheckInTask(participant_id=person.id, moderator_id=person.moderator_id,
                       reason=reason, detail=detail or {}, open_key=f"{person.id}:{reason}",
                       status="open", created_at=now, due_at=due_at, note=note, version=1)
    try:
        with db.session.begin_nested():
            db.session.add(task)
    except IntegrityError:
        return None
    audit.record("checkin.task_created", actor=actor, target=person, task_id=task.id,
                 reason=reason, manual=actor is not None)
    moderator = person.moderator
    if moderator is not None:
        notifications.notify(moderator, kind="checkin_due", actor=actor,
                             text=f"A new check-in: {CHECKIN_REASONS[reason].lower()}",
                             url=f"/moderation/checkins/{task.id}", dedupe_key="checkins-new")
    return task


def _run_rule(ctx: Context, setting: RuleSetting, open_keys: set[str], report: Report) -> None:
    due_at = ctx.now + timedelta(hours=setting.due_hours)
    for pid, detail in sorted(RULES[setting.reason](ctx, setting.threshold).items()):
        if f"{pid}:{setting.reason}" in open_keys:
            report.already_open[setting.reason] += 1
        elif open_task(ctx.people[pid], setting.reason, due_at=due_at, detail=detail,
                       now=ctx.now):
            report.created[setting.reason] += 1
        else:
            report.already_open[setting.reason] += 1


#: kept as the note of a task the job closes because check-ins stopped for the participant
STOPPED_NOTE = "Closed automatically: they withdrew, so check-ins have stopped."


def close_stopped(study: Study, now: datetime) -> int:
    """Cancel the open tasks of participants who withdrew from the study or from the
    intervention since the task was made (nobody may check in with them now)."""
    withdrawn = select(Withdrawal.participant_id).where(
        Withdrawal.kind.in_(("study", "intervention")))
    stale = db.session.scalars(
        select(CheckInTask).join(Participant, Participant.id == CheckInTask.participant_id)
        .where(Participant.study_id == study.id, CheckInTask.status == "open",
               or_(Participant.status == "withdrawn", Participant.id.in_(withdrawn)))).all()
    return _cancel_stopped(stale, now)


def close_on_withdrawal(participant: Participant, kind: str, now: datetime) -> int:
    """Cancel the participant's open tasks when they withdraw from the study or the
    intervention (registered with ``outcomes.participants.on_withdrawal``)."""
    if kind not in ("study", "intervention"):
        return 0
    return _cancel_stopped(db.session.scalars(select(CheckInTask).where(
        CheckInTask.participant_id == participant.id, CheckInTask.status == "open")).all(), now)


def _cancel_stopped(stale: Sequence[CheckInTask], now: datetime) -> int:
    for task in stale:
        task.status, task.open_key, task.completed_at = "cancelled", None, now
        task.note, task.version = STOPPED_NOTE, task.version + 1
        audit.record("checkin.task_cancelled", target=task.participant, task_id=task.id,
                     reason=task.reason, automatic=True)
    db.session.flush()
    return len(stale)


on_withdrawal(close_on_withdrawal)


def evaluate(study: Study, now: datetime | None = None) -> Report:
    """Close the tasks of those who withdrew, then evaluate every enabled rule of
    ``study`` and open the tasks that are due."""
    now = now or utcnow()
    closed = close_stopped(study, now)
    people = eligible(study)
    report = Report(study.id, checked=len(people), closed=closed)
    if not people:
        return report
    ctx = Context(study, now, {p.id: p for p in people}, _floors(study))
    open_keys = _open_keys(study)
    for setting in rules_for(study.id).values():
        if setting.is_enabled:
            _run_rule(ctx, setting, open_keys, report)
    db.session.flush()
    return report
