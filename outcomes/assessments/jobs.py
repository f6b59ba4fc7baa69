"""The questionnaire reminder job (``outcomes.assessment_reminders`` in ``core.scheduler``).

Each run looks at every participant who may be contacted and every timepoint that is
open or overdue for them and not complete. For each channel (in the app through
``core.notifications.notify``, by SMS through ``core.sms.queue``) it takes the latest
reminder day (days after opening, counted in the participant's local days) that has
come, and sends that reminder unless an ``AssessmentReminder`` row says it went out
already. A run that comes late therefore sends one reminder, not a burst of old ones,
and running again sends nothing. An SMS is a short text with a link (``PUBLIC_URL``),
held until the participant's waking window; it carries no scores or answers.

Transaction contract: :func:`send_reminders` flushes; the scheduler commits once.
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime, time, timedelta
from types import ModuleType
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from outcomes.assessments import services
from outcomes.assessments.models import AssessmentReminder, Timepoint
from outcomes.assessments.schedule import timepoints_of
from outcomes.models import Study

log = logging.getLogger("kinship.assessments")

#: where participants find their questionnaires (the blueprint's prefix)
INDEX_PATH = "/questionnaires/"
#: SMS are never sent outside this local time, whatever the waking window says
EARLIEST, LATEST = time(8, 0), time(21, 0)
#: the participant statuses that can have questionnaires to fill
REMINDED = ("consented", "baseline_done", "randomised", "active")


def _channel(name: str, function: str) -> ModuleType | None:
    """``core.sms`` or ``core.notifications``, or None while that package (or the
    function its contract names) is not there yet."""
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError:
        return None
    return module if callable(getattr(module, function, None)) else None


def link() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + INDEX_PATH


def reminder_text(timepoint: Timepoint, day: int) -> str:
    if day == 0:
        return f"Your {timepoint.label} questionnaires are ready to fill in."
    return f"A reminder: your {timepoint.label} questionnaires are waiting for you."


def sms_body(timepoint: Timepoint, day: int) -> str:
    first = "are ready" if day == 0 else "are still waiting for you"
    return (f"Kinship: your {timepoint.label} questionnaires {first}. Fill them in here: "
            f"{link()} Reply STOP to stop texts.")


def next_waking_time(participant: Participant, now: datetime) -> datetime | None:
    """None when now is inside the participant's waking window (and 08:00-21:00 local);
    otherwise the next start of it, in UTC."""
    zone = services.zone_of(participant)
    start = max(participant.wake_start or EARLIEST, EARLIEST)
    end = min(participant.wake_end or LATEST, LATEST)
    local = now.astimezone(zone)
    if start <= local.time() < end:
        return None
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=zone).astimezone(now.tzinfo)


def _latest_due_day(window: services.Window, days: list[int], now: datetime) -> int | None:
    reached = [day for day in days if (at := window.reminder_at(day)) is not None and at <= now]
    return max(reached) if reached else None


def _send_app(participant: Participant, user: User, timepoint: Timepoint, day: int) -> str:
    notifications = _channel("core.notifications", "notify")
    if notifications is None:
        return ""
    sent = notifications.notify(user, kind="assessment_due", text=reminder_text(timepoint, day),
                                url=INDEX_PATH,
                                dedupe_key=f"assessment:{participant.id}:{timepoint.id}:{day}")
    return "sent" if sent is not None else "not_sent"


def _send_sms(participant: Participant, user: User, timepoint: Timepoint, day: int,
              now: datetime) -> str:
    sms = _channel("core.sms", "queue")
    if sms is None:
        return ""
    queued = sms.queue(participant=participant, body=sms_body(timepoint, day),
                       purpose="assessment_reminder",
                       dedupe_key=f"assessment:{participant.id}:{timepoint.id}:{day}",
                       send_after=next_waking_time(participant, now))
    return "sent" if queued is not None else "not_sent"


def _already_sent(participant_ids: list[int]) -> set[tuple[int, int, str, int]]:
    if not participant_ids:
        return set()
    return set(db.session.execute(
        select(AssessmentReminder.participant_id, AssessmentReminder.timepoint_id,
               AssessmentReminder.channel, AssessmentReminder.day)
        .where(AssessmentReminder.participant_id.in_(participant_ids))).all())


def _remind_study(study: Study, now: datetime, counts: dict[str, int]) -> None:
    timepoints = timepoints_of(study)
    if not timepoints:
        return
    people = list(db.session.scalars(
        select(Participant).options(joinedload(Participant.user))
        .where(Participant.study_id == study.id, Participant.status.in_(REMINDED))))
    found = services.statuses(timepoints, services.facts_for(people), now=now)
    sent = _already_sent([p.id for p in people])
    for person in people:
        if not person.user.is_enabled:
            continue
        for timepoint in timepoints:
            status, window = found[(person.id, timepoint.id)]
            if status in services.FILLABLE:
                _remind(person, timepoint, window, now, sent, counts)


def _remind(person: Participant, timepoint: Timepoint, window: services.Window, now: datetime,
            sent: set[tuple[int, int, str, int]], counts: dict[str, int]) -> None:
    for channel, days in (("app", timepoint.reminder_days), ("sms", timepoint.sms_reminder_days)):
        day = _latest_due_day(window, list(days), now)
        if day is None or (person.id, timepoint.id, channel, day) in sent:
            continue
        outcome = (_send_app(person, person.user, timepoint, day) if channel == "app"
                   else _send_sms(person, person.user, timepoint, day, now))
        if not outcome:  # the channel's package is not installed: try again next run
            continue
        db.session.add(AssessmentReminder(participant_id=person.id, timepoint_id=timepoint.id,
                                          channel=channel, day=day, at=now, outcome=outcome))
        sent.add((person.id, timepoint.id, channel, day))
        counts[f"{channel}_{outcome}"] = counts.get(f"{channel}_{outcome}", 0) + 1


def send_reminders(now: datetime | None = None) -> dict[str, Any]:
    """Send the questionnaire reminders that are due; see the module docstring."""
    now = now or utcnow()
    counts: dict[str, int] = {}
    for study in db.session.scalars(select(Study).order_by(Study.id)):
        _remind_study(study, now, counts)
    db.session.flush()
    return counts
