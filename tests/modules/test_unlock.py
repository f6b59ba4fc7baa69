"""Unlock rules: after another module, at a level, from week N, with their reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import clock
from modules import gamification, services
from modules.services import ModuleError, build_context, unlock_state
from tests.factories import make_participant
from tests.modules.content_rows import count_queries, make_module, steps_of

ENROLLED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def ctx(app):
    clock.set_time(ENROLLED)
    with app.app_context():
        yield


def _state(participant, module):
    return unlock_state(participant, module, ctx=build_context(participant))


def test_a_module_without_a_rule_is_open(ctx):
    participant = make_participant(arm="guided")
    assert _state(participant, make_module("open", kinds=("read",))) == (True, "")


def test_after_rule_opens_when_the_named_module_is_finished(ctx):
    participant = make_participant(arm="guided")
    first = make_module("small-steps", title="Small steps to reach out", kinds=("read",))
    second = make_module("keep-going", position=1, unlock={"after": "small-steps"})
    assert _state(participant, second) == (False,
                                           "Opens after you finish 'Small steps to reach out'")
    services.complete_step(participant, steps_of(first)[0])
    assert _state(participant, second) == (True, "")


def test_after_rule_naming_a_module_no_longer_in_the_library_is_met(ctx):
    participant = make_participant(arm="guided")
    make_module("retired", active=False)
    module = make_module("m", unlock={"after": "retired"})
    assert _state(participant, module) == (True, "")


def test_level_rule_opens_at_the_level(ctx):
    participant = make_participant(arm="guided")
    module = make_module("deeper", unlock={"level": 2})
    assert _state(participant, module) == (False, "Opens at level 2")
    for n in range(9):
        gamification.award_points(participant, "post_written", str(n))
    assert _state(participant, module) == (False, "Opens at level 2")
    gamification.award_points(participant, "post_written", "last")
    assert _state(participant, module) == (True, "")


def test_week_rule_counts_weeks_from_enrolment(ctx):
    """It opens a week-3 module 14 days after enrolment, and says when."""
    participant = make_participant(arm="guided")
    participant.timezone = "Europe/London"
    module = make_module("later", unlock={"week": 3})
    assert _state(participant, module) == (False, "Opens in week 3 (on 12 Dec)")
    clock.set_time(ENROLLED + timedelta(days=14) - timedelta(seconds=1))
    assert _state(participant, module)[0] is False
    clock.set_time(ENROLLED + timedelta(days=14))
    assert _state(participant, module) == (True, "")


def test_week_one_is_open_at_once(ctx):
    participant = make_participant(arm="guided")
    assert _state(participant, make_module("first", unlock={"week": 1}))[0] is True


def test_the_opening_day_is_shown_in_the_participant_zone(ctx):
    """It names the local day: 12 Dec 12:00 UTC is already 13 Dec in Auckland."""
    participant = make_participant(arm="guided")
    participant.timezone = "Pacific/Auckland"
    module = make_module("later", unlock={"week": 3})
    assert _state(participant, module) == (False, "Opens in week 3 (on 13 Dec)")


def test_week_rule_counts_from_randomisation_when_there_is_one(ctx):
    participant = make_participant(arm="guided")
    participant.timezone = "UTC"
    participant.randomised_at = ENROLLED + timedelta(days=7)
    module = make_module("later", unlock={"week": 2})
    assert _state(participant, module) == (False, "Opens in week 2 (on 12 Dec)")
    clock.set_time(ENROLLED + timedelta(days=13))
    assert _state(participant, module)[0] is False
    clock.set_time(ENROLLED + timedelta(days=14))
    assert _state(participant, module)[0] is True


def test_a_started_module_stays_open_when_its_rule_changes(ctx):
    """It never locks a module the participant has made progress in."""
    participant = make_participant(arm="guided")
    module = make_module("m", kinds=("read", "read"))
    services.complete_step(participant, steps_of(module)[0])
    module.unlock = {"week": 5}
    assert _state(participant, module) == (True, "")


def test_ensure_unlocked_raises_the_reason(ctx):
    participant = make_participant(arm="guided")
    module = make_module("deeper", unlock={"level": 3})
    with pytest.raises(ModuleError, match="^Opens at level 3$"):
        services.ensure_unlocked(participant, module)
    services.ensure_unlocked(participant, make_module("open"))


def test_library_and_module_page_carry_the_lock_state(ctx):
    participant = make_participant(arm="guided")
    first = make_module("small-steps", title="Small steps to reach out", kinds=("read",))
    second = make_module("keep-going", position=1, unlock={"after": "small-steps"})
    cards = services.library(participant)
    assert [(c.unlocked, c.reason) for c in cards] == [
        (True, ""), (False, "Opens after you finish 'Small steps to reach out'")]
    page = services.module_progress(participant, second)
    assert (page.unlocked, page.reason) == (False,
                                            "Opens after you finish 'Small steps to reach out'")
    assert services.module_progress(participant, first).unlocked


def test_unlock_checks_use_the_context_without_queries(ctx):
    """It answers every unlock question from one context, so a page's cost is fixed."""
    participant = make_participant(arm="guided")
    modules = [make_module(f"m{n}", position=n, unlock=rule, kinds=("read",))
               for n, rule in enumerate([{}, {"after": "m0"}, {"level": 2}, {"week": 2}])]
    context = build_context(participant)
    with count_queries() as statements:
        states = [unlock_state(participant, m, ctx=context) for m in modules]
    assert statements == []
    assert [s[0] for s in states] == [True, False, False, False]
