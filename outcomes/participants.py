"""The participant path: statuses, the moves between them, withdrawals, lost to follow-up.

::

    invited → consented → baseline_done → randomised → active → completed
                          (any of these)  → withdrawn

``withdrawn`` means withdrawn from the *study*. Withdrawing from the intervention only
or from text messages only leaves the status where it is and is recorded as a
``Withdrawal`` row. "Lost to follow-up" is never stored: it is worked out from activity
(:func:`is_lost_to_follow_up`), so it can never disagree with the data.

What each withdrawal does:

- ``intervention``: modules, points, forum and moderator check-ins switch off for them
  (``outcomes.services.features_for``); questionnaires and SMS symptom prompts, which are
  outcome measures, carry on, and so does their place in follow-up.
- ``study``: status ``withdrawn``; every feature switches off, SMS consent is cleared and
  any open invite link is revoked, so nothing contacts them any more (other packages ask
  :func:`may_contact`). Their account is *not* disabled: they can still sign in to change
  or remove their phone number and to find the study contact and crisis resources.
  Data already collected is kept, as the consent text says.
- ``sms``: SMS consent cleared; nothing else changes.

Transaction contract: the functions that change something flush and leave the commit to
their caller; the others only read. Staff-entered reasons are stored in their own
columns and never copied into the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from core import accounts, audit
from core.clock import utcnow
from core.events import ActivityEvent, last_activity
from core.extensions import db
from core.models import Invite, Participant, User
from core.roles import Role
from outcomes.models import StatusChange, Study, Withdrawal

#: the path, in order
PATH = ("invited", "consented", "baseline_done", "randomised", "active", "completed")
WITHDRAWN = "withdrawn"
#: computed, never stored
LOST = "lost_to_follow_up"
#: who is being followed up, and so can be lost to follow-up
IN_FOLLOW_UP = ("randomised", "active")
#: no activity for this many days (24-hour periods) makes a participant lost to follow-up
DEFAULT_LOST_AFTER_DAYS = 28

#: every allowed move. A move to "randomised" happens only through
#: ``outcomes.randomisation.randomise`` (it sets the arm) and one to "withdrawn" only
#: through :func:`withdraw` (it records the date and reason).
TRANSITIONS: dict[str, frozenset[str]] = {
    "invited": frozenset({"consented", WITHDRAWN}),
    "consented": frozenset({"baseline_done", WITHDRAWN}),
    "baseline_done": frozenset({"randomised", WITHDRAWN}),
    "randomised": frozenset({"active", "completed", WITHDRAWN}),
    "active": frozenset({"completed", WITHDRAWN}),
    "completed": frozenset({WITHDRAWN}),
    WITHDRAWN: frozenset(),
}
#: the moves a researcher makes by hand on the participant page
MANUAL_MOVES = ("baseline_done", "active", "completed")

WITHDRAWAL_KINDS = {
    "intervention": "From the intervention only (stays in follow-up)",
    "study": "From the study (no further contact)",
    "sms": "From text messages only",
}
#: the arm features that make up the intervention; a withdrawal from it switches these off
INTERVENTION_FEATURES = ("modules", "gamification", "forum", "checkins")

_IS = {
    "invited": "is invited",
    "consented": "has consented",
    "baseline_done": "has done the baseline questionnaires",
    "randomised": "is randomised",
    "active": "is active",
    "completed": "has completed the study",
    WITHDRAWN: "has withdrawn from the study",
}
_BECOME = {
    "invited": "invited again",
    "consented": "marked as consented",
    "baseline_done": "marked as baseline done",
    "randomised": "randomised",
    "active": "marked as active",
    "completed": "marked as completed",
    WITHDRAWN: "withdrawn",
}
#: why a participant cannot jump past a step
_MISSING = {
    "consented": "they have not consented yet",
    "baseline_done": "their baseline questionnaires are not complete yet",
    "randomised": "they have not been randomised yet",
    "active": "they have not started yet",
    "completed": "they have not completed the study yet",
}


class TrialError(ValueError):
    """A trial action that cannot be done; ``field`` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- status moves -------------------------------------------------------------

def can_move(current: str, to: str) -> bool:
    return to in TRANSITIONS.get(current, frozenset())


def refusal(current: str, to: str) -> str:
    """The sentence that explains why ``current`` cannot move to ``to``."""
    if current == WITHDRAWN:
        why = "they have withdrawn from the study"
    elif to == current:
        why = "that is already their status"
    elif current in PATH and to in PATH and PATH.index(to) < PATH.index(current):
        why = "the path only moves forward"
    elif current in PATH and current != PATH[-1]:
        why = _MISSING[PATH[PATH.index(current) + 1]]
    else:
        why = "that move is not allowed"
    return f"A participant who {_IS.get(current, current)} cannot be {_BECOME.get(to, to)}: {why}."


