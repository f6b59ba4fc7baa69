"""Tried as a new user would: the demo participant's prompt reaches the developer SMS
inbox at its planned local time, the reply is parsed, stored, acknowledged and shown on
the moderator's page."""

from __future__ import annotations

import re

from sqlalchemy import select

from core import clock
from core.extensions import db
from core.models import Participant
from core.sms.models import SmsMessage
from outcomes.demo import DEMO_PARTICIPANT, DEMO_PASSWORD
from outcomes.models import Study
from outcomes.prompts import protocol
from outcomes.prompts.demo import DEMO_PHONE, seed_demo_protocol
from outcomes.prompts.models import PromptReply
from tests.outcomes.prompts.helpers import at


def demo_texts(pid: int) -> list[SmsMessage]:
    return list(db.session.scalars(select(SmsMessage).where(SmsMessage.participant_id == pid)
                                   .order_by(SmsMessage.id)))


def test_the_demo_prompt_arrives_and_the_reply_shows_on_the_moderator_page(app, client, runner,
                                                                           auth):
    clock.set_time(at(2026, 11, 22, 12, 0))
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with app.app_context():
        study = db.session.scalar(select(Study))
        seed_demo_protocol(study)
        seed_demo_protocol(study)  # twice changes nothing
        db.session.commit()
        assert len(protocol.versions_of(study)) == 1
        person = db.session.scalar(select(Participant).where(
            Participant.study_code == DEMO_PARTICIPANT[0]))
        pid = person.id
        assert (person.phone, person.sms_consent) == (DEMO_PHONE, True)

    result = runner.invoke(args=["sms", "tick", "--at", "2026-12-01 08:59"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert [m.status for m in demo_texts(pid)] == ["pending"]  # planned, not yet due

    result = runner.invoke(args=["sms", "tick", "--at", "2026-12-01 09:00"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        (prompt,) = demo_texts(pid)
        assert (prompt.purpose, prompt.status) == ("prompt", "delivered")
        assert prompt.sent_at == at(2026, 12, 1, 9, 0)  # 09:00 in London

    clock.set_time(at(2026, 12, 1, 9, 20))
    auth.login("peer@demo.kinship.test", DEMO_PASSWORD)
    inbox = client.get("/sms/dev").get_data(as_text=True)
    assert "How lonely did you feel today?" in inbox
    response = client.post(f"/sms/dev/{pid}/reply", data={f"p{pid}-body": "about a 3 I think"})
    assert response.status_code == 302

    with app.app_context():
        (answer,) = db.session.scalars(select(PromptReply)).all()
        assert (answer.status, answer.value, answer.latency_seconds) == ("answered", 3, 1200)
        purposes = [(m.direction, m.purpose, m.status) for m in demo_texts(pid)]
        assert purposes == [("out", "prompt", "delivered"), ("in", "inbound", "received"),
                            ("out", "reply", "delivered")]
        assert demo_texts(pid)[-1].body.startswith("Thanks. Good to hear.")

    page = client.get(f"/moderation/participants/{pid}").get_data(as_text=True)
    section = page[page.index("SMS answers"):]
    assert re.search(r"Loneliness today \(0-10\)</td><td>3</td>", section)
    assert "answered" in section
