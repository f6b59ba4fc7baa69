"""Timeline sources of the staff page of a participant: activity events, moods, SMS
answers (and prompts left unanswered), questionnaires and moderation history.

Each source returns :class:`moderation.record.TimelineEntry` rows at or after ``since``
and is registered with :func:`moderation.record.add_source` when this module is imported
(``moderation.services`` imports it). Entries hold codes, labels and numbers, never
participants' words: no post, reflection, SMS or mood-note text, and no staff note
either (the moderation log's notes stay on the queue item's page).

What a peer moderator gets is narrower than what a clinician gets: questionnaire scores
are clinical and shown to clinicians only, and the moderation history leaves out every
``clinician_only`` item (risk, private reflections) and every risk-alert step.

Read-only: nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from flask import url_for
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from core.events import KINDS, ActivityEvent
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from moderation.models import ALERT_ACTIONS, CATEGORIES, LEVELS, ModerationLog, QueueItem, RiskAlert
from moderation.record import TimelineEntry, add_source
from modules.models import MoodEntry
from modules.mood import MOOD_BY_SCORE
from outcomes import instruments
from outcomes.assessments.models import AssessmentResponse, Timepoint
from outcomes.prompts.models import PlannedPrompt, SmsProtocolVersion
from outcomes.prompts.protocol import read_protocol
from outcomes.prompts.services import sms_answers_for

#: every kind of entry the page can show, in the order its filter lists them
KIND_LABELS = {
    "activity": "Activity",
    "mood": "Moods",
    "sms": "SMS answers",
    "assessment": "Questionnaires",
    "moderation": "Moderation",
    "message": "Messages",
    "note": "Staff notes",
    "checkin": "Check-ins",
    "suggestion": "Suggestions",
}
#: event kinds another source here shows better (with the answer, score or mood)
COVERED_EVENTS = ("mood_logged", "sms_answered", "sms_reply_unreadable",
                  "assessment_completed", "timepoint_completed",
                  # the "message" source shows these with their sender
                  "moderator_contact", "moderator_message_written")
LIMIT = 300
CHANNELS = {"forum_post": "Forum post", "forum_comment": "Forum comment",
            "reflection": "Journal reflection", "sms": "Text message"}
SEVERITY_WORDS = {1: "low", 2: "medium", 3: "high"}


def _since(column: Any, since: datetime | None) -> Any:
    return column >= since if since is not None else True


# --------------------------------------------------------------------------- activity

def _event_detail(detail: dict[str, Any]) -> tuple[str, ...]:
    """The codes an event carries, as staff read them."""
    shown = {"module": "Module", "step": "Step", "points": "Points", "level": "Level",
             "badge": "Badge", "timepoint": "Timepoint"}
    return tuple(f"{label}: {detail[key]}" for key, label in shown.items()
                 if detail.get(key) not in (None, ""))


def activity(person: Participant, viewer: User, since: datetime | None) -> list[TimelineEntry]:
    events = db.session.scalars(
        select(ActivityEvent)
        .where(ActivityEvent.participant_id == person.id,
               ActivityEvent.kind.not_in(COVERED_EVENTS), _since(ActivityEvent.at, since))
        .order_by(ActivityEvent.at.desc(), ActivityEvent.id.desc()).limit(LIMIT))
    return [TimelineEntry(at=e.at, kind="activity", text=KINDS.get(e.kind, e.kind),
                          detail=_event_detail(e.detail or {})) for e in events]


# --------------------------------------------------------------------------- moods

def moods(person: Participant, viewer: User, since: datetime | None) -> list[TimelineEntry]:
    """One entry per local day's mood (the score, never the note)."""
    entries = db.session.scalars(
        select(MoodEntry)
        .where(MoodEntry.participant_id == person.id, _since(MoodEntry.updated_at, since))
        .order_by(MoodEntry.local_date.desc()).limit(LIMIT))
    result = []
    for entry in entries:
        level = MOOD_BY_SCORE.get(entry.score)
        word = f": {level.word}" if level else ""
        result.append(TimelineEntry(at=entry.updated_at, kind="mood",
                                    text=f"Mood {entry.score} of 5{word}"))
    return result


