"""The daily mood check: one entry per local day, updates, validation, history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from modules import gamification
from modules.models import MoodEntry
from modules.mood import MOOD_SCALE, log_mood, mood_history, today_mood
from modules.services import ModuleError
from tests.factories import make_participant
from tests.modules.content_rows import count_of, events_of

NOW = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)


@pytest.fixture
def ctx(app):
    clock.set_time(NOW)
    with app.app_context():
        yield


def test_the_scale_has_words_and_symbols_for_1_to_5():
    assert [level.score for level in MOOD_SCALE] == [1, 2, 3, 4, 5]
    assert [level.word for level in MOOD_SCALE] == ["Very low", "Low", "Okay", "Good",
                                                    "Very good"]
    assert len({level.symbol for level in MOOD_SCALE}) == 5
    assert all(level.symbol.strip() for level in MOOD_SCALE)
    value, word, symbol = MOOD_SCALE[0]
    assert (value, word) == (1, "Very low") and symbol


def test_a_second_mood_the_same_day_updates_the_first(ctx):
    """It keeps one entry per local day, records each log and rewards the day once."""
    participant = make_participant(arm="guided")
    first = log_mood(participant, 2, "Tired")
    clock.set_time(NOW + timedelta(hours=3))
    second = log_mood(participant, 4)
    db.session.commit()
    assert second.id == first.id and count_of(MoodEntry) == 1
    assert (second.score, second.note) == (4, None)
    assert (second.created_at, second.updated_at) == (NOW, NOW + timedelta(hours=3))
    details = [e.detail for e in events_of(participant.id, "mood_logged")]
    assert [(d["score"], d["updated"]) for d in details] == [(2, False), (4, True)]
    assert gamification.total_points(participant) == 5


def test_the_next_local_day_gets_a_new_entry_and_points(ctx):
    participant = make_participant(arm="guided")
    log_mood(participant, 3)
    clock.set_time(NOW + timedelta(days=1))
    log_mood(participant, 3)
    assert count_of(MoodEntry) == 2
    assert gamification.total_points(participant) == 10


def test_the_event_holds_the_score_but_not_the_note(ctx):
    participant = make_participant(arm="guided")
    participant.timezone = "UTC"
    log_mood(participant, 1, "my private words")
    [event] = events_of(participant.id, "mood_logged")
    assert event.detail == {"score": 1, "local_date": "2026-03-11", "updated": False,
                            "has_note": True}


def test_local_midnight_in_the_participant_zone_starts_a_new_day(ctx):
    """It uses the participant's zone: in Auckland (UTC+13) a new day starts at 11:00 UTC."""
    participant = make_participant(arm="guided")
    participant.timezone = "Pacific/Auckland"
    log_mood(participant, 2, at=datetime(2026, 3, 11, 10, 59, tzinfo=UTC))
    log_mood(participant, 3, at=datetime(2026, 3, 11, 10, 0, tzinfo=UTC))
    log_mood(participant, 5, at=datetime(2026, 3, 11, 11, 1, tzinfo=UTC))
    entries = db.session.scalars(select(MoodEntry).order_by(MoodEntry.local_date)).all()
    assert [(e.local_date, e.score) for e in entries] == [(date(2026, 3, 11), 3),
                                                          (date(2026, 3, 12), 5)]


def test_the_same_instant_is_a_different_day_in_auckland_and_los_angeles(ctx):
    auckland = make_participant(arm="guided")
    auckland.timezone = "Pacific/Auckland"
    los_angeles = make_participant(code="T-0002", name="Far Away")
    los_angeles.timezone = "America/Los_Angeles"
    at = datetime(2026, 3, 11, 20, 0, tzinfo=UTC)
    assert log_mood(auckland, 4, at=at).local_date == date(2026, 3, 12)
    assert log_mood(los_angeles, 4, at=at).local_date == date(2026, 3, 11)


def test_today_mood_follows_the_local_day(ctx):
    participant = make_participant(arm="guided")
    participant.timezone = "America/Los_Angeles"  # UTC-7 in mid March
    clock.set_time(datetime(2026, 3, 11, 6, 0, tzinfo=UTC))  # 10 Mar 23:00 local
    entry = log_mood(participant, 3)
    assert entry.local_date == date(2026, 3, 10)
    assert today_mood(participant) is entry
    clock.set_time(datetime(2026, 3, 11, 7, 30, tzinfo=UTC))  # 11 Mar 00:30 local
    assert today_mood(participant) is None


@pytest.mark.parametrize("score", [0, 6, -1, True, "3", 2.5, None])
def test_the_score_must_be_1_to_5(ctx, score):
    participant = make_participant(arm="guided")
    with pytest.raises(ModuleError, match="from 1"):
        log_mood(participant, score)  # type: ignore[arg-type]
    assert count_of(MoodEntry) == 0


def test_the_note_is_optional_stripped_and_limited(ctx):
    participant = make_participant(arm="guided")
    assert log_mood(participant, 3, "   ").note is None
    assert log_mood(participant, 3, "  fine  ").note == "fine"
    assert log_mood(participant, 3, "x" * 500).note == "x" * 500
    with pytest.raises(ModuleError, match="500 characters"):
        log_mood(participant, 3, "x" * 501)


def test_history_is_oldest_first_within_the_window(ctx):
    participant = make_participant(arm="guided")
    participant.timezone = "UTC"
    for back in (40, 29, 10, 0):
        log_mood(participant, 1 + back % 5, at=NOW - timedelta(days=back))
    history = mood_history(participant)
    assert [e.local_date for e in history] == [date(2026, 2, 10), date(2026, 3, 1),
                                               date(2026, 3, 11)]
    assert [e.local_date for e in mood_history(participant, days=7)] == [date(2026, 3, 11)]
