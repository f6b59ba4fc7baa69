"""Points, levels, badges, the rule file, arms without gamification, and the summary."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core import clock, events
from core.events import record_event
from core.extensions import db
from core.models import Participant
from modules import gamification, mood, services
from modules.gamification import RulesError, load_rules
from modules.models import Award
from outcomes.models import Arm
from tests.factories import make_participant
from tests.modules.content_rows import (
    add_step,
    count_of,
    count_queries,
    events_of,
    make_module,
    quiz_data,
    step_of,
    steps_of,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def ctx(app):
    clock.set_time(NOW)
    with app.app_context():
        yield


@pytest.fixture
def forum_kinds(monkeypatch):
    """Register the forum's event kinds the way the forum package will (undone after)."""
    for kind in ("post_written", "comment_written", "reaction_given", "helpful_marked"):
        monkeypatch.setitem(events.KINDS, kind, kind)


def _badges(participant: Participant) -> set[str]:
    return {b.id for b in gamification.badge_status(participant) if b.earned}


def _switch_off_gamification(participant: Participant) -> None:
    arm = Arm(study_id=participant.study_id, code="plain", name="Plain",
              features={"modules": True, "gamification": False, "forum": True})
    db.session.add(arm)
    db.session.flush()
    participant.arm_id = arm.id
    db.session.commit()


# --------------------------------------------------------------------------- rule file


def test_the_shipped_rule_file_is_valid():
    """It ships points for every reason, at least 6 levels and at least 8 badges."""
    rules = load_rules()
    assert set(rules.points) == set(gamification.REASONS)
    assert rules.points["step_completed"] == 10 and rules.points["module_completed"] == 50
    assert len(rules.levels) >= 6 and rules.levels[0].floor == 0
    assert [level.name for level in rules.levels[:2]] == ["Seedling", "Sprout"]
    assert len(rules.badges) >= 8
    assert {"first-step", "first-module", "streak-3", "streak-7", "first-action",
            "quiz-master", "all-core", "supportive-peer", "mood-week"} <= {
        b.id for b in rules.badges}
    assert all(b.how and b.description and b.name for b in rules.badges)