# --------------------------------------------------------------------------- SMS

def sms(person: Participant, viewer: User, since: datetime | None) -> list[TimelineEntry]:
    """Replies to symptom prompts (answered, late, unreadable) and prompts left unanswered."""
    result = []
    for answer in sms_answers_for(person, limit=LIMIT):
        if since is not None and answer.received_at < since:
            continue
        if answer.status == "answered":
            text = f"Answered '{answer.label}': {answer.shown}"
        elif answer.status == "late":
            text = f"Answered '{answer.label}' too late (not counted): {answer.shown}"
        else:
            text = f"Sent a reply to '{answer.label}' that could not be read"
        result.append(TimelineEntry(at=answer.received_at, kind="sms", text=text))
    return result + _missed_prompts(person, since)


def _missed_prompts(person: Participant, since: datetime | None) -> list[TimelineEntry]:
    rows = db.session.execute(
        select(PlannedPrompt.prompt_key, PlannedPrompt.expired_at, SmsProtocolVersion.id,
               SmsProtocolVersion.data)
        .join(SmsProtocolVersion, SmsProtocolVersion.id == PlannedPrompt.protocol_version_id)
        .where(PlannedPrompt.participant_id == person.id, PlannedPrompt.message_id.is_not(None),
               PlannedPrompt.expired_at.is_not(None), PlannedPrompt.answered_at.is_(None),
               _since(PlannedPrompt.expired_at, since))
        .order_by(PlannedPrompt.expired_at.desc()).limit(LIMIT)).all()
    labels: dict[tuple[int, str], str] = {}
    for key, _at, version_id, data in rows:
        if (version_id, key) not in labels:
            labels[(version_id, key)] = _prompt_label(data, key)
    return [TimelineEntry(at=at, kind="sms", text=f"No answer to '{labels[(version_id, key)]}'")
            for key, at, version_id, _data in rows]


def _prompt_label(data: Any, key: str) -> str:
    try:
        prompt = read_protocol(data).prompt(key)
    except ValueError:  # a stored version that no longer reads: show the key
        return key
    return prompt.label if prompt is not None else key


# --------------------------------------------------------------------------- questionnaires

def _instrument_name(instrument_id: str) -> str:
    try:
        return instruments.get(instrument_id).short_name
    except (LookupError, instruments.InstrumentError):
        return instrument_id


def _score_line(response: AssessmentResponse) -> str:
    name = _instrument_name(response.instrument)
    if response.total is None:
        return f"{name}: not scored (too many answers missing)"
    labels = ", ".join(f"{value}" for value in (response.labels or {}).values()
                       if isinstance(value, str) and value)
    return f"{name}: {response.total:g}" + (f" ({labels})" if labels else "")


def assessments(person: Participant, viewer: User,
                since: datetime | None) -> list[TimelineEntry]:
    """One entry per timepoint with submitted questionnaires; scores for clinicians only."""
    rows = db.session.execute(
        select(AssessmentResponse, Timepoint)
        .join(Timepoint, Timepoint.id == AssessmentResponse.timepoint_id)
        .where(AssessmentResponse.participant_id == person.id,
               AssessmentResponse.submitted_at.is_not(None),
               _since(AssessmentResponse.submitted_at, since))
        .order_by(AssessmentResponse.submitted_at)).all()
    by_timepoint: dict[int, list[AssessmentResponse]] = defaultdict(list)
    timepoints = {}
    for response, timepoint in rows:
        by_timepoint[timepoint.id].append(response)
        timepoints[timepoint.id] = timepoint
    clinician = viewer.role == Role.CLINICIAN
    result = []
    for timepoint_id, responses in by_timepoint.items():
        timepoint = timepoints[timepoint_id]
        expected = len(timepoint.instruments or []) or len(responses)
        text = (f"Completed the {timepoint.label} questionnaires"
                if len(responses) >= expected else
                f"Filled in {len(responses)} of {expected} {timepoint.label} questionnaires")
        detail = tuple(_score_line(r) for r in responses) if clinician else tuple(
            _instrument_name(r.instrument) for r in responses)
        result.append(TimelineEntry(at=max(r.submitted_at for r in responses),
                                    kind="assessment", text=text, detail=detail))
    return result


