"""Demo module progress: a few weeks of made-up use of the therapy modules, so that every
participant page (and the moderators' and researchers' views of it) has something to show.

``seed_demo`` loads the shipped library first when the database has none, then replays
each demo participant's weeks day by day through the real services, with the clock
frozen at the moment of each action (``core.clock.frozen_at``): steps, quizzes (some
failed first), actions planned and later checked, reflections, checkpoint ratings and a
daily mood on about 60% of days, with a note on about half of those. Points, levels,
badges and streaks follow from the services, as they would for real.

The showcase participant (``outcomes.demo.DEMO_PARTICIPANT``, "Quiet Harbour") is
part-way through: a streak up to yesterday, a level above 1, a "did you try it?" check
waiting, a moderator's suggestion, nothing done yet today, and read, quiz and action steps
still to do, so a visitor can try each of them and watch points and a badge appear.

Transaction contract: flushes, never commits; the caller (``outcomes.demo.seed``) commits.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.models import Participant
from modules import mood, services
from modules.library import content_root, load_library
from modules.models import ActionPlan, Module, Step
from modules.progress import participant_zone
from modules.sync import sync_library
from outcomes.services import features_for

SHOWCASE_CODE = "DEMO-0001"
#: the showcase comes back (and logs a mood) every day of its last week, for a streak
SHOWCASE_STREAK_DAYS = 7

REFLECTIONS = [
    "My cousin. We used to talk every week and then we just stopped. I miss that.",
    "I felt close to the woman at the bakery for a minute today. She remembered my name.",
    "Honestly nobody this week. I spent most of it at home. Writing it down helps a bit.",
    "My old flatmate sent a voice note. I listened to it three times.",
    "I think I pull away when I'm tired, and then I feel worse. Noticing that.",
    "Walking the dog. People stop and chat when the dog is there.",
]
MOOD_NOTES = [
    "Slept badly.", "Nice walk in the park.", "Quiet day at home.", "Talked to my sister.",
    "Felt a bit flat.", "Rain all day.", "Went to the shop and chatted to the cashier.",
    "Good chat at group.", "Tired but okay.", "Made soup.", "Missed my friend today.",
    "Tried the breathing exercise.", "Too much scrolling.", "Sunny! Sat outside.",
]


@dataclass(frozen=True)
class Habits:
    """How one made-up participant uses the modules."""

    #: the chance of using Kinship on a given day, while they still do
    day_chance: float
    #: stops using the modules this many days after starting
    stop_after: int
    most_steps: int
    mood_chance: float
    note_chance: float
    #: the chance of failing a quiz before passing it
    quiz_fail_chance: float
    tried_chance: float
    showcase: bool = False


SHOWCASE = Habits(day_chance=0.8, stop_after=10_000, most_steps=1, mood_chance=0.6,
                  note_chance=0.5, quiz_fail_chance=0.5, tried_chance=0.0, showcase=True)


def seed_demo(participants: Iterable[Participant], *, rng: random.Random,
              now: datetime) -> int:
    """Give each demo participant whose arm has modules a few weeks of module use, up to
    ``now``. Return how many participants were given any. Flushes; the caller commits."""
    ensure_library()
    seeded = 0
    for participant in participants:
        if not _takes_part(participant):
            continue
        habits = SHOWCASE if participant.study_code == SHOWCASE_CODE else _habits(rng)
        _replay(participant, habits, rng, now)
        seeded += 1
    return seeded


def ensure_library() -> None:
    """Load the shipped content library when the database has no modules yet (what
    ``flask modules sync`` does)."""
    if not db.session.scalar(select(func.count(Module.id))):
        sync_library(load_library(content_root()))


def _takes_part(participant: Participant) -> bool:
    user = participant.user
    return (participant.status == "active" and user.password_hash is not None
            and bool(features_for(user).get("modules")))


def _habits(rng: random.Random) -> Habits:
    return Habits(day_chance=rng.uniform(0.3, 0.7), stop_after=rng.choice([4, 9, 15, 25, 60]),
                  most_steps=rng.choice([1, 2, 3]), mood_chance=rng.uniform(0.5, 0.7),
                  note_chance=0.5, quiz_fail_chance=0.35, tried_chance=0.7)


# --------------------------------------------------------------------------- the replay


def _replay(participant: Participant, habits: Habits, rng: random.Random,
            now: datetime) -> None:
    """Walk the participant's local days from the day after randomisation (or enrolment)
    to today; the showcase leaves today to the visitor."""
    zone = participant_zone(participant)
    first = (participant.randomised_at or participant.enrolled_at).astimezone(zone).date()
    today = now.astimezone(zone).date()
    quiet_from = today - timedelta(days=_longest_check_wait() + 1)
    last = min(today - timedelta(days=1) if habits.showcase else today,
               first + timedelta(days=habits.stop_after))
    day = first + timedelta(days=1)
    while day <= last:
        streaking = habits.showcase and (today - day).days <= SHOWCASE_STREAK_DAYS
        busy = streaking or rng.random() < habits.day_chance
        moody = streaking or rng.random() < habits.mood_chance
        at = datetime.combine(day, time(rng.randint(9, 20), rng.randint(0, 59)), tzinfo=zone)
        if busy or moody:
            with clock.frozen_at(min(at.astimezone(UTC), now - timedelta(minutes=5))):
                _visit(participant, habits, rng, busy=busy, moody=moody,
                       plans=not habits.showcase or day < quiet_from)
        day += timedelta(days=1)
    if habits.showcase:
        _suggest_something(participant, now)


def _longest_check_wait() -> int:
    """The most days any action step waits before "did you try it?"."""
    waits = db.session.scalars(select(Step.data).where(Step.kind == "action", Step.is_active))
    return max((int(data.get("check_after_days") or 3) for data in waits), default=3)


def _visit(participant: Participant, habits: Habits, rng: random.Random, *, busy: bool,
           moody: bool, plans: bool) -> None:
    """One visit: answer due checks, maybe log a mood, do a few steps. Without ``plans``
    it stops at an action step (the showcase's newest plan must be due by the end)."""
    if busy:
        _answer_due_checks(participant, habits, rng)
    if moody:
        note = rng.choice(MOOD_NOTES) if rng.random() < habits.note_chance else None
        mood.log_mood(participant, _mood_score(rng), note)
    for _ in range(rng.randint(1, habits.most_steps) if busy else 0):
        step = services.next_step(participant)
        if step is None or (step.kind == "action" and not plans):
            return
        _do(participant, step, habits, rng)


def _mood_score(rng: random.Random) -> int:
    return rng.choices([1, 2, 3, 4, 5], weights=[1, 3, 5, 4, 2])[0]


def _answer_due_checks(participant: Participant, habits: Habits, rng: random.Random) -> None:
    due = services.due_action_checks(participant)
    if habits.showcase:
        newest = db.session.scalar(select(func.max(ActionPlan.id)).where(
            ActionPlan.participant_id == participant.id))
        # the showcase keeps its newest plan waiting for the visitor, and said "not yet"
        # to the others, so trying it earns the "Brave step" badge on screen
        for plan in due:
            if plan.id != newest:
                services.check_action(participant, plan, tried=False, rating=None)
        return
    for plan in due:
        if rng.random() < 0.8:
            tried = rng.random() < habits.tried_chance
            services.check_action(participant, plan, tried=tried,
                                  rating=rng.randint(2, 5) if tried else None)


def _do(participant: Participant, step: Step, habits: Habits, rng: random.Random) -> None:
    if step.kind == "quiz":
        if rng.random() < habits.quiz_fail_chance:
            services.answer_quiz(participant, step, _answers(step, right=False))
        services.answer_quiz(participant, step, _answers(step, right=True))
    elif step.kind == "action":
        services.plan_action(participant, step)
    elif step.kind == "reflect":
        services.write_reflection(participant, step, rng.choice(REFLECTIONS))
    elif step.kind == "checkpoint":
        services.rate_checkpoint(participant, step, rng.choice([3, 4, 4, 5, 5]))
    else:
        services.complete_step(participant, step)


def _answers(step: Step, *, right: bool) -> dict[int, list[int]]:
    answers = {}
    for index, question in enumerate(step.data.get("questions") or []):
        options = question["options"]
        correct = [i for i, option in enumerate(options) if option.get("correct")]
        wrong = [i for i, option in enumerate(options) if not option.get("correct")]
        answers[index] = correct if right or not wrong else wrong[:1]
    return answers


def _suggest_something(participant: Participant, now: datetime) -> None:
    """The showcase's moderator suggests the first open module they have not started."""
    moderator = participant.moderator
    if moderator is None:
        return
    with clock.frozen_at(now - timedelta(hours=3)):
        for card in services.library(participant):
            if card.unlocked and not card.started:
                services.suggest(participant, card.module, actor=moderator,
                                 note="Others have found this one gentle. No rush.")
                return