def _bad_file(tmp_path: Path, replace_text: tuple[str, str]) -> Path:
    text = gamification.RULES_FILE.read_text(encoding="utf-8")
    old, new = replace_text
    assert old in text
    path = tmp_path / "rules.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    """The last line that contains ``needle`` (1-based)."""
    return [n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line][-1]


@pytest.mark.parametrize(("change", "needle", "message"), [
    (("  quiz_passed: 20", "  quiz_passed: lots"), "quiz_passed: lots",
     "points: 'quiz_passed' must be a whole number"),
    (("  helpful_marked: 5", "  helpful_marked: 5\n  hugs_given: 3"), "hugs_given",
     "points: unknown reason 'hugs_given'"),
    (("{number: 3, name: Sapling, floor: 250}", "{number: 3, name: Sapling, floor: 50}"),
     "floor: 50}", "level 3: floor must be higher than the previous level's (100)"),
    (("{number: 2, name: Sprout", "{number: 7, name: Sprout"), "number: 7",
     "level 2: number must be 2"),
    (("      streak: 3", "      streaks: 3"), "streaks: 3", "unknown rule 'streaks'"),
    (("      streak: 7", "      streak: seven"), "streak: seven",
     "streak must be a number of days"),
    (("      completed_all: core_modules", "      completed_all: everything"),
     "completed_all: everything", "completed_all must be one of core_modules, quizzes"),
    (("count: {kinds: [module_completed], at_least: 1}",
      "count: {kinds: [module_completed], at_least: 0}"), "at_least: 0",
     "at_least must be a whole number of 1 or more"),
    (("count: {kinds: [module_completed], at_least: 1}", "count: {kinds: [], at_least: 1}"),
     "kinds: []", "kinds must be a list of event kinds"),
    (("  - id: first-module", "  - id: first-step"), "id: first-step",
     "badge 'first-step': the id is used twice"),
    (("    how: Finish every step of one module.\n", ""), "id: first-module",
     "badge 'first-module': how is required"),
])
def test_a_bad_rule_file_is_reported_with_file_and_line(tmp_path, change, needle, message):
    """It names the file and the line of each problem."""
    path = _bad_file(tmp_path, change)
    with pytest.raises(RulesError) as raised:
        load_rules(path)
    text = str(raised.value)
    assert message in text
    [problem] = [line for line in text.splitlines() if message in line]
    file_part, line_part, _ = problem.split(":", 2)
    assert file_part == str(path)
    assert int(line_part) == _line_of(path, needle)


def test_a_missing_reason_is_reported(tmp_path):
    path = _bad_file(tmp_path, ("  mood_logged: 5\n", ""))
    with pytest.raises(RulesError, match=r"rules.yaml:\d+: points: missing 'mood_logged'"):
        load_rules(path)


def test_broken_yaml_is_reported_with_its_line(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("points:\n  step_completed: 10\n  quiz: [unclosed\nlevels: []\n")
    with pytest.raises(RulesError, match=r"rules.yaml:\d+: not valid YAML"):
        load_rules(path)


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("points: {}\nlevels: [{number: 1, name: A, floor: 5}, "
                    "{number: 2, name: B, floor: 10}]\nbadges:\n  - id: Bad Id\n")
    with pytest.raises(RulesError) as raised:
        load_rules(path)
    lines = str(raised.value).splitlines()
    assert any("missing 'step_completed'" in line for line in lines)
    assert any(line.startswith(f"{path}:2: level 1: floor must be 0") for line in lines)
    assert any(line.startswith(f"{path}:4: badge: id must be") for line in lines)


# --------------------------------------------------------------------------- points, levels


@pytest.mark.parametrize(("points", "number", "name", "next_floor", "to_next"), [
    (0, 1, "Seedling", 100, 100), (99, 1, "Seedling", 100, 1), (100, 2, "Sprout", 250, 150),
    (899, 4, "Young tree", 900, 1), (1400, 6, "Forest", None, 0), (9999, 6, "Forest", None, 0),
])
def test_level_for_points(points, number, name, next_floor, to_next):
    level = gamification.level_for(points)
    assert (level.number, level.name, level.next_floor, level.points_to_next) == (
        number, name, next_floor, to_next)


def test_award_points_is_idempotent_per_reason_and_key(ctx):
    participant = make_participant(arm="guided")
    assert gamification.award_points(participant, "post_written", "7") == 10
    assert gamification.award_points(participant, "post_written", "7") == 0
    assert gamification.award_points(participant, "post_written", "8") == 10
    assert gamification.award_points(participant, "comment_written", "7") == 5
    db.session.commit()
    assert gamification.total_points(participant) == 25
    details = [e.detail for e in events_of(participant.id, "points_awarded")]
    assert details[0] == {"reason": "post_written", "key": "7", "points": 10}
    assert len(details) == 3


def test_an_unknown_reason_is_a_programming_error(ctx):
    with pytest.raises(ValueError, match="unknown point reason"):
        gamification.award_points(make_participant(arm="guided"), "being_nice", "1")


def test_a_racing_duplicate_award_is_absorbed(ctx, monkeypatch):
    """It relies on the unique key when the check-first misses a concurrent award, and
    the transaction carries on."""
    participant = make_participant(arm="guided")
    assert gamification.award_points(participant, "post_written", "1") == 10
    monkeypatch.setattr(gamification, "_has_award", lambda *args: False)
    assert gamification.award_points(participant, "post_written", "1") == 0
    db.session.commit()
    assert count_of(Award, Award.kind == "points") == 1


@pytest.mark.postgres_only
def test_concurrent_awards_on_postgresql_give_points_once(app, monkeypatch):
    """Two transactions award the same thing at once: one wins, the other gets 0."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip(reason="concurrency is tested on PostgreSQL")
        participant_id = make_participant(arm="guided").id
    monkeypatch.setattr(gamification, "_has_award", lambda *args: False)
    flushed, results = threading.Event(), {}

    def first() -> None:
        with app.app_context():
            participant = db.session.get(Participant, participant_id)
            results["first"] = gamification.award_points(participant, "post_written", "1")
            flushed.set()
            time.sleep(0.5)  # the second transaction now waits on the unique index
            db.session.commit()

    thread = threading.Thread(target=first)
    thread.start()
    flushed.wait(10)
    with app.app_context():
        participant = db.session.get(Participant, participant_id)
        results["second"] = gamification.award_points(participant, "post_written", "1")
        db.session.commit()
        thread.join(10)
        assert results == {"first": 10, "second": 0}
        assert count_of(Award, Award.kind == "points") == 1
        assert len(events_of(participant_id, "points_awarded")) == 1


def test_crossing_a_threshold_records_level_reached_once(ctx):
    participant = make_participant(arm="guided")
    for n in range(9):
        gamification.award_points(participant, "post_written", str(n))
    assert events_of(participant.id, "level_reached") == []
    gamification.award_points(participant, "post_written", "9")
    gamification.award_points(participant, "post_written", "10")
    [event] = events_of(participant.id, "level_reached")
    assert event.detail == {"level": 2, "name": "Sprout", "points": 100}


