"""Rows the caseload reads, written directly for tests (call inside an app context; they
flush, the test commits)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.extensions import db
from core.models import Participant, User
from core.sms import SmsMessage
from moderation.care_models import CheckInTask, ModeratorMessage
from moderation.models import RiskAlert
from modules.models import MoodEntry, Step, StepProgress
from outcomes.prompts.models import PlannedPrompt, SmsProtocolVersion
from outcomes.prompts.protocol import default_data


def add_moods(person: Participant, scores: dict[date, int], *, at: datetime) -> None:
    for day, score in scores.items():
        db.session.add(MoodEntry(participant_id=person.id, local_date=day, score=score,
                                 created_at=at, updated_at=at))
    db.session.flush()


def protocol_version(study_id: int) -> SmsProtocolVersion:
    version = db.session.scalar(select(SmsProtocolVersion).where(
        SmsProtocolVersion.study_id == study_id))
    if version is None:
        version = SmsProtocolVersion(study_id=study_id, version=1, source="default",
                                     data=default_data())
        db.session.add(version)
        db.session.flush()
    return version


def add_prompt(person: Participant, planned_at: datetime, *, status: str = "delivered",
               answered: bool = False, expired: bool = True, key: str = "lonely") -> PlannedPrompt:
    """A prompt sent at ``planned_at`` (its text in ``status``), open for 3 hours."""
    message = SmsMessage(direction="out", participant_id=person.id, purpose="prompt",
                         body="How lonely did you feel today?", status=status,
                         created_at=planned_at, send_after=planned_at)
    db.session.add(message)
    db.session.flush()
    expires = planned_at + timedelta(hours=3)
    prompt = PlannedPrompt(participant_id=person.id,
                           protocol_version_id=protocol_version(person.study_id).id,
                           prompt_key=key, slot=planned_at.date(), planned_at=planned_at,
                           expires_at=expires, message_id=message.id,
                           answered_at=planned_at + timedelta(minutes=5) if answered else None,
                           expired_at=expires if expired and not answered else None)
    db.session.add(prompt)
    db.session.flush()
    return prompt


def add_alert(person: Participant, *, at: datetime, resolved: bool = False,
              **fields: Any) -> RiskAlert:
    alert = RiskAlert(channel="forum_post", content_type="forum_post", content_id=1,
                      participant_id=person.id, author_id=person.user_id,
                      category="self_harm", opened_at=at,
                      resolved_at=at + timedelta(hours=1) if resolved else None, **fields)
    db.session.add(alert)
    db.session.flush()
    return alert


def add_task(person: Participant, *, due_at: datetime, status: str = "open",
             reason: str = "inactive") -> CheckInTask:
    task = CheckInTask(participant_id=person.id, moderator_id=person.moderator_id,
                       reason=reason, status=status, due_at=due_at, created_at=due_at,
                       open_key=f"{person.id}:{reason}" if status == "open" else None)
    db.session.add(task)
    db.session.flush()
    return task


def add_message(person: Participant, sender: User, *, at: datetime,
                direction: str = "from_participant", read: bool = False) -> ModeratorMessage:
    message = ModeratorMessage(participant_id=person.id, sender_id=sender.id,
                               direction=direction, body="Hello", created_at=at,
                               read_at=at if read else None)
    db.session.add(message)
    db.session.flush()
    return message


def complete_steps(person: Participant, steps: list[Step], *, at: datetime) -> None:
    for step in steps:
        db.session.add(StepProgress(participant_id=person.id, step_id=step.id, completed_at=at))
    db.session.flush()
