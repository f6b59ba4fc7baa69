"""Progress through modules: steps, actions, reflections, checkpoints, the library, resume
and moderators' suggestions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.accounts import PermissionDenied
from core.audit import AuditEntry
from core.extensions import db
from core.models import Participant
from core.roles import Role
from modules import gamification, services
from modules.models import (
    ActionPlan,
    Award,
    CheckpointRating,
    JournalEntry,
    Module,
    StepProgress,
)
from modules.services import ModuleError
from tests.factories import make_participant, make_staff
from tests.modules.content_rows import (
    add_step,
    count_of,
    count_queries,
    events_of,
    make_module,
    make_pathway,
    step_of,
    steps_of,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def ctx(app):
    clock.set_time(NOW)
    with app.app_context():
        yield


def test_completing_a_step_twice_gives_points_once(ctx):
    """It completes a step once: one progress row, one event, the points once."""
    participant = make_participant(arm="guided")
    step = steps_of(make_module("reach-out"))[0]
    assert services.complete_step(participant, step) is True
    assert services.complete_step(participant, step) is False
    db.session.commit()
    assert count_of(StepProgress) == 1
    assert len(events_of(participant.id, "step_completed")) == 1
    [event] = events_of(participant.id, "step_completed")
    assert event.detail["step"] == step.key and event.detail["module"] == "reach-out"
    assert gamification.total_points(participant) == 10
    assert len(events_of(participant.id, "points_awarded")) == 1


def test_finishing_the_last_step_completes_the_module_once(ctx):
    """It records module_completed and gives the module's points once, when every
    active step is done, and not again on a repeat."""
    participant = make_participant(arm="guided")
    module = make_module("reach-out", kinds=("read", "read", "video"))
    add_step(module, "read", key="retired", active=False)
    first, second, third = steps_of(module)
    services.complete_step(participant, first)
    services.complete_step(participant, second)
    assert events_of(participant.id, "module_completed") == []
    services.complete_step(participant, third)
    services.complete_step(participant, third)
    db.session.commit()
    [event] = events_of(participant.id, "module_completed")
    assert event.detail == {"module": "reach-out", "module_id": module.id}
    assert gamification.total_points(participant) == 3 * 10 + 50


def test_a_finished_module_stays_finished_when_a_step_is_added(ctx):
    """It keeps a module completed (and the next module open) after new content arrives,
    and does not complete it a second time when the new step is done."""
    participant = make_participant(arm="guided")
    first = make_module("first", kinds=("read",))
    make_module("second", position=1, unlock={"after": "first"}, kinds=("read",))
    services.complete_step(participant, steps_of(first)[0])
    new = add_step(first, "read", key="first-new")
    cards = {card.module.key: card for card in services.library(participant)}
    assert cards["first"].completed and (cards["first"].steps_done, cards["first"].steps_total) \
        == (1, 2)
    assert cards["second"].unlocked
    services.complete_step(participant, new)
    assert len(events_of(participant.id, "module_completed")) == 1


def test_a_retired_step_cannot_be_completed(ctx):
    participant = make_participant(arm="guided")
    step = add_step(make_module("m", kinds=("read",)), "read", key="gone", active=False)
    with pytest.raises(ModuleError, match="no longer part"):
        services.complete_step(participant, step)


def test_complete_step_takes_an_explicit_time(ctx):
    participant = make_participant(arm="guided")
    step = steps_of(make_module("m"))[0]
    services.complete_step(participant, step, at=NOW - timedelta(hours=2))
    assert db.session.scalar(select(StepProgress.completed_at)) == NOW - timedelta(hours=2)
    assert events_of(participant.id, "step_completed")[0].at == NOW - timedelta(hours=2)


# --------------------------------------------------------------------------- actions


def test_planning_an_action_schedules_the_check_and_completes_the_step(ctx):
    """It makes one plan per step, due after check_after_days, and completes the step."""
    participant = make_participant(arm="guided")
    step = step_of(make_module("m"), "action")
    plan = services.plan_action(participant, step)
    assert services.plan_action(participant, step) is plan
    db.session.commit()
    assert plan.check_due_at == NOW + timedelta(days=3)
    assert count_of(ActionPlan) == 1
    assert len(events_of(participant.id, "action_planned")) == 1
    assert count_of(StepProgress) == 1
    assert gamification.total_points(participant) == 5 + 10


def test_due_action_checks_lists_due_unchecked_plans(ctx):
    """It lists a plan once its check is due, and not after it has been answered."""
    participant = make_participant(arm="guided")
    module = make_module("m", kinds=("action", "action"))
    early, late = steps_of(module)
    late.data = {"prompt": "Call someone.", "check_after_days": 5}
    first = services.plan_action(participant, early)
    second = services.plan_action(participant, late)
    assert services.due_action_checks(participant) == []
    clock.set_time(NOW + timedelta(days=5))
    assert services.due_action_checks(participant) == [first, second]
    services.check_action(participant, first, tried=True, rating=4)
    assert services.due_action_checks(participant) == [second]


def test_check_action_needs_a_rating_when_tried(ctx):
    """It asks for a 1-5 rating when the participant tried the action."""
    participant = make_participant(arm="guided")
    plan = services.plan_action(participant, step_of(make_module("m"), "action"))
    for rating in (None, 0, 6, True, "4"):
        with pytest.raises(ModuleError, match="from 1"):
            services.check_action(participant, plan, tried=True, rating=rating)  # type: ignore
    assert plan.checked_at is None and events_of(participant.id, "action_checked") == []


def test_check_action_records_the_answer_and_rewards_trying_once(ctx):
    """It records tried and rating, rewards trying once, ignores a repeat of the same
    answer and takes a changed answer."""
    participant = make_participant(arm="guided")
    step = step_of(make_module("m"), "action")
    plan = services.plan_action(participant, step)
    points = gamification.total_points(participant)
    services.check_action(participant, plan, tried=False, rating=3)
    assert (plan.tried, plan.rating) == (False, None)
    assert gamification.total_points(participant) == points
    services.check_action(participant, plan, tried=True, rating=4)
    services.check_action(participant, plan, tried=True, rating=4)
    services.check_action(participant, plan, tried=True, rating=5)
    db.session.commit()
    details = [e.detail for e in events_of(participant.id, "action_checked")]
    assert [(d["tried"], d["rating"]) for d in details] == [(False, None), (True, 4), (True, 5)]
    assert gamification.total_points(participant) == points + 30
    assert plan.rating == 5


def test_only_the_owner_can_check_a_plan(ctx):
    owner = make_participant(arm="guided")
    other = make_participant(code="T-0002", name="Other Person", arm="guided")
    plan = services.plan_action(owner, step_of(make_module("m"), "action"))
    with pytest.raises(PermissionDenied):
        services.check_action(other, plan, tried=True, rating=3)


def test_actions_need_an_action_step(ctx):
    participant = make_participant(arm="guided")
    with pytest.raises(ModuleError, match="not a action step"):
        services.plan_action(participant, step_of(make_module("m"), "read"))


# --------------------------------------------------------------------------- reflections


def test_reflection_is_saved_stripped_and_completes_the_step(ctx):
    participant = make_participant(arm="guided")
    step = step_of(make_module("m"), "reflect")
    entry = services.write_reflection(participant, step, "  I called my sister.  \n")
    db.session.commit()
    assert entry.body == "I called my sister."
    assert (entry.participant_id, entry.step_id) == (participant.id, step.id)
    assert count_of(StepProgress, StepProgress.step_id == step.id) == 1
    assert gamification.total_points(participant) == 10 + 10


def test_reflection_event_holds_no_text(ctx):
    """It keeps the participant's words out of the event spine."""
    participant = make_participant(arm="guided")
    step = step_of(make_module("m"), "reflect")
    entry = services.write_reflection(participant, step, "Secret words about my family")
    [event] = events_of(participant.id, "reflection_written")
    assert event.detail == {"entry": entry.id, "step": step.key, "step_id": step.id,
                            "chars": 28}
    assert "Secret" not in repr(event.detail)


