"""Two clinicians take the same risk alert at the same moment: exactly one succeeds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from core import clock, screening
from core.extensions import db
from core.models import User
from core.roles import Role
from moderation import alerts
from moderation.models import ModerationLog, RiskAlert
from tests.factories import make_participant, make_staff


@pytest.mark.postgres_only
def test_simultaneous_acknowledgements_have_one_winner(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip(reason="concurrency is tested on PostgreSQL")
        clock.set_time(datetime(2026, 5, 4, 10, 0, tzinfo=UTC))
        ids = [make_staff(Role.CLINICIAN, f"c{i}@example.org").id for i in range(2)]
        author = make_participant().user
        verdict = screening.screen("I want to end my life", channel="forum_post", author=author)
        screening.screened(verdict, channel="forum_post", content_id=1, author=author)
        db.session.commit()
        alert_id = db.session.scalar(select(RiskAlert.id))
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[object] = []

    def take(user_id: int) -> None:
        with app.app_context():
            actor = db.session.get(User, user_id)
            alert = db.session.get(RiskAlert, alert_id)
            barrier.wait()
            try:
                outcomes.append(alerts.acknowledge(alert, actor=actor))
                db.session.commit()
            except StaleDataError:
                db.session.rollback()
                outcomes.append("stale")

    threads = [threading.Thread(target=take, args=(uid,)) for uid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(map(str, outcomes)) == ["True", "stale"]
    with app.app_context():
        taken = db.session.scalars(select(ModerationLog).where(
            ModerationLog.action == "alert.acknowledged")).all()
        assert len(taken) == 1
        assert db.session.get(RiskAlert, alert_id).acknowledged_by_id == taken[0].actor_id