def test_a_big_award_records_every_level_it_crosses(ctx, monkeypatch):
    rules = gamification.rules()
    big = replace(rules, points={**rules.points, "post_written": 300})
    monkeypatch.setattr(gamification, "rules", lambda: big)
    participant = make_participant(arm="guided")
    gamification.award_points(participant, "post_written", "1")
    assert [e.detail["level"] for e in events_of(participant.id, "level_reached")] == [2, 3]


def test_a_missed_level_is_caught_by_the_next_award(ctx):
    """It records a level another transaction crossed without marking (a race)."""
    participant = make_participant(arm="guided")
    db.session.add(Award(participant_id=participant.id, kind="points", key="x:1", points=120))
    gamification.award_points(participant, "reaction_given", "1")
    assert [e.detail["level"] for e in events_of(participant.id, "level_reached")] == [2]


# --------------------------------------------------------------------------- arms


def test_no_awards_when_the_arm_has_no_gamification(ctx):
    """It records what the participant did but gives no points, levels or badges."""
    participant = make_participant(arm="guided")
    _switch_off_gamification(participant)
    module = make_module("m", kinds=("read",), unlock={})
    make_module("levelled", position=1, unlock={"level": 3}, kinds=("read",))
    services.complete_step(participant, steps_of(module)[0])
    assert gamification.award_points(participant, "post_written", "1") == 0
    assert gamification.award_for_event(participant, "post_written", "1") == 0
    db.session.commit()
    assert [e.kind for e in events_of(participant.id, "step_completed")] == ["step_completed"]
    assert len(events_of(participant.id, "module_completed")) == 1
    assert count_of(Award) == 0
    assert events_of(participant.id, "points_awarded") == []
    assert gamification.evaluate_badges(participant) == []
    summary = gamification.summary(participant)
    assert (summary.enabled, summary.points, summary.recent_badges) == (False, 0, [])
    # levels do not exist for this participant, so level rules do not lock modules
    assert all(card.unlocked for card in services.library(participant))


# --------------------------------------------------------------------------- badges


def test_first_step_and_first_module_badges(ctx):
    participant = make_participant(arm="guided")
    module = make_module("m", kinds=("read", "read"))
    make_module("another", kinds=("read",))
    first, second = steps_of(module)
    services.complete_step(participant, first)
    assert _badges(participant) == {"first-step"}
    services.complete_step(participant, second)
    assert _badges(participant) == {"first-step", "first-module"}
    details = [e.detail for e in events_of(participant.id, "badge_awarded")]
    assert details == [{"badge": "first-step"}, {"badge": "first-module"}]


def test_badges_are_awarded_once(ctx):
    participant = make_participant(arm="guided")
    services.complete_step(participant, steps_of(make_module("m"))[0])
    assert gamification.evaluate_badges(participant) == []
    assert count_of(Award, Award.kind == "badge") == 1


def test_streak_badges(ctx):
    participant = make_participant(arm="guided")
    for day in range(7):
        clock.set_time(NOW + timedelta(days=day))
        mood.log_mood(participant, 3)
        expected = {"streak-3"} if day >= 2 else set()
        if day >= 6:
            expected |= {"streak-7", "mood-week"}
        assert _badges(participant) == expected, day


def test_mood_week_needs_seven_days_not_a_streak(ctx):
    participant = make_participant(arm="guided")
    for day in range(0, 26, 4):
        clock.set_time(NOW + timedelta(days=day))
        mood.log_mood(participant, 4)
        mood.log_mood(participant, 5)
    earned = _badges(participant)
    assert "mood-week" in earned and "streak-3" not in earned


def test_first_action_badge_needs_the_action_tried(ctx):
    participant = make_participant(arm="guided")
    plan = services.plan_action(participant, step_of(make_module("m"), "action"))
    services.check_action(participant, plan, tried=False, rating=None)
    assert "first-action" not in _badges(participant)
    services.check_action(participant, plan, tried=True, rating=3)
    assert "first-action" in _badges(participant)


def test_quiz_master_after_five_quizzes(ctx):
    participant = make_participant(arm="guided")
    module = make_module("m", kinds=("quiz",) * 6)
    for number, step in enumerate(steps_of(module), start=1):
        services.answer_quiz(participant, step, {0: [1], 1: [0, 2]})
        assert ("quiz-master" in _badges(participant)) is (number >= 5)


