"""Screening on the three channels, the recorder's queue items and risk alerts, the
escalation chain with an injected clock, acknowledging/resolving and the adverse-events
list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import clock, screening
from core.audit import AuditEntry
from core.extensions import db
from core.notifications import Notification
from core.roles import Role
from moderation import alerts
from moderation.models import (
    LEVEL_ALL,
    LEVEL_NEXT,
    LEVEL_ON_CALL,
    AppendOnlyError,
    ModerationLog,
    QueueItem,
    RiskAlert,
)
from modules.models import JournalEntry
from tests.factories import make_participant, make_staff

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
RISK = "I want to kill myself tonight"


@pytest.fixture
def ctx(app):
    clock.set_time(NOW)
    with app.app_context():
        yield


def clinicians_on_rota(count: int = 3) -> list:
    admin = make_staff(Role.ADMIN)
    people = [make_staff(Role.CLINICIAN, f"clin{i}@example.org", name=f"Dr {i}")
              for i in range(count)]
    for person in people:
        alerts.add_to_rota(person, phone=None, actor=admin)
    db.session.commit()
    return people


def risk_alert_notifications(user) -> int:
    return db.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user.id, Notification.kind == "risk_alert"))


def post_risk(participant, content_id: int = 41, text: str = RISK):
    verdict = screening.screen(text, channel="forum_post", author=participant.user)
    screening.screened(verdict, channel="forum_post", content_id=content_id,
                       author=participant.user)
    db.session.commit()
    return verdict


# --------------------------------------------------------------------------- channels


def test_forum_risk_is_held_queued_and_alerted(ctx):
    """A risky post is held, queued for clinicians only, and alerts the on-call clinician."""
    first, second, _third = clinicians_on_rota()
    person = make_participant()
    verdict = post_risk(person)
    assert (verdict.action, verdict.is_risk, verdict.category) == ("hold", True, "self_harm")
    assert alerts.author_message(verdict) == alerts.AUTHOR_MESSAGE
    item = db.session.scalar(select(QueueItem))
    assert (item.content_type, item.content_id, item.status) == ("forum_post", 41, "open")
    assert item.clinician_only and item.is_risk and item.participant_id == person.id
    alert = db.session.scalar(select(RiskAlert))
    assert alert.assigned_to_id == first.id and alert.level == LEVEL_ON_CALL
    assert alert.deadline_at == NOW + timedelta(minutes=60)
    assert risk_alert_notifications(first) == 1 and risk_alert_notifications(second) == 0
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "risk_alert.opened" in actions and "moderation.item_opened" in actions


def test_forum_flag_and_block_paths(ctx):
    """A flag queues a visible item; a block leaves nothing; plain text nothing either."""
    person = make_participant()
    flagged = screening.screen("I feel so hopeless lately", channel="forum_comment",
                               author=person.user)
    assert flagged.action == "flag" and flagged.publishes and not flagged.is_risk
    screening.screened(flagged, channel="forum_comment", content_id=7, author=person.user)
    blocked = screening.screen("text me on 07700 900123", channel="forum_post",
                               author=person.user)
    assert blocked.action == "block" and "phone numbers" in blocked.message
    fine = screening.screen("lovely walk today", channel="forum_post", author=person.user)
    screening.screened(fine, channel="forum_post", content_id=8, author=person.user)
    db.session.commit()
    items = db.session.scalars(select(QueueItem)).all()
    assert [(i.content_type, i.action, i.clinician_only) for i in items] == [
        ("forum_comment", "flag", False)]
    assert db.session.scalar(select(func.count(RiskAlert.id))) == 0


def test_staff_text_is_not_screened(ctx):
    clinician = make_staff(Role.CLINICIAN)
    verdict = screening.screen("If you want to kill yourself, call 116 123",
                               channel="forum_post", author=clinician)
    assert verdict == screening.PUBLISH


def test_reflection_is_flagged_for_clinicians_only(ctx):
    """A journal reflection with risk words is flagged (never held) for clinicians."""
    clinicians_on_rota(1)
    person = make_participant()
    entry = JournalEntry(participant_id=person.id, body="honestly I wanna die", created_at=NOW,
                         updated_at=NOW)
    db.session.add(entry)
    db.session.flush()
    from moderation.screening.screener import screen_reflection

    screen_reflection(entry)
    db.session.commit()
    assert entry.screening == "flagged"
    item = db.session.scalar(select(QueueItem))
    assert (item.channel, item.content_type, item.action) == ("reflection", "journal_entry",
                                                               "flag")
    assert item.clinician_only and db.session.scalar(select(RiskAlert.channel)) == "reflection"


def test_clear_reflection_and_non_risk_words_in_private_channels(ctx):
    person = make_participant()
    entry = JournalEntry(participant_id=person.id, body="Nobody likes you, click here",
                         created_at=NOW, updated_at=NOW)
    db.session.add(entry)
    db.session.flush()
    from moderation.screening.screener import screen_reflection

    screen_reflection(entry)
    assert entry.screening == "clear"
    assert db.session.scalar(select(func.count(QueueItem.id))) == 0


def test_sms_risk_alerts_without_holding_and_texts_crisis_resources(ctx):
    """An SMS reply cannot be held: risk is flagged, alerted, and crisis text queued."""
    from core.sms import SmsMessage

    clinicians_on_rota(1)
    person = make_participant()
    person.phone, person.sms_consent = "+447700900123", True
    db.session.commit()
    verdict = screening.screen("dont want to be alive anymore", channel="sms",
                               author=person.user)
    assert (verdict.action, verdict.is_risk) == ("flag", True)
    screening.screened(verdict, channel="sms", content_id=5, author=person.user)
    screening.screened(verdict, channel="sms", content_id=5, author=person.user)
    db.session.commit()
    assert db.session.scalar(select(func.count(RiskAlert.id))) == 1
    texts = db.session.scalars(select(SmsMessage).where(SmsMessage.purpose == "help")).all()
    assert len(texts) == 1 and "116 123" in texts[0].body


# --------------------------------------------------------------------------- escalation


def test_escalation_chain_on_call_then_next_then_all(ctx):
    """Unacknowledged: on-call -> next on the rota -> all clinicians, each notified once."""
    first, second, third = clinicians_on_rota()
    post_risk(make_participant())
    alert = db.session.scalar(select(RiskAlert))
    clock.set_time(NOW + timedelta(minutes=59))
    assert alerts.escalate_due() == 0
    clock.set_time(NOW + timedelta(minutes=60))
    assert alerts.escalate_due() == 1
    db.session.commit()
    assert (alert.level, alert.assigned_to_id) == (LEVEL_NEXT, second.id)
    assert alert.deadline_at == NOW + timedelta(minutes=120)
    assert alerts.escalate_due() == 0  # the same minute again: nothing more
    clock.set_time(NOW + timedelta(minutes=121))
    assert alerts.escalate_due() == 1
    db.session.commit()
    assert (alert.level, alert.assigned_to_id, alert.deadline_at) == (LEVEL_ALL, None, None)
    clock.set_time(NOW + timedelta(hours=5))
    assert alerts.escalate_due() == 0
    assert [risk_alert_notifications(u) for u in (first, second, third)] == [2, 2, 1]
    steps = db.session.scalars(select(ModerationLog.action).where(
        ModerationLog.action == "alert.escalated")).all()
    assert len(steps) == 2


def test_escalation_job_runs_in_its_own_transaction(app):
    from core.scheduler import JOBS, run_job

    clock.set_time(NOW)
    with app.app_context():
        clinicians_on_rota(2)
        post_risk(make_participant())
    clock.set_time(NOW + timedelta(minutes=61))
    job = next(j for j in JOBS if j.id == "moderation.escalate")
    assert run_job(app, job) == 1
    assert run_job(app, job) == 0
    with app.app_context():
        assert db.session.scalar(select(RiskAlert.level)) == LEVEL_NEXT


def test_acknowledging_stops_escalation(ctx):
    first, second, _ = clinicians_on_rota()
    post_risk(make_participant())
    alert = db.session.scalar(select(RiskAlert))
    assert alerts.acknowledge(alert, actor=second) is True
    assert alerts.acknowledge(alert, actor=first) is False
    db.session.commit()
    clock.set_time(NOW + timedelta(hours=3))
    assert alerts.escalate_due() == 0
    assert alert.acknowledged_by_id == second.id and alert.assigned_to_id == second.id
    assert risk_alert_notifications(second) == 0


def test_empty_rota_alerts_all_clinicians_at_once(ctx):
    people = [make_staff(Role.CLINICIAN, f"c{i}@example.org") for i in range(2)]
    disabled = make_staff(Role.CLINICIAN, "off@example.org")
    disabled.is_enabled = False
    post_risk(make_participant())
    alert = db.session.scalar(select(RiskAlert))
    assert alert.level == LEVEL_ALL and alert.deadline_at is None
    assert [risk_alert_notifications(u) for u in people] == [1, 1]
    assert risk_alert_notifications(disabled) == 0


def test_take_on_call_and_deadline_setting(ctx):
    first, second, _ = clinicians_on_rota()
    entry = next(e for e in alerts.rota() if e.user_id == second.id)
    alerts.move(entry, "top", actor=second)
    alerts.set_deadline_minutes(15, actor=second)
    db.session.commit()
    assert alerts.on_call().user_id == second.id
    post_risk(make_participant())
    alert = db.session.scalar(select(RiskAlert))
    assert alert.assigned_to_id == second.id
    assert alert.deadline_at == NOW + timedelta(minutes=15)
    with pytest.raises(alerts.AlertError):
        alerts.set_deadline_minutes(1, actor=second)


def test_one_open_alert_per_content(ctx):
    clinicians_on_rota(1)
    person = make_participant()
    post_risk(person, content_id=3)
    post_risk(person, content_id=3)
    assert db.session.scalar(select(func.count(RiskAlert.id))) == 1
    post_risk(person, content_id=4)
    assert db.session.scalar(select(func.count(RiskAlert.id))) == 2


# --------------------------------------------------------------------------- resolving


def test_resolve_records_what_was_done_and_lists_adverse_events(ctx):
    first, *_ = clinicians_on_rota()
    person = make_participant(code="T-0042")
    post_risk(person)
    alert = db.session.scalar(select(RiskAlert))
    with pytest.raises(alerts.AlertError):
        alerts.resolve(alert, actor=first, actions=[], note=None, adverse_event=False)
    with pytest.raises(alerts.AlertError):
        alerts.resolve(alert, actor=first, actions=["no_action_needed", "emergency_services"],
                       note=None, adverse_event=False)
    with pytest.raises(alerts.AlertError):
        alerts.resolve(alert, actor=first, actions=["made_up"], note=None, adverse_event=False)
    clock.set_time(NOW + timedelta(minutes=20))
    alerts.resolve(alert, actor=first, actions=["safety_plan_reviewed", "contacted_participant"],
                   note="Spoke on the phone; safe tonight.", adverse_event=True)
    db.session.commit()
    assert alert.status == "resolved" and alert.acknowledged_by_id == first.id
    assert alert.actions_taken == ["contacted_participant", "safety_plan_reviewed"]
    rows = alerts.adverse_events()
    assert [(r.study_code, r.opened_on, r.actions) for r in rows] == [
        ("T-0042", NOW.date(), ("contacted_participant", "safety_plan_reviewed"))]
    resolved = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "risk_alert.resolved"))
    assert "Spoke" not in str(resolved.detail)


def test_peer_moderator_cannot_respond(ctx):
    clinicians_on_rota(1)
    peer = make_staff(Role.PEER_MODERATOR)
    post_risk(make_participant())
    alert = db.session.scalar(select(RiskAlert))
    with pytest.raises(alerts.AlertError):
        alerts.acknowledge(alert, actor=peer)
    with pytest.raises(alerts.AlertError):
        alerts.alerts_for(peer)


def test_moderation_log_is_append_only(ctx):
    clinicians_on_rota(1)
    post_risk(make_participant())
    entry = db.session.scalar(select(ModerationLog))
    entry.action = "changed"
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.scalar(select(ModerationLog)))
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
