"""The SMS prompts of the demo study: the default protocol, and a phone number and SMS
consent for the demo participant, so ``flask sms tick --at "2026-12-01 09:00"`` puts
their 09:00 prompt in the developer SMS inbox. Called by ``outcomes.demo.seed``."""

from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from core.models import ConsentRecord, Participant, User
from outcomes.demo import DEMO_PARTICIPANT
from outcomes.models import Study
from outcomes.prompts import protocol

#: a number from the range Ofcom keeps for drama and tests (07700 900000-900999)
DEMO_PHONE = "+447700900001"
DEMO_RESEARCHER = "researcher@demo.kinship.test"


def seed_demo_protocol(study: Study) -> None:
    """Give the demo study the default protocol and the demo participant what SMS prompts
    need (a mobile number, SMS consent, London time). Flushes; the caller commits."""
    researcher = db.session.scalar(select(User).where(User.email == DEMO_RESEARCHER))
    if protocol.current_version(study) is None:
        protocol.save_protocol_text(study, protocol.default_text(), actor=researcher)
    person = db.session.scalar(select(Participant).where(
        Participant.study_id == study.id, Participant.study_code == DEMO_PARTICIPANT[0]))
    if person is None:
        return
    person.phone = DEMO_PHONE
    person.sms_consent = True
    person.timezone = "Europe/London"
    record = db.session.scalar(select(ConsentRecord).where(ConsentRecord.user_id == person.user_id)
                               .order_by(ConsentRecord.agreed_at.desc()).limit(1))
    if record is not None:
        record.sms_consent = True
    db.session.flush()