def transition(participant: Participant, to: str, *, actor: User | None,
               reason: str | None = None) -> StatusChange:
    """Move a participant one allowed step along the path. Flushes; the caller commits.

    ``actor`` is None for jobs. ``reason`` is optional staff free text.
    """
    if to == LOST:
        raise TrialError("Lost to follow-up is worked out from activity; it is not set by hand.")
    if to not in TRANSITIONS:
        raise TrialError(f"{to!r} is not a participant status.")
    if not can_move(participant.status, to):
        raise TrialError(refusal(participant.status, to))
    if to == "randomised" and participant.arm_id is None:
        raise TrialError("Randomise the participant through the allocation sequence, which "
                         "gives them their arm.")
    if to == WITHDRAWN:
        raise TrialError("Record a withdrawal from the study, with its date and reason, instead.")
    return _move(participant, to, actor=actor, reason=reason)


def _move(participant: Participant, to: str, *, actor: User | None, reason: str | None = None,
          at: datetime | None = None) -> StatusChange:
    old = participant.status
    accounts.set_status(participant, to, actor=actor)
    if at is not None:
        participant.status_changed_at = at
    change = StatusChange(participant_id=participant.id, from_status=old, to_status=to,
                          at=participant.status_changed_at,
                          actor_id=actor.id if actor is not None else None,
                          reason=(reason or "").strip() or None)
    db.session.add(change)
    db.session.flush()
    return change


def moves_for(participant: Participant) -> list[str]:
    """The manual moves allowed from the participant's status, for the page's buttons."""
    return [to for to in MANUAL_MOVES if can_move(participant.status, to)]


# --- withdrawals --------------------------------------------------------------

def withdraw(participant: Participant, kind: str, *, actor: User, reason: str,
             at: datetime | None = None) -> Withdrawal:
    """Record a withdrawal of ``kind`` and apply its effects (see the module docstring).

    ``at`` is when the participant withdrew (default now); it may be earlier than now,
    never later, and never before enrolment. Flushes; the caller commits.
    """
    _require_may_record(actor, participant)
    if kind not in WITHDRAWAL_KINDS:
        raise TrialError("Choose what the participant is withdrawing from.", "kind")
    reason = (reason or "").strip()
    if not reason:
        raise TrialError("Give the reason for the withdrawal.", "reason")
    now = utcnow()
    at = at or now
    if at > now:
        raise TrialError("The date of withdrawal cannot be in the future.", "day")
    if at < participant.enrolled_at:
        raise TrialError("The date of withdrawal cannot be before the participant was enrolled.",
                         "day")
    _APPLY[kind](participant, actor, at)
    row = Withdrawal(participant_id=participant.id, kind=kind, at=at, reason=reason,
                     recorded_by_id=actor.id, recorded_at=now)
    db.session.add(row)
    db.session.flush()
    audit.record("participant.withdrawn", actor=actor, target=participant, kind=kind,
                 withdrawal_id=row.id, at=at.date().isoformat())
    for handler in _withdrawal_handlers:
        handler(participant, kind, now)
    return row


#: what other packages do at once when someone withdraws (moderation cancels open
#: check-ins); each is called with the participant, the kind and the time it was recorded
_withdrawal_handlers: list[Callable[[Participant, str, datetime], Any]] = []


def on_withdrawal(handler: Callable[[Participant, str, datetime], Any]) -> None:
    """Run ``handler`` inside every :func:`withdraw`, after the withdrawal is flushed
    (registering it again changes nothing)."""
    if handler not in _withdrawal_handlers:
        _withdrawal_handlers.append(handler)


def _require_may_record(actor: User, participant: Participant) -> None:
    if actor.role in (Role.RESEARCHER, Role.ADMIN) or actor.id == participant.user_id:
        return
    raise accounts.PermissionDenied("only researchers, admins or the participant record a "
                                    "withdrawal")


def _withdraw_from_intervention(participant: Participant, actor: User, at: datetime) -> None:
    if participant.status == WITHDRAWN:
        raise TrialError(f"{participant.study_code} has already withdrawn from the study.", "kind")
    if participant.status not in IN_FOLLOW_UP:
        raise TrialError(f"{participant.study_code} {_IS[participant.status]}, so there is no "
                         "intervention to stop. Record a withdrawal from the study instead.",
                         "kind")
    if has_withdrawn(participant, "intervention"):
        raise TrialError(f"{participant.study_code} has already withdrawn from the intervention.",
                         "kind")


