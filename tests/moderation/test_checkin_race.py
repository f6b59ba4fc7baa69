"""Races on PostgreSQL: two job runs evaluating the same study at once open each task
once; two moderators completing the same task at once have exactly one winner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import clock
from core.audit import verify_chain
from core.events import record_event
from core.extensions import db
from core.models import User
from core.roles import Role
from moderation import checkins
from moderation.care_models import CheckInTask, ModeratorMessage
from outcomes.models import Study
from tests.factories import make_staff, make_study
from tests.moderation.checkin_data import PEER, add_ucla3, audits, randomised

NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)


def on_postgresql() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip(reason="concurrency is tested on PostgreSQL")


def race(app, work: Callable[[int], str], who: list[int]) -> dict[int, str]:
    """Run ``work(n)`` for each n in ``who`` in its own thread and app context, all
    starting together; returns what each one said."""
    barrier = threading.Barrier(len(who), timeout=30)
    results: dict[int, str] = {}

    def run(n: int) -> None:
        with app.app_context():
            clock.set_time(NOW)
            barrier.wait()
            results[n] = work(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in who]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.postgres_only
def test_two_simultaneous_runs_open_each_task_once(app):
    """It opens one task per participant and reason when two evaluations race; the
    other run counts them as already open."""
    with app.app_context():
        on_postgresql()
        clock.set_time(NOW)
        study = make_study()
        peer = make_staff(Role.PEER_MODERATOR, PEER, name="Kit")
        for n in range(12):
            person = randomised(study, f"R-{n:02d}", moderator=peer,
                                since=NOW - timedelta(days=60))
            record_event(person, "login", at=NOW - timedelta(days=10))
            add_ucla3(person, NOW - timedelta(days=1), 8)
        db.session.commit()
        study_id = study.id

    def evaluate(_n: int) -> str:
        report = checkins.evaluate(db.session.get(Study, study_id), NOW)
        db.session.commit()
        return f"{report.total_created}/{sum(report.already_open.values())}"

    results = race(app, evaluate, [1, 2])
    created = [int(r.split("/")[0]) for r in results.values()]
    skipped = [int(r.split("/")[1]) for r in results.values()]
    assert sum(created) == 24 and sum(skipped) == 24
    with app.app_context():
        rows = db.session.execute(select(CheckInTask.participant_id, CheckInTask.reason,
                                         func.count()).group_by(CheckInTask.participant_id,
                                                                CheckInTask.reason)).all()
        assert len(rows) == 24 and {count for *_, count in rows} == {1}
        assert len(audits("checkin.task_created")) == 24
        assert verify_chain().ok


@pytest.mark.postgres_only
def test_two_moderators_completing_at_once_have_one_winner(app):
    """It lets exactly one completion through; the other is told who completed it, and
    only the winner's message exists."""
    with app.app_context():
        on_postgresql()
        clock.set_time(NOW)
        study = make_study()
        kit = make_staff(Role.PEER_MODERATOR, PEER, name="Kit")
        patel = make_staff(Role.CLINICIAN, "clinician@example.org", name="Dr Patel")
        person = randomised(study, "T-0001", moderator=kit, since=NOW - timedelta(days=60))
        task = checkins.open_task(person, "inactive", due_at=NOW + timedelta(days=2))
        db.session.commit()
        task_id, names = task.id, {kit.id: "Kit", patel.id: "Dr Patel"}

    def complete(user_id: int) -> str:
        actor = db.session.get(User, user_id)
        task = db.session.get(CheckInTask, task_id)
        try:
            checkins.complete(task, checkins.Completion("in_app", "no_answer",
                                                        body=f"From {actor.name}"),
                              actor=actor, version=1)
            db.session.commit()
            return "won"
        except checkins.AlreadyClosed as exc:
            db.session.rollback()
            return str(exc)

    results = race(app, complete, list(names))
    winner = next(uid for uid, said in results.items() if said == "won")
    loser = next(uid for uid in names if uid != winner)
    assert results[loser].startswith(f"Already completed by {names[winner]} at ")
    with app.app_context():
        done = db.session.get(CheckInTask, task_id)
        assert (done.completed_by_id, done.version, done.status) == (winner, 2, "done")
        assert db.session.scalars(select(ModeratorMessage.body)).all() == [
            f"From {names[winner]}"]
        assert [e.actor_id for e in audits("checkin.task_completed")] == [winner]
        assert verify_chain().ok