@pytest.mark.parametrize("body", ["", "   \n\t ", "x" * 5001])
def test_reflection_length_is_checked(ctx, body):
    participant = make_participant(arm="guided")
    step = step_of(make_module("m"), "reflect")
    with pytest.raises(ModuleError):
        services.write_reflection(participant, step, body)
    assert count_of(JournalEntry) == 0


def test_reflection_of_5000_characters_is_accepted(ctx):
    participant = make_participant(arm="guided")
    entry = services.write_reflection(participant, step_of(make_module("m"), "reflect"),
                                      "y" * 5000)
    assert len(entry.body) == 5000


def test_reflection_screens_see_each_saved_entry(ctx, monkeypatch):
    """It hands each saved entry (with an id) to the registered screeners."""
    seen: list[tuple[int, str]] = []

    def screen(entry: JournalEntry) -> None:
        seen.append((entry.id, entry.body))
        entry.screening = "clear"

    monkeypatch.setattr(services, "REFLECTION_SCREENS", [screen])
    participant = make_participant(arm="guided")
    entry = services.write_reflection(participant, step_of(make_module("m"), "reflect"), "ok")
    assert seen == [(entry.id, "ok")] and entry.screening == "clear"


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_re_rating_updates_the_rating(ctx):
    """It keeps one rating per step, records every rating and rewards it once."""
    participant = make_participant(arm="guided")
    step = step_of(make_module("m"), "checkpoint")
    services.rate_checkpoint(participant, step, 4)
    clock.set_time(NOW + timedelta(minutes=5))
    services.rate_checkpoint(participant, step, 2)
    db.session.commit()
    [row] = db.session.scalars(select(CheckpointRating)).all()
    assert (row.rating, row.at) == (2, NOW + timedelta(minutes=5))
    details = [e.detail for e in events_of(participant.id, "checkpoint_rated")]
    assert [(d["rating"], d["updated"]) for d in details] == [(4, False), (2, True)]
    assert gamification.total_points(participant) == 5 + 10


