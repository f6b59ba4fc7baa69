"""The home page's game summary reads the streak and the recent badges together, and
says exactly what ``streak`` and ``recent_badges`` say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import clock
from core.events import record_event
from core.extensions import db
from modules import gamification, streaks
from modules.models import Award
from tests.factories import make_participant
from tests.modules.content_rows import count_queries

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


@pytest.fixture
def ctx(app):
    clock.set_time(NOW)
    with app.app_context():
        yield


def active_on(participant, days_ago: range) -> None:
    for days in days_ago:
        record_event(participant, "mood_logged", at=NOW - timedelta(days=days))


def badge(participant, key: str, days_ago: int) -> None:
    db.session.add(Award(participant_id=participant.id, kind="badge", key=key, points=0,
                         at=NOW - timedelta(days=days_ago)))
    db.session.flush()


def agrees(participant) -> gamification.GameSummary:
    summary = gamification.summary(participant)
    assert summary.streak == gamification.streak(participant)
    assert summary.recent_badges == gamification.recent_badges(participant)
    return summary


def test_summary_matches_streak_and_recent_badges(ctx):
    participant = make_participant(arm="guided")
    participant.timezone = "Pacific/Auckland"
    active_on(participant, range(1, 6))
    for days, key in ((9, "first-step"), (3, "streak-3"), (3, "first-module"),
                      (1, "first-action"), (0, "no-longer-in-the-rules")):
        badge(participant, key, days)
    summary = agrees(participant)
    assert summary.streak.days == 5
    assert [b.id for b in summary.recent_badges] == ["first-action", "first-module",
                                                    "streak-3"]


def test_summary_follows_a_run_longer_than_the_window(ctx):
    participant = make_participant(arm="guided")
    participant.timezone = "UTC"
    active_on(participant, range(streaks.STREAK_WINDOW_DAYS + 20))
    assert agrees(participant).streak.days == streaks.STREAK_WINDOW_DAYS + 20


def test_summary_with_nothing_yet(ctx):
    participant = make_participant(arm="guided")
    summary = agrees(participant)
    assert (summary.streak.days, summary.recent_badges) == (0, [])


def test_summary_reads_streak_and_badges_in_one_query(app, ctx):
    participant = make_participant(arm="guided")
    active_on(participant, range(3))
    badge(participant, "first-step", 1)
    # in a request, as on the home page: the arm's features are worked out once per request
    with app.test_request_context("/modules/today"):
        gamification.summary(participant, points=0)  # rows it meets on the way are loaded
        with count_queries() as statements:
            gamification.summary(participant, points=0)
    assert len(statements) == 1
