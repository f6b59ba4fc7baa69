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
from modules.models import Award, JournalEntry, Module, MoodEntry, QuizAttempt
from modules.mood import mood_history
from outcomes import demo as study_demo

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def seed(participants: int = 4) -> int:
    """Seed the demo study (which seeds module use too); return how many participants
    were given module use."""
    clock.set_time(NOW)
    study_demo.seed(participants=participants, rng=random.Random(1))
    db.session.commit()
    return db.session.scalar(select(func.count(func.distinct(Award.participant_id))))


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


def test_the_demo_participant_reads_passes_a_quiz_tries_an_action_and_logs_a_mood(app, client,
                                                                                  auth):
    """It walks the demo participant through what the issue asks a new user to try, through
    the pages: read a step, pass a quiz, try an action, log a mood; points, level and a
    badge appear on the progress page and the awards are flashed as they happen."""
    with app.app_context():
        seed()
        person = showcase()
        code = person.study_code
        before = gamification.total_points(person)
        modules = {card.module.key: card for card in services.library(person)}
        module = next(m for key, m in modules.items() if m.unlocked and not m.completed).module
        steps = {s.kind: s for s in reversed(module.steps)}
        read, quiz, action = steps["read"], steps["quiz"], steps["action"]
        answers = {f"q{i}": [str(n) for n, o in enumerate(q["options"]) if o["correct"]]
                   for i, q in enumerate(quiz.data["questions"])}
        urls = {kind: f"/modules/{module.key}/{s.key}" for kind, s in
                (("read", read), ("quiz", quiz), ("action", action))}
    auth.login(code, study_demo.DEMO_PASSWORD)
    done = client.post(urls["read"], data={"submit": "Mark as done"}, follow_redirects=True)
    assert done.status_code == 200
    passed = client.post(urls["quiz"], data=answers, follow_redirects=True).get_data(as_text=True)
    assert "passed" in passed.lower()
    tried = client.post(urls["action"], data={"submit": "I'll try this"}, follow_redirects=True)
    assert "points" in tried.get_data(as_text=True)
    mood = client.post("/modules/mood", data={"score": "4", "note": "A walk with my sister"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Your mood is saved" in mood
    with app.app_context():
        person = showcase()
        after = gamification.total_points(person)
        level = gamification.level_for(after)
        assert after > before
        assert db.session.scalar(select(func.count(QuizAttempt.id)).where(
            QuizAttempt.participant_id == person.id, QuizAttempt.passed)) >= 1
    progress = client.get("/modules/progress").get_data(as_text=True)
    assert f"{after}" in progress and level.name in progress
    assert "Earned" in progress
