"""Two moderators act on the same queue item at the same moment: exactly one succeeds,
the other learns who handled it, and nothing of the losing action remains."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from core import clock
from core.audit import AuditEntry, verify_chain
from core.extensions import db
from core.models import User
from core.roles import Role
from forum import reports, services
from forum.models import Post, Report
from moderation import queue
from moderation.models import ModerationLog, QueueItem
from tests.factories import make_participant, make_staff, make_study


@pytest.mark.postgres_only
def test_simultaneous_hide_and_approve_have_one_winner(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip(reason="concurrency is tested on PostgreSQL")
        clock.set_time(datetime(2026, 5, 4, 10, 0, tzinfo=UTC))
        study = make_study()
        author = make_participant(study, "T-0001", name="Quiet Harbour").user
        reader = make_participant(study, "T-0002", name="Bright Meadow").user
        hider = make_staff(Role.PEER_MODERATOR, "kit@example.org", name="Kit").id
        approver = make_staff(Role.PEER_MODERATOR, "lee@example.org", name="Lee").id
        post = services.create_post(author, kind="post", body="Nobody reads your posts.").item
        reports.report(post, actor=reader, reason="unkind")
        queue.sync_reports()
        db.session.commit()
        item_id = db.session.scalar(select(QueueItem.id))
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[int, str] = {}

    def act(user_id: int) -> None:
        with app.app_context():
            actor = db.session.get(User, user_id)
            item = db.session.get(QueueItem, item_id)
            queue.entry_for(item, actor)  # both have loaded the page
            barrier.wait()
            try:
                if user_id == hider:
                    queue.hide(item, actor=actor, version=1, reason="unkind")
                else:
                    queue.approve(item, actor=actor, version=1)
                db.session.commit()
                outcomes[user_id] = "won"
            except StaleDataError:
                db.session.rollback()
                outcomes[user_id] = str(queue.last_handler(item_id))
            except queue.AlreadyHandled as exc:  # the winner committed before the check
                db.session.rollback()
                outcomes[user_id] = str(exc)

    threads = [threading.Thread(target=act, args=(uid,)) for uid in (hider, approver)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == sorted([hider, approver])
    winner = next(uid for uid, result in outcomes.items() if result == "won")
    loser = approver if winner == hider else hider
    with app.app_context():
        winner_name = db.session.get(User, winner).name
        assert outcomes[loser].startswith(f"Already handled by {winner_name} at ")
        item = db.session.get(QueueItem, item_id)
        assert item.handled_by_id == winner and item.version == 2
        assert item.status == ("hidden" if winner == hider else "approved")
        post = db.session.scalar(select(Post))
        assert (post.hidden_at is not None) == (winner == hider)
        assert db.session.scalar(select(Report)).resolved_by_id == winner
        acted = db.session.scalars(select(ModerationLog).where(
            ModerationLog.actor_id.is_not(None), ModerationLog.item_id == item_id)).all()
        assert [row.actor_id for row in acted] == [winner]
        assert not db.session.scalars(select(AuditEntry).where(
            AuditEntry.actor_id == loser)).all()
        assert verify_chain().ok