@pytest.mark.parametrize("rating", [0, 6, True, 3.5])
def test_checkpoint_rating_must_be_1_to_5(ctx, rating):
    participant = make_participant(arm="guided")
    with pytest.raises(ModuleError, match="from 1"):
        services.rate_checkpoint(participant, step_of(make_module("m"), "checkpoint"), rating)


# --------------------------------------------------------------------------- library


def test_library_lists_active_modules_in_pathway_and_position_order(ctx):
    participant = make_participant(arm="guided")
    later = make_pathway("later", position=2)
    first = make_pathway("first", position=1)
    make_module("loose", kinds=("read",))
    make_module("b", pathway=first, position=2, kinds=("read",))
    make_module("c", pathway=later, position=0, kinds=("read",))
    make_module("a", pathway=first, position=1, kinds=("read", "read"))
    make_module("hidden", pathway=first, position=0, active=False)
    cards = services.library(participant)
    assert [card.module.key for card in cards] == ["a", "b", "c", "loose"]
    assert cards[0].pathway is first and cards[3].pathway is None
    assert (cards[0].steps_total, cards[0].steps_done, cards[0].started) == (2, 0, False)


def test_library_counts_progress(ctx):
    participant = make_participant(arm="guided")
    module = make_module("a", kinds=("read", "read", "read", "read"))
    make_module("b", position=1, kinds=("read",))
    for step in steps_of(module)[:3]:
        services.complete_step(participant, step)
    card = services.library(participant)[0]
    assert (card.steps_done, card.percent, card.started, card.completed) == (3, 75, True, False)


def test_module_progress_shows_done_steps_and_the_next_one(ctx):
    participant = make_participant(arm="guided")
    module = make_module("a", kinds=("read", "video", "read"))
    first, second, third = steps_of(module)
    services.complete_step(participant, first)
    page = services.module_progress(participant, module)
    assert [(s.step.key, s.done, s.number) for s in page.steps] == [
        (first.key, True, 1), (second.key, False, 2), (third.key, False, 3)]
    assert page.next_step is second and page.percent == 33
    assert page.steps[0].completed_at == NOW
    assert page.neighbours(second) == (first, third)
    assert page.neighbours(first) == (None, second)
    for step in (second, third):
        services.complete_step(participant, step)
    page = services.module_progress(participant, module)
    assert (page.next_step, page.percent, page.completed) == (None, 100, True)


def _grow(participant: Participant, start: int, count: int) -> None:
    """Add ``count`` modules of 6 steps and complete most of them, with events."""
    pathway = make_pathway(f"p{start}", position=start)
    for n in range(start, start + count):
        module = make_module(f"m{n}", pathway=pathway, position=n,
                             unlock={"after": f"m{n - 1}"} if n % 3 == 1 else
                             ({"week": 2} if n % 3 == 2 else {}),
                             kinds=("read", "read", "video", "read", "read", "read"))
        for step in steps_of(module)[: n % 6 + 1]:
            services.complete_step(participant, step)
    db.session.commit()


def _queries(call, participant_id: int, *args_of) -> int:
    db.session.expunge_all()
    participant = db.session.get(Participant, participant_id)
    args = [arg() for arg in args_of]
    with count_queries() as statements:
        call(participant, *args)
    return len(statements)


def test_library_and_module_pages_take_a_fixed_number_of_queries(ctx):
    """It reads the library and a module page in the same number of queries whatever
    the number of modules, steps and progress rows."""
    participant = make_participant(arm="guided")
    pid = participant.id
    _grow(participant, 1, 2)

    def first_module() -> Module:
        return db.session.scalar(select(Module).where(Module.key == "m1"))

    small = (_queries(services.library, pid), _queries(services.module_progress, pid,
                                                        first_module),
             _queries(services.next_step, pid))
    _grow(db.session.get(Participant, pid), 10, 12)
    large = (_queries(services.library, pid), _queries(services.module_progress, pid,
                                                       first_module),
             _queries(services.next_step, pid))
    assert small == large
    assert len(services.library(db.session.get(Participant, pid))) == 14
    assert max(large) <= 10