def _withdraw_from_study(participant: Participant, actor: User, at: datetime) -> None:
    if participant.status == WITHDRAWN:
        raise TrialError(f"{participant.study_code} has already withdrawn from the study.", "kind")
    _move(participant, WITHDRAWN, actor=actor, at=at)
    participant.sms_consent = False
    db.session.execute(
        update(Invite).where(Invite.participant_id == participant.id, Invite.used_at.is_(None),
                             Invite.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False))


def _withdraw_from_sms(participant: Participant, actor: User, at: datetime) -> None:
    if not participant.sms_consent:
        raise TrialError(f"{participant.study_code} does not receive text messages, so there "
                         "is nothing to stop.", "kind")
    participant.sms_consent = False


_APPLY = {"intervention": _withdraw_from_intervention, "study": _withdraw_from_study,
          "sms": _withdraw_from_sms}


def withdrawal_time(participant: Participant, day: date | None, *, now: datetime) -> datetime:
    """When a withdrawal given as a calendar day (in the study's time zone) happened: now
    for today (or no day), else the start of that day, but not before enrolment on the
    day of enrolment."""
    study = db.session.get(Study, participant.study_id)
    zone = ZoneInfo(study.timezone if study else "UTC")
    if day is None or day == now.astimezone(zone).date():
        return now
    start = datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(now.tzinfo)
    if day == participant.enrolled_at.astimezone(zone).date():
        return max(start, participant.enrolled_at)
    return start


def withdrawals_of(participant: Participant) -> list[Withdrawal]:
    return list(db.session.scalars(select(Withdrawal).where(
        Withdrawal.participant_id == participant.id).order_by(Withdrawal.at, Withdrawal.id)))


def has_withdrawn(participant: Participant, kind: str) -> bool:
    return db.session.scalar(select(Withdrawal.id).where(
        Withdrawal.participant_id == participant.id, Withdrawal.kind == kind).limit(1)) is not None


def receives_intervention(participant: Participant) -> bool:
    """False once they have withdrawn from the intervention or from the study."""
    if participant.status == WITHDRAWN:
        return False
    return participant.arm_id is None or not has_withdrawn(participant, "intervention")


def may_contact(participant: Participant) -> bool:
    """Whether anyone or anything (moderators, reminders, SMS) may still contact them."""
    return participant.status != WITHDRAWN


# --- lost to follow-up ----------------------------------------------------------

def _is_lost(status: str, randomised_at: datetime | None, last: datetime | None, *,
             now: datetime, days: int) -> bool:
    if status not in IN_FOLLOW_UP:
        return False
    anchor = max((t for t in (randomised_at, last) if t is not None), default=None)
    return anchor is not None and now - anchor >= timedelta(days=days)


def is_lost_to_follow_up(participant: Participant, *, now: datetime,
                         days: int = DEFAULT_LOST_AFTER_DAYS) -> bool:
    """Randomised (or active), not withdrawn from the study, and no activity event for
    ``days`` whole 24-hour periods since their last one (or since randomisation)."""
    last = last_activity([participant.id]).get(participant.id)
    return _is_lost(participant.status, participant.randomised_at, last, now=now, days=days)


@dataclass(frozen=True)
class LostParticipant:
    participant_id: int
    arm_id: int | None
    last_active_at: datetime | None


def lost_to_follow_up(study: Study, *, now: datetime,
                      days: int = DEFAULT_LOST_AFTER_DAYS) -> list[LostParticipant]:
    """Every participant of ``study`` lost to follow-up now, in one query."""
    rows = db.session.execute(
        select(Participant.id, Participant.arm_id, Participant.status, Participant.randomised_at,
               func.max(ActivityEvent.at))
        .outerjoin(ActivityEvent, ActivityEvent.participant_id == Participant.id)
        .where(Participant.study_id == study.id, Participant.status.in_(IN_FOLLOW_UP))
        .group_by(Participant.id, Participant.arm_id, Participant.status,
                  Participant.randomised_at)
    ).all()
    return [LostParticipant(pid, arm_id, last) for pid, arm_id, status, randomised_at, last in rows
            if _is_lost(status, randomised_at, last, now=now, days=days)]


def withdrawal_counts(study: Study) -> dict[tuple[str, int | None], int]:
    """(kind, arm id) -> number of participants with such a withdrawal."""
    rows = db.session.execute(
        select(Withdrawal.kind, Participant.arm_id, func.count(func.distinct(Participant.id)))
        .join(Participant, Participant.id == Withdrawal.participant_id)
        .where(Participant.study_id == study.id)
        .group_by(Withdrawal.kind, Participant.arm_id)
    ).all()
    return {(kind, arm_id): count for kind, arm_id, count in rows}



def describe(status: str) -> str:
    """A status as pages show it."""
    return status.replace("_", " ")
