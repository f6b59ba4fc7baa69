"""The demo module data: the shipped library is loaded, and the showcase participant is
part-way through with something waiting on every page."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.models import Participant
from modules import demo, gamification, services
from modules.models import JournalEntry, Module, MoodEntry, QuizAttempt
from modules.mood import mood_history
from outcomes import demo as study_demo

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def seed(participants: int = 4) -> int:
    clock.set_time(NOW)
    study_demo.seed(participants=participants, rng=random.Random(1))
    people = db.session.scalars(select(Participant).order_by(Participant.id)).all()
    seeded = demo.seed_demo(people, rng=random.Random(2), now=NOW)
    db.session.commit()
    return seeded


def showcase() -> Participant:
    return db.session.scalar(select(Participant).where(
        Participant.study_code == demo.SHOWCASE_CODE))


def test_the_showcase_is_part_way_through_with_something_to_do(app):
    """It gives "Quiet Harbour" a due "did you try it?", a streak up to yesterday, a level
    above 1, badges, a suggestion, moods with notes, and steps still to do."""
    with app.app_context():
        assert seed() == 4
        assert db.session.scalar(select(func.count(Module.id))) >= 6
        person = showcase()
        game = gamification.summary(person)
        assert game.level.number > 1
        assert game.streak.days >= 3 and not game.streak.active_today
        assert game.recent_badges
        assert len(services.due_action_checks(person)) == 1
        assert services.suggestions_for(person)
        cards = services.library(person)
        assert any(card.completed for card in cards)
        assert not all(card.completed for card in cards)
        assert services.next_step(person) is not None
        moods = mood_history(person, days=30)
        assert 12 <= len(moods) <= 28
        assert any(entry.note for entry in moods) and not all(entry.note for entry in moods)
        assert db.session.scalar(select(func.count(JournalEntry.id)).where(
            JournalEntry.participant_id == person.id))
        assert db.session.scalar(select(func.count(QuizAttempt.id)).where(
            QuizAttempt.participant_id == person.id))
        # nothing done today: the visitor logs today's mood and earns its points
        assert not any(entry.local_date == NOW.date() for entry in moods)


def test_the_other_demo_participants_have_varied_progress(app):
    with app.app_context():
        seed(participants=6)
        points = {p.study_code: gamification.total_points(p)
                  for p in db.session.scalars(select(Participant))}
        assert len(set(points.values())) >= 3
        assert db.session.scalar(select(func.count(MoodEntry.id))) > 30


def test_every_page_has_data_for_the_showcase(app, client, auth):
    with app.app_context():
        seed()
        # the demo's shared password is not the tests' one
        person = showcase()
        code = person.study_code
        module_key = services.library(person)[0].module.key
    assert auth.login(code, study_demo.DEMO_PASSWORD).status_code == 302
    for path in ("/modules/today", "/modules/", f"/modules/{module_key}", "/modules/progress"):
        response = client.get(path)
        assert response.status_code == 200, path
    today = client.get("/modules/today").get_data(as_text=True)
    assert "Did you try it?" in today and "Suggested for you" in today
    assert "Recent badges" in today
    assert "<svg" in client.get("/modules/progress").get_data(as_text=True)
