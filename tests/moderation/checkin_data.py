"""Set-up for the check-in tests: a study with randomised participants, and the rows the
rules read (activity, prompts, moods, UCLA-3 answers, alerts), written directly.

Call inside an app context; the writers flush, the caller commits."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from html import unescape

from sqlalchemy import select

# The pages register with moderation's blueprint when imported (moderation/__init__.py
# imports them in the app; importing them here first keeps these tests independent of it).
import moderation.checkin_views  # noqa: F401
from core.audit import AuditEntry
from core.extensions import db
from core.models import Participant, User
from core.sms import SmsMessage
from moderation.care_models import CheckInTask
from moderation.models import RiskAlert
from modules.models import MoodEntry
from outcomes.models import Study
from outcomes.prompts.models import ANSWERED, PlannedPrompt, PromptReply, SmsProtocolVersion
from outcomes.prompts.protocol import default_data
from tests.factories import make_participant

PEER = "peer@example.org"
OTHER_PEER = "other@example.org"
CLINICIAN = "clinician@example.org"
RESEARCHER = "researcher@example.org"
ADMIN = "admin@example.org"


def randomised(study: Study, code: str, *, name: str | None = None,
               moderator: User | None = None, arm: str = "guided",
               since: datetime) -> Participant:
    """A participant randomised to ``arm`` at ``since``."""
    person = make_participant(study, code, name=name or f"Person {code}", moderator=moderator,
                              arm=arm)
    person.status, person.randomised_at = "randomised", since
    db.session.commit()
    return person


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
               answered: bool = False, key: str = "lonely") -> PlannedPrompt:
    """A prompt whose text ended in ``status``: answered after 5 minutes, or expired
    unanswered after 2 hours."""
    message = SmsMessage(direction="out", participant_id=person.id, purpose="prompt",
                         body="How lonely did you feel today?", status=status,
                         created_at=planned_at, send_after=planned_at)
    db.session.add(message)
    db.session.flush()
    expires = planned_at + timedelta(hours=2)
    prompt = PlannedPrompt(participant_id=person.id,
                           protocol_version_id=protocol_version(person.study_id).id,
                           prompt_key=key, slot=planned_at.date(), planned_at=planned_at,
                           expires_at=expires, message_id=message.id,
                           answered_at=planned_at + timedelta(minutes=5) if answered else None,
                           expired_at=None if answered else expires)
    db.session.add(prompt)
    db.session.flush()
    return prompt


def add_ucla3(person: Participant, at: datetime, score: float) -> PromptReply:
    prompt = add_prompt(person, at - timedelta(minutes=5), answered=True, key="ucla3")
    reply = PromptReply(prompt_id=prompt.id, participant_id=person.id, prompt_key="ucla3",
                        status=ANSWERED, value=[1, 2, 3], score=score, received_at=at,
                        latency_seconds=300)
    db.session.add(reply)
    db.session.flush()
    return reply


def add_moods(person: Participant, scores: dict[date, int], *, at: datetime) -> None:
    for day, score in scores.items():
        db.session.add(MoodEntry(participant_id=person.id, local_date=day, score=score,
                                 created_at=at, updated_at=at))
    db.session.flush()


def add_alert(person: Participant, *, opened_at: datetime,
              resolved_at: datetime | None = None) -> RiskAlert:
    alert = RiskAlert(channel="forum_post", content_type="forum_post", content_id=1,
                      participant_id=person.id, author_id=person.user_id,
                      category="self_harm", opened_at=opened_at, resolved_at=resolved_at)
    db.session.add(alert)
    db.session.flush()
    return alert


def tasks_of(person_id: int | None = None) -> list[CheckInTask]:
    query = select(CheckInTask).order_by(CheckInTask.id)
    if person_id is not None:
        query = query.where(CheckInTask.participant_id == person_id)
    return list(db.session.scalars(query))


def reasons_of(person_id: int, status: str = "open") -> list[str]:
    return sorted(t.reason for t in tasks_of(person_id) if t.status == status)


def audits(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(AuditEntry.seq)))


def signed_in(app, identifier: str):
    """A fresh test client signed in as ``identifier`` (e-mail or study code)."""
    from tests.conftest import AuthActions

    client = app.test_client()
    response = AuthActions(client, app).login(identifier)
    assert response.status_code == 302, identifier
    return client


def text_of(response) -> str:
    """The page's visible text, tags dropped, whitespace collapsed."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
