"""Shared set-up for the prompt tests: a study with the default protocol, a randomised
participant with a phone, and a reply posted to the real webhook, signed as Twilio signs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from core import clock
from core.extensions import db
from core.models import Participant
from core.roles import Role
from core.sms import signatures
from core.sms.dispatch import dispatch
from core.sms.models import SmsMessage
from outcomes.prompts import protocol, services
from tests.factories import make_participant, make_staff, make_study

PHONE = "+447700900123"
INBOUND = "/sms/twilio/inbound"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def setup_trial(*, arm: str = "guided", code: str = "T-0001", phone: str = PHONE,
                timezone: str = "Europe/London") -> dict[str, int]:
    """Call in an app context. A study with the default protocol and one active
    participant randomised on 20 November 2026. Returns ids."""
    study = db.session.scalar(select(protocol.SmsProtocolVersion.study_id).limit(1))
    if study is None:
        study_row = make_study(contact="Study team: 01234 567890, weekdays.")
        researcher = make_staff(Role.RESEARCHER, "researcher@example.org")
        protocol.apply_protocol(study_row, protocol.default_data(), actor=researcher)
        db.session.commit()
    else:
        from outcomes.models import Study
        study_row = db.session.get(Study, study)
    person = make_participant(study_row, code, arm=arm, name=f"Person {code}")
    person.status = "active"
    person.enrolled_at = at(2026, 11, 18, 12)  # fixed, so no test depends on today
    person.randomised_at = at(2026, 11, 20, 12)
    person.phone = phone
    person.sms_consent = True
    person.timezone = timezone
    db.session.commit()
    return {"study": study_row.id, "participant": person.id}


def plan(when: datetime) -> dict[str, int]:
    clock.set_time(when)
    counts = services.plan_due()
    db.session.commit()
    return counts


def send_due(when: datetime) -> None:
    clock.set_time(when)
    dispatch()
    db.session.commit()


def reply(app, client, body: str, when: datetime, phone: str = PHONE) -> int:
    """Text ``body`` from ``phone`` at ``when`` through the signed webhook."""
    clock.set_time(when)
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32,
              "From": phone, "To": "+15005550006", "Body": body, "NumMedia": "0"}
    with app.app_context():
        signature = signatures.sign(signatures.public_url(INBOUND), params)
    return client.post(INBOUND, data=params, headers={signatures.HEADER: signature}).status_code


def outbox(participant_id: int, purpose: str | None = None) -> list[SmsMessage]:
    query = select(SmsMessage).where(SmsMessage.participant_id == participant_id,
                                     SmsMessage.direction == "out").order_by(SmsMessage.id)
    if purpose:
        query = query.where(SmsMessage.purpose == purpose)
    return list(db.session.scalars(query))


def participant(pid: int) -> Participant:
    return db.session.get(Participant, pid)
