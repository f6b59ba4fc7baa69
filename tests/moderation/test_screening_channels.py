"""Screening end to end through the real pages: a journal reflection with risk words
goes to the crisis page, opens an alert, and only a clinician can read it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from core import clock
from core.audit import AuditEntry
from core.extensions import db
from core.notifications import Notification
from core.roles import Role
from moderation.models import QueueItem, RiskAlert
from modules.models import JournalEntry
from tests.factories import make_participant, make_staff
from tests.modules.content_rows import make_module, make_pathway, steps_of

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
WORDS = "Some nights I think everyone would be better off without me."


def reflect_url(app) -> str:
    with app.app_context():
        module = make_module("first-steps", pathway=make_pathway("foundations"), position=1)
        step = next(s for s in steps_of(module) if s.kind == "reflect")
        make_participant(code="T-0001", arm="guided")
        make_staff(Role.CLINICIAN, "clinician@example.org", name="Dr Okafor")
        make_staff(Role.PEER_MODERATOR, "peer@example.org", name="Kit")
        db.session.commit()
        return f"/modules/first-steps/{step.key}"


def test_risky_reflection_reaches_a_clinician_only(app, client, auth):
    clock.set_time(NOW)
    url = reflect_url(app)
    auth.login("T-0001")
    response = client.post(url, data={"body": WORDS})
    assert response.status_code == 302 and response.headers["Location"].endswith("/help")
    assert "a clinician" in client.get("/help").get_data(as_text=True).lower()
    with app.app_context():
        entry = db.session.scalar(select(JournalEntry))
        assert entry.screening == "flagged" and entry.body == WORDS
        item = db.session.scalar(select(QueueItem))
        assert item.clinician_only and item.content_id == entry.id
        alert_id = db.session.scalar(select(RiskAlert.id))
        # nothing the participant wrote reaches the audit log
        assert all("better off" not in str(a.detail)
                   for a in db.session.scalars(select(AuditEntry)))
    auth.logout()

    auth.login("peer@example.org")
    assert client.get(f"/moderation/alerts/{alert_id}").status_code == 403
    auth.logout()

    auth.login("clinician@example.org")
    page = client.get(f"/moderation/alerts/{alert_id}").get_data(as_text=True)
    assert "better off without me" in page and "T-0001" in page
    assert f"Risk alert #{alert_id}" in client.get("/notifications").get_data(as_text=True)
    with app.app_context():
        kinds = db.session.scalars(select(Notification.kind)).all()
    assert kinds == ["risk_alert"]  # the one clinician, once; the peer nothing


def test_ordinary_reflection_stays_private(app, client, auth):
    clock.set_time(NOW)
    url = reflect_url(app)
    auth.login("T-0001")
    response = client.post(url, data={"body": "I phoned my sister today. It helped."})
    assert not response.headers.get("Location", "").endswith("/help")
    with app.app_context():
        assert db.session.scalar(select(JournalEntry.screening)) == "clear"
        assert db.session.scalar(select(QueueItem)) is None
