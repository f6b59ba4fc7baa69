"""Risk-alert texts to clinicians: the registered texter writes a staff outbox row (no
participant, the rota phone, purpose staff_alert, a dedupe key) for each alert step, the
text never carries the participant's words, and nothing is logged with a number."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock, screening
from core.extensions import db
from core.roles import Role
from core.sms import SmsMessage
from moderation import alerts, staff_sms
from moderation.models import ModerationLog, RiskAlert
from tests.factories import make_participant, make_staff

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
RISK = "I want to kill myself tonight, my name is Sam"
FIRST_PHONE = "+447400123501"
SECOND_PHONE = "+447400123502"


@pytest.fixture(autouse=True)
def _texter() -> Iterator[None]:
    """The texter registered as moderation registers it, and the registry restored."""
    saved = list(alerts.STAFF_TEXTERS)
    staff_sms.register()
    yield
    alerts.STAFF_TEXTERS[:] = saved


@pytest.fixture
def ctx(app):
    clock.set_time(NOW)
    with app.app_context():
        yield
    clock.set_time(None)


def rota(*phones: str | None) -> list:
    admin = make_staff(Role.ADMIN)
    people = []
    for number, phone in enumerate(phones, start=1):
        person = make_staff(Role.CLINICIAN, f"clin{number}@example.org", name=f"Dr {number}")
        alerts.add_to_rota(person, phone=phone, actor=admin)
        people.append(person)
    db.session.commit()
    return people


def post_risk(content_id: int = 41) -> RiskAlert:
    participant = make_participant()
    verdict = screening.screen(RISK, channel="forum_post", author=participant.user)
    screening.screened(verdict, channel="forum_post", content_id=content_id,
                       author=participant.user)
    db.session.commit()
    return db.session.scalar(select(RiskAlert))


def staff_texts() -> list[SmsMessage]:
    return list(db.session.scalars(select(SmsMessage).where(SmsMessage.purpose == "staff_alert")
                                   .order_by(SmsMessage.id)))


def test_register_is_idempotent():
    staff_sms.register()
    staff_sms.register()
    assert alerts.STAFF_TEXTERS.count(staff_sms.text_staff) == 1


def test_on_call_clinician_with_a_phone_gets_a_queued_text(ctx):
    rota(FIRST_PHONE, SECOND_PHONE)
    alert = post_risk()
    [text] = staff_texts()
    assert (text.participant_id, text.phone, text.status, text.direction) == (
        None, FIRST_PHONE, "pending", "out")
    assert text.dedupe_key == f"risk_alert:{alert.id}:{alert.level}:{FIRST_PHONE}"
    assert staff_sms.is_safe(text.body) and f"#{alert.id}" in text.body
    step = db.session.scalar(select(ModerationLog).where(ModerationLog.action == "alert.notified"))
    assert step.detail["via"] == ["app", "sms"]


def test_the_text_never_carries_the_participants_words(ctx):
    rota(FIRST_PHONE)
    post_risk()
    [text] = staff_texts()
    for word in ("kill", "myself", "Sam", "T-0001", "Quiet Harbour"):
        assert word not in text.body


def test_clinician_without_a_phone_is_told_in_the_app_only(ctx):
    rota(None)
    post_risk()
    assert staff_texts() == []
    step = db.session.scalar(select(ModerationLog).where(ModerationLog.action == "alert.notified"))
    assert step.detail["via"] == ["app"]


def test_each_escalation_step_texts_once(ctx):
    """At the deadline the next clinician is texted; re-running the job adds nothing;
    the last step texts everyone on the rota who has a phone."""
    rota(FIRST_PHONE, SECOND_PHONE)
    alert = post_risk()
    alerts.escalate_due(now=NOW + timedelta(minutes=61))
    db.session.commit()
    alerts.escalate_due(now=NOW + timedelta(minutes=61))
    db.session.commit()
    assert [t.phone for t in staff_texts()] == [FIRST_PHONE, SECOND_PHONE]
    alerts.escalate_due(now=NOW + timedelta(minutes=200))
    db.session.commit()
    texts = staff_texts()
    assert sorted(t.phone for t in texts[2:]) == [FIRST_PHONE, SECOND_PHONE]
    assert len({t.dedupe_key for t in texts}) == len(texts) == 4
    assert db.session.get(RiskAlert, alert.id).level == alerts.LEVEL_ALL


def test_the_same_step_twice_is_one_text(ctx):
    assert staff_sms.text_staff(FIRST_PHONE, staff_sms.alert_text(7, NOW), "k:1")
    assert staff_sms.text_staff(FIRST_PHONE, staff_sms.alert_text(7, NOW), "k:1")
    db.session.commit()
    assert len(staff_texts()) == 1


def test_alert_text_wording():
    assert staff_sms.alert_text(12, datetime(2026, 5, 4, 14, 5, tzinfo=UTC)) == (
        "Kinship: risk alert #12 needs you by 14:05 UTC. Open the app.")
    assert staff_sms.alert_text(12, None) == "Kinship: risk alert #12 needs you now. Open the app."
    assert staff_sms.is_safe(staff_sms.alert_text(12, None))


@pytest.mark.parametrize("body", [
    "Kinship: risk alert #12 needs you now. Open the app. She said: I want to die",
    "I want to kill myself",
    "",
    "Kinship: risk alert #12 needs you now.\nOpen the app.",
])
def test_any_other_body_is_refused(ctx, body):
    assert staff_sms.text_staff(FIRST_PHONE, body, "k:2") is False
    assert staff_texts() == []


@pytest.mark.parametrize("phone", ["07400123501", "not a number", "+0123", ""])
def test_a_number_not_in_e164_is_refused(ctx, phone):
    assert staff_sms.text_staff(phone, staff_sms.alert_text(1, None), "k:3") is False
    assert staff_texts() == []


def test_nothing_is_logged_with_the_number_or_the_words(ctx, caplog):
    caplog.set_level(logging.DEBUG)
    rota(FIRST_PHONE)
    post_risk()
    staff_sms.text_staff("+15551234", "leak I want to die", "k:4")
    assert staff_texts()
    assert FIRST_PHONE not in caplog.text and "123501" not in caplog.text
    assert "kill myself" not in caplog.text and "want to die" not in caplog.text