def test_quiz_master_after_every_quiz_in_the_library(ctx):
    participant = make_participant(arm="guided")
    first = make_module("a", kinds=("read", "quiz"))
    second = make_module("b", kinds=("quiz",))
    add_step(second, "quiz", key="retired-quiz", data=quiz_data(), active=False)
    make_module("gone", kinds=("quiz",), active=False)
    services.answer_quiz(participant, step_of(first, "quiz"), {0: [1], 1: [0, 2]})
    assert "quiz-master" not in _badges(participant)
    services.answer_quiz(participant, step_of(second, "quiz"), {0: [1], 1: [0, 2]})
    assert "quiz-master" in _badges(participant)


def test_all_core_badge(ctx):
    participant = make_participant(arm="guided")
    core_a = make_module("a", kinds=("read",))
    core_b = make_module("b", kinds=("read",))
    extra = make_module("extra", core=False, kinds=("read",))
    services.complete_step(participant, steps_of(core_a)[0])
    services.complete_step(participant, steps_of(extra)[0])
    assert "all-core" not in _badges(participant)
    services.complete_step(participant, steps_of(core_b)[0])
    assert "all-core" in _badges(participant)


def test_supportive_peer_from_forum_events(ctx, forum_kinds):
    """It counts comments and reactions the forum reports through award_for_event."""
    participant = make_participant(arm="guided")
    for n in range(9):
        kind = "comment_written" if n % 2 else "reaction_given"
        record_event(participant, kind, comment=n)
        gamification.award_for_event(participant, kind, str(n))
    record_event(participant, "post_written", post=1)
    gamification.award_for_event(participant, "post_written", "1")
    assert "supportive-peer" not in _badges(participant)
    record_event(participant, "reaction_given", reaction=99)
    assert gamification.award_for_event(participant, "reaction_given", "99") == 2
    assert "supportive-peer" in _badges(participant)
    assert gamification.total_points(participant) == 4 * 5 + 6 * 2 + 10


def test_award_for_event_of_a_kind_without_points_still_checks_badges(ctx):
    participant = make_participant(arm="guided")
    record_event(participant, "step_completed", step="outside")
    assert gamification.award_for_event(participant, "step_completed_elsewhere", "1") == 0
    assert "first-step" in _badges(participant)


def test_badge_status_lists_every_badge_with_how_to_earn_it(ctx):
    participant = make_participant(arm="guided")
    services.complete_step(participant, steps_of(make_module("m"))[0])
    status = gamification.badge_status(participant)
    assert [b.id for b in status] == [b.id for b in gamification.rules().badges]
    earned = {b.id: b.earned_at for b in status if b.earned}
    assert earned == {"first-step": NOW}
    assert all(b.how for b in status)


# --------------------------------------------------------------------------- summary


def test_summary_shows_points_level_streak_and_the_last_three_badges(ctx):
    participant = make_participant(arm="guided")
    module = make_module("m", kinds=("read", "read"))
    services.complete_step(participant, steps_of(module)[0])
    clock.set_time(NOW + timedelta(minutes=1))
    services.complete_step(participant, steps_of(module)[1])
    clock.set_time(NOW + timedelta(days=1))
    mood.log_mood(participant, 4)
    clock.set_time(NOW + timedelta(days=2))
    mood.log_mood(participant, 4)
    summary = gamification.summary(participant)
    assert summary.enabled and summary.points == 10 + 10 + 50 + 5 + 5
    assert summary.level.name == "Seedling" and summary.level.points_to_next == 20
    assert (summary.streak.days, summary.streak.active_today) == (3, True)
    # four earned (first-step, first-module, all-core, streak-3): the newest three, newest first
    assert [b.id for b in summary.recent_badges] == ["streak-3", "all-core", "first-module"]


def _summary_queries(participant_id: int) -> int:
    db.session.expunge_all()
    participant = db.session.get(Participant, participant_id)
    with count_queries() as statements:
        gamification.summary(participant)
    return len(statements)


def test_summary_takes_a_fixed_number_of_queries(ctx):
    """It reads the summary in the same number of queries with few or many events,
    awards and badges."""
    participant = make_participant(arm="guided")
    pid = participant.id
    services.complete_step(participant, steps_of(make_module("a", kinds=("read",)))[0])
    db.session.commit()
    small = _summary_queries(pid)
    participant = db.session.get(Participant, pid)
    module = make_module("b", kinds=("quiz",) * 8)
    for day in range(30):
        clock.set_time(NOW + timedelta(days=day))
        mood.log_mood(participant, 3)
        if day < 8:
            services.answer_quiz(participant, steps_of(module)[day], {0: [1], 1: [0, 2]})
    db.session.commit()
    assert len(_badges(participant)) >= 5
    assert _summary_queries(pid) == small
    assert small <= 6
