"""``core.changes``: each write moves the version numbers of what it can change, in the
writing transaction, and nothing else."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update

from core import changes
from core.clock import utcnow
from core.events import ActivityEvent
from core.extensions import db
from core.models import LoginAttempt, Participant, User, UserSession
from core.roles import Role
from core.sms.models import SmsMessage
from forum import services as forum
from modules import mood
from modules.models import MoodEntry
from tests.factories import make_consent, make_participant, make_staff, make_study
from tests.modules.content_rows import make_module


@pytest.fixture
def people(app) -> dict[str, Any]:
    with app.app_context():
        study = make_study()
        make_consent()
        staff = make_staff(Role.CLINICIAN, "clin@example.org")
        me = make_participant(study, "T-0001", arm="guided")
        other = make_participant(study, "T-0002", name="Bright Lantern", arm="guided")
        db.session.commit()
        return {"me": me.id, "other": other.id, "staff": staff.id}


def versions() -> dict[str, int]:
    """Every participant's data version and every counter, by name."""
    db.session.expire_all()
    found = {f"p{pid}": version for pid, version in db.session.execute(
        select(Participant.id, Participant.data_version))}
    found |= {name: value for name, value in db.session.execute(
        select(changes.ChangeCounter.name, changes.ChangeCounter.value))}
    return found


def moved(before: dict[str, int]) -> set[str]:
    after = versions()
    return {name for name in after if after[name] != before.get(name, 0)}


def test_a_participants_own_write_moves_only_their_version(app, people):
    with app.app_context():
        before = versions()
        mood.log_mood(db.session.get(Participant, people["me"]), 3)
        db.session.commit()
        assert moved(before) == {f"p{people['me']}"}


def test_a_forum_post_moves_the_forum_counter_and_its_author(app, people):
    with app.app_context():
        before = versions()
        author = db.session.get(User, db.session.get(Participant, people["other"]).user_id)
        forum.create_post(author, kind="post", body="Hello all")
        db.session.commit()
        assert moved(before) == {"forum", f"p{people['other']}"}


def test_content_and_staff_accounts_move_the_epoch(app, people):
    with app.app_context():
        before = versions()
        make_module("first-steps")
        db.session.commit()
        assert moved(before) == {"epoch"}
        before = versions()
        db.session.get(User, people["staff"]).display_name = "Dr Rivers"
        db.session.commit()
        assert moved(before) == {"epoch", "forum"}


def test_sessions_sign_in_attempts_and_reads_move_nothing(app, people):
    with app.app_context():
        user_id = db.session.get(Participant, people["me"]).user_id
        db.session.add(UserSession(id="x" * 64, user_id=user_id))
        db.session.add(LoginAttempt(account_key="someone", ip_hash="h" * 64))
        db.session.commit()
        before = versions()
        db.session.get(UserSession, "x" * 64).last_seen_at = utcnow() + timedelta(minutes=2)
        db.session.execute(delete(LoginAttempt))
        db.session.execute(text("SELECT 1"))
        db.session.commit()
        assert moved(before) == set()


def test_a_bulk_statement_moves_the_epoch(app, people):
    with app.app_context():
        before = versions()
        db.session.execute(update(SmsMessage).values(status="sent"))
        db.session.commit()
        assert moved(before) == {"epoch"}


def test_a_rolled_back_write_moves_nothing(app, people):
    with app.app_context():
        before = versions()
        mood.log_mood(db.session.get(Participant, people["me"]), 3)
        db.session.flush()
        db.session.rollback()
        assert moved(before) == set()


def test_a_write_about_many_people_moves_the_epoch_instead(app, people, monkeypatch):
    monkeypatch.setattr(changes, "MANY_PEOPLE", 1)
    with app.app_context():
        before = versions()
        db.session.add_all([MoodEntry(participant_id=pid, local_date=utcnow().date(), score=4)
                            for pid in (people["me"], people["other"])])
        db.session.commit()  # one flush about two people
        assert moved(before) == {"epoch"}


@pytest.mark.postgres_only
def test_two_transactions_about_the_same_people_in_opposite_orders_both_commit(app, people):
    """Each writes about one person and then the other, and both have flushed before
    either commits. Were the versions moved at each flush, each would hold one person's
    row and wait for the other's: a deadlock. They move at COMMIT, in id order."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip(reason="row locks are tested on PostgreSQL")
        before = versions()
    both_flushed = threading.Barrier(2, timeout=10)
    failures: list[BaseException] = []

    def write(first: int, second: int) -> None:
        try:
            with app.app_context():
                for pid in (first, second):
                    db.session.add(ActivityEvent(participant_id=pid, kind="login"))
                    db.session.flush()
                both_flushed.wait()
                db.session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=order)
               for order in ((people["me"], people["other"]), (people["other"], people["me"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert failures == []
    with app.app_context():
        after = versions()
    for pid in (people["me"], people["other"]):
        assert after[f"p{pid}"] == before[f"p{pid}"] + 2


def test_signing_in_moves_nothing_but_a_new_name_does(app, people):
    """The last sign-in time and a new password show on no cached page; a display name
    shows in the forum and beside the person's own pages."""
    with app.app_context():
        before = versions()
        user = db.session.get(User, db.session.get(Participant, people["me"]).user_id)
        user.last_login_at = utcnow()
        user.mfa_last_step = 12345
        db.session.commit()
        assert moved(before) == set()
        user.display_name = "Calm River"
        db.session.commit()
        assert moved(before) == {"forum", f"p{people['me']}"}