# --------------------------------------------------------------------------- resume


def test_next_step_starts_with_the_first_module(ctx):
    participant = make_participant(arm="guided")
    first = make_module("a", kinds=("read", "read"))
    make_module("b", position=1, kinds=("read", "read"))
    assert services.next_step(participant) is steps_of(first)[0]


def test_next_step_resumes_the_module_last_worked_on(ctx):
    """It carries on where the participant left off, then goes back to library order."""
    participant = make_participant(arm="guided")
    first = make_module("a", kinds=("read", "read"))
    second = make_module("b", position=1, kinds=("read", "read"))
    services.complete_step(participant, steps_of(first)[0], at=NOW - timedelta(days=2))
    services.complete_step(participant, steps_of(second)[0], at=NOW - timedelta(days=1))
    assert services.next_step(participant) is steps_of(second)[1]
    services.complete_step(participant, steps_of(second)[1])
    assert services.next_step(participant) is steps_of(first)[1]
    services.complete_step(participant, steps_of(first)[1])
    assert services.next_step(participant) is None


def test_next_step_skips_done_steps_in_the_middle(ctx):
    participant = make_participant(arm="guided")
    module = make_module("a", kinds=("read", "read", "read"))
    first, second, third = steps_of(module)
    services.complete_step(participant, second)
    assert services.next_step(participant) is first
    services.complete_step(participant, first)
    assert services.next_step(participant) is third


def test_next_step_skips_locked_modules(ctx):
    participant = make_participant(arm="guided")
    make_module("late", unlock={"week": 3}, kinds=("read",))
    open_module = make_module("open", position=1, kinds=("read",))
    assert services.next_step(participant) is steps_of(open_module)[0]
    services.complete_step(participant, steps_of(open_module)[0])
    assert services.next_step(participant) is None


# --------------------------------------------------------------------------- suggestions


def test_moderator_suggests_content_and_it_is_audited(ctx):
    participant = make_participant(arm="guided")
    moderator = make_staff(Role.PEER_MODERATOR, name="Mod Erator")
    module = make_module("a")
    step = steps_of(module)[1]
    suggestion = services.suggest(participant, module, actor=moderator, step=step,
                                  note="  This one helped others.  ")
    db.session.commit()
    assert (suggestion.module_id, suggestion.step_id, suggestion.note) == (
        module.id, step.id, "This one helped others.")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "content.suggested"))
    assert (entry.actor_id, entry.target_type, entry.target_id) == (
        moderator.id, "participant", participant.id)
    assert entry.detail["module"] == "a" and entry.detail["step"] == step.key
    assert "helped" not in repr(entry.detail)


def test_only_moderators_suggest_content(ctx):
    participant = make_participant(arm="guided")
    module = make_module("a")
    for role in (Role.RESEARCHER, Role.ADMIN):
        with pytest.raises(PermissionDenied):
            services.suggest(participant, module, actor=make_staff(role))
    with pytest.raises(PermissionDenied):
        services.suggest(participant, module, actor=participant.user)
    services.suggest(participant, module, actor=make_staff(Role.CLINICIAN))


def test_a_suggested_step_must_belong_to_the_module(ctx):
    participant = make_participant(arm="guided")
    module, other = make_module("a"), make_module("b")
    with pytest.raises(ModuleError, match="not part of the module"):
        services.suggest(participant, module, actor=make_staff(Role.PEER_MODERATOR),
                         step=steps_of(other)[0])


def test_suggestions_are_newest_first_until_dismissed(ctx):
    participant = make_participant(arm="guided")
    other = make_participant(code="T-0002", name="Other Person", arm="guided")
    moderator = make_staff(Role.PEER_MODERATOR)
    module = make_module("a")
    older = services.suggest(participant, module, actor=moderator)
    clock.set_time(NOW + timedelta(hours=1))
    newer = services.suggest(participant, make_module("b"), actor=moderator)
    services.suggest(other, module, actor=moderator)
    assert services.suggestions_for(participant) == [newer, older]
    services.dismiss_suggestion(participant, newer)
    services.dismiss_suggestion(participant, newer)
    assert services.suggestions_for(participant) == [older]
    with pytest.raises(PermissionDenied):
        services.dismiss_suggestion(other, older)
    assert older.dismissed_at is None


def test_points_use_stable_keys(ctx):
    """It keys awards by the content's stable ids, so re-synced rows keep their awards."""
    participant = make_participant(arm="guided")
    step = steps_of(make_module("a", kinds=("read",)))[0]
    services.complete_step(participant, step)
    keys = set(db.session.scalars(select(Award.key).where(Award.kind == "points")))
    assert keys == {f"step_completed:{step.key}", "module_completed:a"}
