"""The moderator's side of check-in tasks: the lists, completing a task (by a message in
the app or by text, or by recording another contact), cancelling one, adding one by hand,
and the check-in lines of a participant's staff timeline.

**Who.** Peer moderators work on the tasks of participants on their own caseload;
clinicians on everyone's (``moderation.services.can_view``). Tasks follow the
participant: when a caseload changes hands, so do its open tasks.

**Concurrency.** Completing and cancelling are one conditional UPDATE on the task's id,
``version`` (from the page the moderator loaded) and ``status = 'open'``. Two moderators
acting at once: the second UPDATE matches no row and :class:`AlreadyClosed` names who
closed it; it changes nothing, and no message is sent because the message is written only
after the UPDATE has won.

Transaction contract: every function flushes and never commits; the view commits.
Staff notes stay in ``checkin_task.note``; the audit log gets ids and codes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import joinedload

from core import audit
from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from core.roles import MODERATORS, Role
from core.sms import outbox
from moderation import messages
from moderation.care_models import (
    CHECKIN_CHANNELS,
    CHECKIN_OUTCOMES,
    CHECKIN_REASONS,
    CheckInTask,
)
from moderation.checkins.errors import AlreadyClosed, CheckInError, PermissionDenied
from moderation.checkins.evaluate import open_task
from moderation.record import TimelineEntry
from moderation.services import can_view
from outcomes.participants import may_contact

#: channels that send the participant a message through ``moderation.messages``
MESSAGE_CHANNELS = ("in_app", "sms")
#: outcomes that need someone to have been reached
REACHED = ("reached", "reached_support")
NOTE_MAX = 2000
CANCEL_MAX = 500
#: the "due in" choices when adding a task by hand (hours)
MANUAL_DUE_HOURS = (24, 48, 72, 168)
LIST_LIMIT = 300
SCOPES = ("mine", "all", "unassigned")
SHOWS = ("open", "due", "overdue", "done", "cancelled")


def require_moderator(actor: Any) -> None:
    if getattr(actor, "role", None) not in MODERATORS:
        raise PermissionDenied("Only moderators work on check-ins.")


def authorise(actor: User, task: CheckInTask) -> None:
    """Peers: own caseload only; clinicians: everyone."""
    require_moderator(actor)
    if not can_view(actor, task.participant):
        raise PermissionDenied("This participant is not on your caseload.")


# --------------------------------------------------------------------------- lists


def _scoped(query: Any, actor: User, scope: str) -> Any:
    if actor.role != Role.CLINICIAN or scope == "mine":
        return query.where(Participant.moderator_id == actor.id)
    if scope == "unassigned":
        return query.where(Participant.moderator_id.is_(None))
    return query


def _shown(query: Any, show: str, now: datetime) -> Any:
    if show == "due":
        return query.where(CheckInTask.status == "open", CheckInTask.due_at > now)
    if show == "overdue":
        return query.where(CheckInTask.status == "open", CheckInTask.due_at <= now)
    if show in ("done", "cancelled"):
        return query.where(CheckInTask.status == show)
    return query.where(CheckInTask.status == "open")


def task_list(actor: User, *, scope: str = "mine", show: str = "open", reason: str | None = None,
              now: datetime | None = None, limit: int = LIST_LIMIT) -> list[CheckInTask]:
    """The tasks a moderator sees in one tab: open ones soonest due first, closed ones
    newest first. Peers always get their own caseload whatever ``scope`` says."""
    require_moderator(actor)
    now = now or utcnow()
    query = (select(CheckInTask).join(Participant, Participant.id == CheckInTask.participant_id)
             .options(joinedload(CheckInTask.participant).joinedload(Participant.user),
                      joinedload(CheckInTask.participant).joinedload(Participant.moderator),
                      joinedload(CheckInTask.completed_by)))
    query = _shown(_scoped(query, actor, scope), show, now)
    if reason:
        query = query.where(CheckInTask.reason == reason)
    if show in ("done", "cancelled"):
        query = query.order_by(CheckInTask.completed_at.desc(), CheckInTask.id.desc())
    else:
        query = query.order_by(CheckInTask.due_at, CheckInTask.id)
    return list(db.session.scalars(query.limit(limit)).unique())


def tab_counts(actor: User, *, scope: str = "mine", reason: str | None = None,
               now: datetime | None = None) -> dict[str, int]:
    """How many tasks each tab holds, in one query."""
    require_moderator(actor)
    now = now or utcnow()
    is_open = CheckInTask.status == "open"
    query = select(
        func.count(case((is_open, 1))),
        func.count(case((is_open & (CheckInTask.due_at > now), 1))),
        func.count(case((is_open & (CheckInTask.due_at <= now), 1))),
        func.count(case((CheckInTask.status == "done", 1))),
        func.count(case((CheckInTask.status == "cancelled", 1))),
    ).select_from(CheckInTask).join(Participant, Participant.id == CheckInTask.participant_id)
    query = _scoped(query, actor, scope)
    if reason:
        query = query.where(CheckInTask.reason == reason)
    return dict(zip(SHOWS, db.session.execute(query).one(), strict=True))


def open_tasks_of(person: Participant) -> list[CheckInTask]:
    return list(db.session.scalars(
        select(CheckInTask).where(CheckInTask.participant_id == person.id,
                                  CheckInTask.status == "open")
        .order_by(CheckInTask.due_at, CheckInTask.id)))


# --------------------------------------------------------------------------- texting


def sms_unavailable_reason(person: Participant) -> str | None:
    """Why this participant cannot be texted now, in a sentence for staff; None if they
    can (``core.sms.outbox.may_text``)."""
    if outbox.may_text(person):
        return None
    if not person.phone:
        return "They have not given a mobile number."
    if not person.sms_consent:
        return "They have not agreed to text messages."
    if person.sms_opted_out_at is not None:
        return "They replied STOP to our texts."
    return "Their account is switched off."


# --------------------------------------------------------------------------- closing


def closed_by_text(task: CheckInTask) -> str:
    """"Already completed by Kit at 14:05 UTC on 05 Dec 2026." for a closed task."""
    verb = "completed" if task.status == "done" else "cancelled"
    who = task.completed_by.name if task.completed_by is not None else "someone else"
    when = (f" at {task.completed_at:%H:%M} UTC on {task.completed_at:%d %b %Y}"
            if task.completed_at else "")
    return f"Already {verb} by {who}{when}. Nothing was changed."


def _close(task: CheckInTask, *, version: int, actor: User, **values: Any) -> None:
    """The conditional UPDATE both completing and cancelling go through."""
    result = db.session.execute(
        update(CheckInTask)
        .where(CheckInTask.id == task.id, CheckInTask.version == version,
               CheckInTask.status == "open")
        .values(open_key=None, version=CheckInTask.version + 1, completed_at=utcnow(),
                completed_by_id=actor.id, **values)
        .execution_options(synchronize_session=False))
    db.session.refresh(task)
    if result.rowcount != 1:
        if task.status != "open":
            raise AlreadyClosed(closed_by_text(task))
        raise AlreadyClosed("This task changed since you opened it. Please check it again.")


def _clean_note(note: str | None, limit: int = NOTE_MAX, field: str = "note") -> str | None:
    note = (note or "").replace("\r\n", "\n").strip()
    if len(note) > limit:
        raise CheckInError(f"Please keep it under {limit:,} characters (it has {len(note):,}).",
                           field)
    return note or None


@dataclass(frozen=True)
class Completion:
    """What the moderator did, as typed in the completion form."""

    channel: str
    outcome: str
    body: str | None = None
    note: str | None = None


def _check_completion(person: Participant, done: Completion) -> str | None:
    """Refuse an impossible completion; returns the cleaned message body (or None)."""
    if done.channel not in CHECKIN_CHANNELS:
        raise CheckInError("Choose how you got in touch.", "channel")
    if done.outcome not in CHECKIN_OUTCOMES:
        raise CheckInError("Choose what came of it.", "outcome")
    if done.channel == "none" and done.outcome in REACHED:
        raise CheckInError("You chose “No contact made”, so they cannot have been reached.",
                           "outcome")
    if done.channel not in MESSAGE_CHANNELS:
        return None
    if not may_contact(person):
        raise CheckInError("They have withdrawn from the study: do not send them messages.",
                           "channel")
    if done.channel == "sms" and (why := sms_unavailable_reason(person)):
        raise CheckInError(f"A text cannot be sent: {why} Send it in the app instead.",
                           "channel")
    try:
        return messages.clean_body(done.body)
    except messages.MessageError as exc:
        raise CheckInError(str(exc), "body") from exc


def complete(task: CheckInTask, done: Completion, *, actor: User, version: int) -> CheckInTask:
    """Close a task as done. For ``in_app`` and ``sms`` the message is sent through
    ``moderation.messages.send`` (notification, outbox row for a text, activity event)."""
    authorise(actor, task)
    person = task.participant
    body = _check_completion(person, done)
    note = _clean_note(done.note)
    _close(task, version=version, actor=actor, status="done", channel=done.channel,
           outcome=done.outcome, note=note)
    if body is not None:
        try:
            message = messages.send(person, body, actor=actor, by_sms=done.channel == "sms",
                                    task_id=task.id)
        except messages.MessageError as exc:
            raise CheckInError(str(exc), "body") from exc
        except messages.PermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        task.message_id = message.id
    audit.record("checkin.task_completed", actor=actor, target=person, task_id=task.id,
                 reason=task.reason, channel=done.channel, outcome=done.outcome,
                 late=task.completed_at > task.due_at)
    db.session.flush()
    return task


def cancel(task: CheckInTask, *, actor: User, version: int, reason: str) -> CheckInTask:
    """Close a task without a contact, with the moderator's reason (kept as its note)."""
    authorise(actor, task)
    why = _clean_note(reason, CANCEL_MAX, "reason")
    if why is None:
        raise CheckInError("Say why the check-in is not needed.", "reason")
    _close(task, version=version, actor=actor, status="cancelled", note=why)
    audit.record("checkin.task_cancelled", actor=actor, target=task.participant,
                 task_id=task.id, reason=task.reason)
    db.session.flush()
    return task


