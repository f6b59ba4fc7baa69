"""The today, module and progress pages cost the same number of SQL queries whatever
the size of the library and of the participant's history (steps, events, badges,
moods, action plans, suggestions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from core import clock
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from modules import gamification, mood, services
from modules.models import Award, Module, Step
from tests.factories import make_participant, make_staff
from tests.modules.content_rows import make_module, make_pathway, steps_of

# what the page itself costs, not its cached copy (core.pagecache)
pytestmark = pytest.mark.usefixtures("uncached")

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
KINDS = ("read", "quiz", "action", "reflect", "read", "video", "checkpoint")
PAGES = ("/modules/today", "/modules/first-steps", "/modules/progress", "/modules/")


def statements_during(engine: Any, call: Any) -> list[str]:
    """The SQL statements ``call()`` sends (transaction control left out)."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE",
                                                      "COMMIT", "ROLLBACK")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return seen


def do(participant: Participant, step: Step, at: datetime) -> None:
    """What a participant does at a step, at a given time."""
    clock.set_time(at)
    if step.kind == "quiz":
        services.answer_quiz(participant, step, {0: [1], 1: [0, 2]})
    elif step.kind == "action":
        services.plan_action(participant, step)
    elif step.kind == "reflect":
        services.write_reflection(participant, step, "Someone at the bus stop smiled.")
    elif step.kind == "checkpoint":
        services.rate_checkpoint(participant, step, 4)
    else:
        services.complete_step(participant, step)


def history(participant: Participant, steps: list[Step], *, days: int, moods: int) -> None:
    """Spread ``steps`` over the last ``days`` days and log ``moods`` daily moods."""
    for index, step in enumerate(steps):
        do(participant, step, NOW - timedelta(days=days - index * days // max(len(steps), 1),
                                              hours=1))
    for day in range(moods):
        clock.set_time(NOW - timedelta(days=day, hours=2))
        mood.log_mood(participant, 1 + day % 5, "a note" if day % 3 else None)
    clock.set_time(NOW)


def suggest(participant: Participant, modules: list[Module], peer) -> None:
    for module in modules:
        services.suggest(participant, module, actor=peer, step=steps_of(module)[0],
                         note="Worth a look.")


def small_world() -> str:
    """One module of five steps; two done, an action due, one mood, one suggestion."""
    module = make_module("first-steps", pathway=make_pathway("foundations"),
                         kinds=("read", "action", "quiz", "reflect", "checkpoint"))
    peer = make_staff(Role.PEER_MODERATOR)
    participant = make_participant(code="T-0001", arm="guided")
    history(participant, steps_of(module)[:2], days=8, moods=1)
    suggest(participant, [module], peer)
    db.session.commit()
    return "T-0001"


def large_world() -> str:
    """Six modules in two pathways, 40 steps; a month of history with finished modules,
    passed quizzes, several due actions, daily moods, badges and suggestions."""
    first = db.session.scalar(select(Module).where(Module.key == "first-steps"))
    for step in ("first-steps-x1", "first-steps-x2", "first-steps-x3"):
        db.session.add(Step(key=step, module_id=first.id, position=10, kind="read",
                            title="More", body_html="<p>More.</p>", data={}))
    second_pathway = make_pathway("connecting", position=1)
    modules = [first] + [
        make_module(f"module-{n}", pathway=second_pathway, position=n, kinds=KINDS[:6 + n % 2])
        for n in range(5)]
    db.session.flush()
    assert sum(len(steps_of(m)) for m in modules) == 40
    peer = db.session.scalar(select(User).where(User.role == Role.PEER_MODERATOR))
    participant = make_participant(code="T-0002", name="Still Meadow", arm="guided")
    done = [s for m in modules[:4] for s in steps_of(m)][:-3]  # three modules and a bit
    history(participant, done, days=29, moods=28)
    suggest(participant, modules[2:5], peer)
    gamification.evaluate_badges(participant)
    db.session.commit()
    return "T-0002"


@pytest.fixture
def measure(app, client, auth):
    def run(code: str) -> dict[str, int]:
        assert auth.login(code).status_code == 302
        counts = {}
        with app.app_context():
            engine = db.engine
        for path in PAGES:
            assert client.get(path).status_code == 200  # warm up (settings, session)
            statements = statements_during(engine, lambda p=path: client.get(p))
            counts[path] = len(statements)
        auth.logout()
        return counts

    return run


def test_page_queries_do_not_grow_with_library_or_history(app, measure):
    clock.set_time(NOW)
    with app.app_context():
        small = small_world()
    small_counts = measure(small)
    with app.app_context():
        large = large_world()
        participant = db.session.scalar(select(Participant).where(
            Participant.study_code == large))
        badges = db.session.scalars(select(Award.key).where(
            Award.participant_id == participant.id, Award.kind == "badge")).all()
        assert len(badges) >= 4, badges
        assert len(services.due_action_checks(participant)) >= 3
    large_counts = measure(large)
    assert large_counts == small_counts
