"""Streaks: consecutive local days of activity, one grace day per ISO week, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core import clock
from core.events import record_event
from core.extensions import db
from modules import mood, services, streaks
from modules.streaks import Streak, count_streak
from tests.factories import make_participant
from tests.modules.content_rows import count_queries, make_module, steps_of

# ISO week 10 of 2026 runs Mon 2 March .. Sun 8 March; week 11 Mon 9 .. Sun 15 March.


def days(*numbers: int) -> set[date]:
    return {date(2026, 3, n) for n in numbers}


TODAY = date(2026, 3, 11)  # a Wednesday


@pytest.mark.parametrize(("active", "expected"), [
    (days(9, 10, 11), Streak(3, 0, True)),
    (days(), Streak(0, 0, False)),
    (days(11), Streak(1, 0, True)),
])
def test_consecutive_days_make_a_streak(active, expected):
    assert count_streak(active, TODAY)[0] == expected


def test_a_streak_still_counts_until_today_is_over():
    """It ends the run yesterday while today is not active yet."""
    assert count_streak(days(8, 9, 10), TODAY)[0] == Streak(3, 0, False)


def test_one_missed_day_in_a_week_is_forgiven():
    """It forgives one miss per ISO week: the day neither breaks nor adds to the run."""
    assert count_streak(days(9, 11), TODAY)[0] == Streak(2, 1, True)
    assert count_streak(days(2, 3, 4, 6, 7, 8), date(2026, 3, 8))[0] == Streak(6, 1, True)


def test_a_missed_yesterday_is_forgiven_too():
    assert count_streak(days(8, 9), TODAY)[0] == Streak(2, 1, False)


def test_two_missed_days_in_one_week_break_the_streak():
    assert count_streak(days(2, 3, 5, 7, 8), date(2026, 3, 8))[0] == Streak(3, 1, True)
    assert count_streak(days(2, 3, 4, 7, 8), date(2026, 3, 8))[0] == Streak(2, 0, True)


def test_a_miss_in_each_of_two_weeks_is_forgiven_each_time():
    assert count_streak(days(4, 5, 6, 8, 9, 11), TODAY)[0] == Streak(6, 2, True)


def test_misses_on_sunday_and_monday_fall_in_different_weeks():
    assert count_streak(days(6, 7, 10, 11), TODAY)[0] == Streak(4, 2, True)


def test_misses_before_the_run_are_not_grace_days():
    """It counts a grace day only when activity comes before it."""
    assert count_streak(days(11), TODAY)[0] == Streak(1, 0, True)
    assert count_streak(days(1, 11), TODAY)[0] == Streak(1, 0, True)


def test_the_walk_says_when_it_reached_the_floor():
    streak, reached = count_streak(days(*range(1, 12)), TODAY, floor=date(2026, 3, 5))
    assert reached and streak.days == 6
    assert count_streak(days(10, 11), TODAY, floor=date(2026, 3, 5)) == (Streak(2, 0, True),
                                                                        False)


# --------------------------------------------------------------------------- from events


@pytest.fixture
def ctx(app):
    clock.set_time(datetime(2026, 3, 11, 12, 0, tzinfo=UTC))
    with app.app_context():
        yield


def _event_at(participant, at: datetime, kind: str = "step_completed") -> None:
    record_event(participant, kind, at=at)


def test_streak_from_real_activity_across_days(ctx):
    participant = make_participant()
    participant.timezone = "UTC"
    module = make_module("m", kinds=("read", "read", "read"))
    start = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    for offset, step in enumerate(steps_of(module)):
        clock.set_time(start + timedelta(days=offset))
        services.complete_step(participant, step)
    assert streaks.streak(participant) == Streak(3, 0, True)
    clock.set_time(start + timedelta(days=3))
    assert streaks.streak(participant) == Streak(3, 0, False)
    mood.log_mood(participant, 4)
    assert streaks.streak(participant) == Streak(4, 0, True)


def test_only_engagement_events_count(ctx):
    """It ignores sign-ins, points and plans: a day counts for doing something."""
    participant = make_participant()
    participant.timezone = "UTC"
    noon = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    for kind in ("login", "points_awarded", "action_planned", "badge_awarded"):
        _event_at(participant, noon, kind)
    assert streaks.streak(participant).days == 0
    for kind in ("mood_logged", "quiz_answered", "action_checked", "reflection_written"):
        participant_b = make_participant(code=f"T-{kind}", name=f"Person {kind[:8]}")
        participant_b.timezone = "UTC"
        _event_at(participant_b, noon, kind)
        assert streaks.streak(participant_b) == Streak(1, 0, True), kind


def test_the_same_events_fall_on_different_local_days_by_time_zone(ctx):
    """It counts days in each participant's own zone: the same two instants are one
    day in Auckland (UTC+13) and two days in Los Angeles (UTC-7)."""
    auckland = make_participant()
    auckland.timezone = "Pacific/Auckland"
    los_angeles = make_participant(code="T-0002", name="Far Away")
    los_angeles.timezone = "America/Los_Angeles"
    clock.set_time(datetime(2026, 3, 10, 10, 0, tzinfo=UTC))
    for participant in (auckland, los_angeles):
        _event_at(participant, datetime(2026, 3, 9, 23, 0, tzinfo=UTC))
        _event_at(participant, datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    db.session.commit()
    # Auckland: 10 Mar 12:00 and 22:00 local; Los Angeles: 9 Mar 16:00 and 10 Mar 02:00
    assert streaks.streak(auckland) == Streak(1, 0, True)
    assert streaks.streak(los_angeles) == Streak(2, 0, True)


def test_a_streak_is_not_broken_or_made_by_utc_midnight(ctx):
    """It splits days at the participant's local midnight, not at UTC midnight."""
    new_york = make_participant()
    new_york.timezone = "America/New_York"  # UTC-5 in early March
    clock.set_time(datetime(2026, 3, 6, 6, 0, tzinfo=UTC))
    _event_at(new_york, datetime(2026, 3, 6, 4, 59, tzinfo=UTC))  # 5 Mar 23:59 local
    _event_at(new_york, datetime(2026, 3, 6, 5, 1, tzinfo=UTC))  # 6 Mar 00:01 local
    assert streaks.streak(new_york) == Streak(2, 0, True)
    london = make_participant(code="T-0002", name="Near By")
    london.timezone = "Europe/London"  # UTC+0 in March: local midnight is UTC midnight
    _event_at(london, datetime(2026, 3, 5, 12, 0, tzinfo=UTC))
    _event_at(london, datetime(2026, 3, 5, 23, 59, tzinfo=UTC))
    _event_at(london, datetime(2026, 3, 6, 0, 1, tzinfo=UTC))
    assert streaks.streak(london) == Streak(2, 0, True)


def test_today_can_be_given(ctx):
    participant = make_participant()
    participant.timezone = "UTC"
    for day in (2, 3, 4):
        _event_at(participant, datetime(2026, 3, day, 12, 0, tzinfo=UTC))
    assert streaks.streak(participant, today=date(2026, 3, 4)) == Streak(3, 0, True)
    assert streaks.streak(participant, today=date(2026, 3, 3)) == Streak(2, 0, True)


def test_a_streak_longer_than_the_first_window_is_counted_whole(ctx, monkeypatch):
    """It looks further back (one more query) when the run reaches the window's edge."""
    monkeypatch.setattr(streaks, "STREAK_WINDOW_DAYS", 5)
    participant = make_participant()
    participant.timezone = "UTC"
    for back in range(12):
        _event_at(participant, datetime(2026, 3, 11, 8, 0, tzinfo=UTC) - timedelta(days=back))
    db.session.commit()
    db.session.refresh(participant)
    with count_queries() as statements:
        result = streaks.streak(participant)
    assert result == Streak(12, 0, True)
    assert len(statements) == 2