def add_manual(person: Participant, *, actor: User, due_hours: int,
               note: str | None = None) -> CheckInTask:
    """A moderator adds a check-in by hand (one open at a time per participant)."""
    require_moderator(actor)
    if not can_view(actor, person):
        raise PermissionDenied("This participant is not on your caseload.")
    if not may_contact(person):
        raise CheckInError("They have withdrawn from the study: no check-ins.")
    if due_hours not in MANUAL_DUE_HOURS:
        raise CheckInError("Choose when it is due.", "due_hours")
    task = open_task(person, "manual", due_at=utcnow() + timedelta(hours=due_hours),
                     detail={"added_by": actor.id}, actor=actor, note=_clean_note(note))
    if task is None:
        raise CheckInError("There is already an open check-in added by hand for them. "
                           "Complete or cancel it first.")
    return task


# --------------------------------------------------------------------------- timeline


def may_read_note(viewer: User, task: CheckInTask) -> bool:
    """Whether ``viewer`` (who may see the participant) reads the task's note. While the
    task is open the note is its brief ("what to check in about"), for whoever does it;
    once closed it is the closer's note: clinicians read all of them, a peer only their
    own (and the system's)."""
    if viewer.role == Role.CLINICIAN or task.status == "open":
        return True
    return task.completed_by_id in (None, viewer.id)