# --------------------------------------------------------------------------- moderation

_ITEM_STEPS = {
    "item.flagged": "flagged by screening", "item.held": "held by screening for review",
    "item.reported": "reported by another member", "item.approved": "approved by {actor}",
    "item.hidden": "hidden by {actor}", "item.unhidden": "shown again by {actor}",
    "item.redacted": "redacted by {actor} (personal information)",
    "item.warned": "{actor} sent them a warning", "item.suspended": "{actor} suspended posting",
    "item.escalated": "escalated to a clinician by {actor}",
}
_ALERT_STEPS = {
    "alert.opened": "Risk alert opened", "alert.escalated": "Risk alert escalated",
    "alert.acknowledged": "Risk alert acknowledged by {actor}",
    "alert.resolved": "Risk alert resolved by {actor}",
}


def _actor_name(entry: ModerationLog) -> str:
    return entry.actor.name if entry.actor is not None else "the system"


def _item_entry(entry: ModerationLog, item: QueueItem) -> TimelineEntry:
    step = _ITEM_STEPS.get(entry.action, entry.action.removeprefix("item.").replace("_", " "))
    channel = CHANNELS.get(item.channel, item.channel)
    detail = []
    if item.category:
        severity = SEVERITY_WORDS.get(item.severity, "")
        detail.append(f"{CATEGORIES.get(item.category, item.category)}"
                      + (f", {severity} severity" if severity else ""))
    if entry.action == "item.suspended" and entry.detail.get("days"):
        detail.append(f"For {entry.detail['days']} days")
    return TimelineEntry(at=entry.at, kind="moderation",
                         text=f"{channel} {step.format(actor=_actor_name(entry))}",
                         url=url_for("moderation.queue_item", item_id=item.id, _external=False),
                         detail=tuple(detail))


def _alert_entry(entry: ModerationLog, alert: RiskAlert) -> TimelineEntry:
    text = _ALERT_STEPS.get(entry.action, entry.action.replace(".", " ").replace("_", " "))
    detail = [CATEGORIES.get(alert.category or "", alert.category or "")]
    if entry.action == "alert.escalated":
        detail.append(f"Now with: {LEVELS.get(entry.detail.get('level_to'), '')}")
    if entry.action == "alert.resolved":
        detail += [ALERT_ACTIONS.get(code, code) for code in entry.detail.get("actions") or []]
        if alert.possible_adverse_event:
            detail.append("Possible adverse event")
    return TimelineEntry(at=entry.at, kind="moderation",
                         text=text.format(actor=_actor_name(entry)),
                         url=url_for("moderation.alert_detail", alert_id=alert.id,
                                     _external=False),
                         detail=tuple(d for d in detail if d))


def moderation(person: Participant, viewer: User,
               since: datetime | None) -> list[TimelineEntry]:
    """The moderation log about this participant's writing and alerts (codes only). Peer
    moderators get neither clinician-only items nor risk alerts."""
    query = (select(ModerationLog, QueueItem, RiskAlert)
             .outerjoin(QueueItem, QueueItem.id == ModerationLog.item_id)
             .outerjoin(RiskAlert, RiskAlert.id == ModerationLog.alert_id)
             .options(joinedload(ModerationLog.actor))
             .where(or_(QueueItem.participant_id == person.id,
                        RiskAlert.participant_id == person.id),
                    ModerationLog.action != "alert.notified", _since(ModerationLog.at, since))
             .order_by(ModerationLog.at.desc(), ModerationLog.id.desc()).limit(LIMIT))
    if viewer.role != Role.CLINICIAN:
        query = query.where(ModerationLog.alert_id.is_(None), QueueItem.clinician_only.is_(False))
    result = []
    for entry, item, alert in db.session.execute(query):
        if alert is not None:
            result.append(_alert_entry(entry, alert))
        elif item is not None:
            result.append(_item_entry(entry, item))
    return result


def register() -> None:
    add_source("activity", activity)
    add_source("mood", moods)
    add_source("sms", sms)
    add_source("assessment", assessments)
    add_source("moderation", moderation)


register()