def timeline_entries(person: Participant, viewer: User, since: datetime | None
                     ) -> list[TimelineEntry]:
    """The "checkin" source of the staff participant page: tasks made and closed."""
    tasks = db.session.scalars(
        select(CheckInTask).options(joinedload(CheckInTask.completed_by))
        .where(CheckInTask.participant_id == person.id)).all()
    entries = []
    for task in tasks:
        url = f"/moderation/checkins/{task.id}"
        label = CHECKIN_REASONS.get(task.reason, task.reason)
        readable = bool(task.note) and may_read_note(viewer, task)
        entries.append(TimelineEntry(
            task.created_at, "checkin", f"Check-in to do: {label}", url,
            (task.note,) if readable and task.status == "open" else ()))
        if task.completed_at is not None:
            who = task.completed_by.name if task.completed_by else "someone"
            if task.status == "done":
                text = (f"Check-in done by {who}: {CHECKIN_CHANNELS.get(task.channel, '')}, "
                        f"{CHECKIN_OUTCOMES.get(task.outcome, '').lower()}")
            else:
                text = f"Check-in cancelled by {who}"
            entries.append(TimelineEntry(task.completed_at, "checkin", text, url,
                                         (task.note,) if readable else ()))
    return [e for e in entries if since is None or e.at >= since]
