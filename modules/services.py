"""Therapy-module services: progress, quizzes, actions, reflections, checkpoints, unlock
rules, the library and resume, and moderators' content suggestions.

Transaction contract: every function here flushes and never commits; the outermost caller
(view, CLI command, job) commits once. Participant-facing problems raise ``ModuleError``
with a message fit to show as it is.

Every participant action lands in the activity-event spine (``modules.activity`` lists the
kinds) and is rewarded through ``modules.gamification``, which is idempotent: doing the
same thing twice gives points once. Event details hold ids, keys and numbers, never the
participant's words.

The read side (unlock rules, the library, module progress, resume) lives in
``modules.overview`` and is re-exported here, so pages need only this module. Unlocking
is not enforced by the write functions: pages check ``unlock_state`` (or
``ensure_unlocked``) before showing a step, so the CLI, the demo seed and tests may
record progress freely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, joinedload

from core import audit
from core.accounts import PermissionDenied
from core.clock import utcnow
from core.events import record_event
from core.extensions import db
from core.models import Participant, User
from core.roles import MODERATORS
from modules import (
    activity,  # noqa: F401 - registers the event kinds
    gamification,
)
from modules.errors import ModuleError
from modules.models import (
    ActionPlan,
    CheckpointRating,
    ContentSuggestion,
    JournalEntry,
    Module,
    QuizAttempt,
    Step,
    StepProgress,
)
from modules.overview import (
    Context,
    ModuleCard,
    ModulePage,
    StepState,
    build_context,
    ensure_unlocked,
    library,
    module_progress,
    next_step,
    unlock_state,
)
from modules.progress import completion_events

__all__ = [
    "REFLECTION_SCREENS", "Context", "ModuleCard", "ModuleError", "ModulePage",
    "PermissionDenied", "QuestionResult", "QuizResult", "StepState", "answer_quiz",
    "build_context", "check_action", "complete_step", "dismiss_suggestion",
    "due_action_checks", "ensure_unlocked", "library", "module_progress", "next_step",
    "plan_action", "rate_checkpoint", "suggest", "suggestions_for", "unlock_state",
    "write_reflection",
]

REFLECTION_MAX = 5000
SUGGESTION_NOTE_MAX = 1000
DEFAULT_PASS_MARK = 0.5
DEFAULT_CHECK_AFTER_DAYS = 3

#: Screeners run on every saved reflection, in order, right after the entry is flushed
#: (so it has an id) and inside the caller's transaction. The moderation package appends
#: its risk screener here at import. A screener may set ``entry.screening`` ("clear" or
#: "flagged"), hold the entry and open alerts; it must not commit. An exception it raises
#: propagates, so the caller's transaction (the reflection included) rolls back: fail
#: closed rather than keep text that could not be screened.
REFLECTION_SCREENS: list[Callable[[JournalEntry], None]] = []


# --------------------------------------------------------------------------- progress


def complete_step(participant: Participant, step: Step, *, at: datetime | None = None) -> bool:
    """Mark a step done. True only the first time; completing twice changes nothing.

    Records ``step_completed``, gives the step's points, and when this was the module's
    last active step records ``module_completed`` (once) with the module's points.
    """
    at = at or utcnow()
    done = _complete(participant, step, at)
    if done:
        gamification.evaluate_badges(participant, at=at)
    return done


def _complete(participant: Participant, step: Step, at: datetime) -> bool:
    """``complete_step`` without the badge evaluation (callers evaluate once at the end)."""
    if not step.is_active:
        raise ModuleError("This step is no longer part of the module.")
    if _has_progress(participant.id, step.id):
        return False
    try:
        with db.session.begin_nested():
            db.session.add(StepProgress(participant_id=participant.id, step_id=step.id,
                                        completed_at=at))
    except IntegrityError:  # a concurrent request completed it first
        return False
    module = step.module
    record_event(participant, "step_completed", at=at, step=step.key, step_id=step.id,
                 step_kind=step.kind, module=module.key, module_id=module.id)
    gamification.award_points(participant, "step_completed", step.key, at=at)
    _complete_module_if_done(participant, module, at)
    return True


def _has_progress(participant_id: int, step_id: int) -> bool:
    return db.session.scalar(select(StepProgress.id).where(
        StepProgress.participant_id == participant_id, StepProgress.step_id == step_id)
    ) is not None


def _complete_module_if_done(participant: Participant, module: Module, at: datetime) -> None:
    undone = db.session.scalar(
        select(func.count(Step.id)).where(
            Step.module_id == module.id, Step.is_active,
            ~exists().where(StepProgress.step_id == Step.id,
                            StepProgress.participant_id == participant.id)))
    if undone or module.key in completion_events(participant.id):
        return
    record_event(participant, "module_completed", at=at, module=module.key, module_id=module.id)
    gamification.award_points(participant, "module_completed", module.key, at=at)


# --------------------------------------------------------------------------- quizzes


@dataclass(frozen=True)
class QuestionResult:
    index: int
    #: the option indexes chosen, sorted
    chosen: list[int]
    #: the chosen set equals the correct set
    correct: bool
    #: the feedback of each chosen option, in ``chosen`` order (sanitised at sync)
    feedback_html: list[Markup]
    correct_options: list[int]


@dataclass(frozen=True)
class QuizResult:
    #: the fraction of questions answered exactly right, 0..1
    score: float
    passed: bool
    questions: list[QuestionResult]
    #: this attempt is the participant's first pass of the quiz
    first_pass: bool = False
    pass_mark: float = DEFAULT_PASS_MARK


def answer_quiz(participant: Participant, step: Step, answers: dict[int, list[int]]
                ) -> QuizResult:
    """Score an attempt ({question index: chosen option indexes}) and store it.

    A question is right when the chosen set equals its correct set. Passing the first
    time records ``quiz_passed``, gives points and completes the step; failing does not
    complete the step, and the participant may try again.
    """
    _require_kind(step, "quiz")
    questions = step.data.get("questions") or []
    chosen = _check_answers(questions, answers)
    results = [_score_question(i, q, chosen[i]) for i, q in enumerate(questions)]
    right = sum(result.correct for result in results)
    pass_mark = float(step.data.get("pass_mark", DEFAULT_PASS_MARK))
    passed = right >= pass_mark * len(questions) - 1e-9
    first_pass = passed and not _has_passed(participant.id, step.id)
    at = utcnow()
    score = right / len(questions)
    db.session.add(QuizAttempt(participant_id=participant.id, step_id=step.id, at=at,
                               answers={str(i): c for i, c in chosen.items()},
                               score=score, passed=passed))
    record_event(participant, "quiz_answered", at=at, step=step.key, step_id=step.id,
                 score=round(score, 4), right=right, questions=len(questions), passed=passed)
    if first_pass:
        record_event(participant, "quiz_passed", at=at, step=step.key, step_id=step.id,
                     score=round(score, 4))
        gamification.award_points(participant, "quiz_passed", step.key, at=at)
    if passed:
        _complete(participant, step, at)
    gamification.evaluate_badges(participant, at=at)
    return QuizResult(score, passed, results, first_pass, pass_mark)


def _check_answers(questions: list[dict[str, Any]], answers: dict[int, list[int]]
                   ) -> dict[int, list[int]]:
    """Validate the answers; return the sorted, de-duplicated choice of every question."""
    if not questions:
        raise ModuleError("This quiz has no questions.")
    for index in answers:
        if not _is_index(index, len(questions)):
            raise ModuleError(f"There is no question {_human(index)} in this quiz.")
    chosen = {}
    for index, question in enumerate(questions, start=0):
        picks = sorted(set(answers.get(index) or []))
        if not picks:
            raise ModuleError(f"Question {index + 1}: choose at least one answer.")
        for option in picks:
            if not _is_index(option, len(question.get("options", []))):
                raise ModuleError(f"Question {index + 1}: answer {_human(option)} is not one "
                                  "of the choices.")
        chosen[index] = picks
    return chosen


def _is_index(value: Any, length: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < length


def _human(index: Any) -> str:
    return str(index + 1) if isinstance(index, int) else repr(index)


def _score_question(index: int, question: dict[str, Any], chosen: list[int]) -> QuestionResult:
    options = question["options"]
    correct = [i for i, option in enumerate(options) if option.get("correct")]
    return QuestionResult(index, chosen, set(chosen) == set(correct),
                          [_feedback(options[i]) for i in chosen], correct)


def _feedback(option: dict[str, Any]) -> Markup:
    if option.get("feedback_html") is not None:
        return Markup(option["feedback_html"])  # noqa: S704 - sanitised when synced
    return escape(option.get("feedback") or "")


def _has_passed(participant_id: int, step_id: int) -> bool:
    return db.session.scalar(select(QuizAttempt.id).where(
        QuizAttempt.participant_id == participant_id, QuizAttempt.step_id == step_id,
        QuizAttempt.passed).limit(1)) is not None


def _require_kind(step: Step, kind: str) -> None:
    if step.kind != kind:
        raise ModuleError(f"This step is not a {kind} step.")
    if not step.is_active:
        raise ModuleError("This step is no longer part of the module.")


# --------------------------------------------------------------------------- actions


def plan_action(participant: Participant, step: Step) -> ActionPlan:
    """Say "I'll try it": make the plan (once per step), schedule the check, complete the
    step. Planning again returns the existing plan."""
    _require_kind(step, "action")
    plan = _plan_for(participant.id, step.id)
    if plan is not None:
        return plan
    now = utcnow()
    days = int(step.data.get("check_after_days") or DEFAULT_CHECK_AFTER_DAYS)
    plan = ActionPlan(participant_id=participant.id, step_id=step.id, planned_at=now,
                      check_due_at=now + timedelta(days=days))
    try:
        with db.session.begin_nested():
            db.session.add(plan)
    except IntegrityError:  # planned by a concurrent request
        existing = _plan_for(participant.id, step.id)
        assert existing is not None
        return existing
    record_event(participant, "action_planned", at=now, plan=plan.id, step=step.key,
                 step_id=step.id, check_after_days=days)
    gamification.award_points(participant, "action_planned", step.key, at=now)
    _complete(participant, step, now)
    gamification.evaluate_badges(participant, at=now)
    return plan


def _plan_for(participant_id: int, step_id: int) -> ActionPlan | None:
    return db.session.scalar(select(ActionPlan).where(
        ActionPlan.participant_id == participant_id, ActionPlan.step_id == step_id))


def check_action(participant: Participant, plan: ActionPlan, *, tried: bool,
                 rating: int | None) -> None:
    """Answer "did you try it? how did it go?" (rating 1-5 when tried, ignored otherwise).

    Giving the same answer again changes nothing; a different answer (e.g. "not yet",
    then later "yes") updates the plan and records another ``action_checked``. The
    points for trying are given once.
    """
    if plan.participant_id != participant.id:
        raise PermissionDenied("not your action plan")
    rating = _check_rating(rating) if tried else None
    if plan.checked_at is not None and (plan.tried, plan.rating) == (tried, rating):
        return
    now = utcnow()
    plan.checked_at, plan.tried, plan.rating = now, tried, rating
    step = db.session.get(Step, plan.step_id)
    assert step is not None
    record_event(participant, "action_checked", at=now, plan=plan.id, step=step.key,
                 step_id=step.id, tried=tried, rating=rating)
    if tried:
        gamification.award_points(participant, "action_tried", step.key, at=now)
    gamification.evaluate_badges(participant, at=now)


def _check_rating(rating: Any) -> int:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ModuleError("Choose how it went, from 1 (not well) to 5 (really well).")
    return rating


def due_action_checks(participant: Participant) -> list[ActionPlan]:
    """Plans whose "did you try it?" is due and not answered yet, oldest due first.

    Their steps are loaded too, so ``db.session.get(Step, plan.step_id)`` costs nothing.
    """
    rows = db.session.execute(
        select(ActionPlan, Step).join(Step, Step.id == ActionPlan.step_id)
        .where(ActionPlan.participant_id == participant.id, ActionPlan.checked_at.is_(None),
               ActionPlan.check_due_at <= utcnow(), Step.is_active)
        .order_by(ActionPlan.check_due_at, ActionPlan.id)).all()
    return [plan for plan, _step in rows]


# --------------------------------------------------------------------------- reflections


def write_reflection(participant: Participant, step: Step, body: str) -> JournalEntry:
    """Save a private journal entry for a reflect step and complete the step.

    The text never goes into the event; it is passed to every ``REFLECTION_SCREENS``.
    """
    _require_kind(step, "reflect")
    text = (body or "").strip()
    if not text:
        raise ModuleError("Write a few words before saving.")
    if len(text) > REFLECTION_MAX:
        raise ModuleError(f"Please keep your reflection to {REFLECTION_MAX:,} characters "
                          f"(it is {len(text):,} now).")
    now = utcnow()
    entry = JournalEntry(participant_id=participant.id, step_id=step.id, body=text,
                         created_at=now, updated_at=now)
    db.session.add(entry)
    db.session.flush()
    record_event(participant, "reflection_written", at=now, entry=entry.id, step=step.key,
                 step_id=step.id, chars=len(text))
    gamification.award_points(participant, "reflection_written", step.key, at=now)
    _complete(participant, step, now)
    for screen in REFLECTION_SCREENS:
        screen(entry)
    gamification.evaluate_badges(participant, at=now)
    return entry


# --------------------------------------------------------------------------- checkpoints


def rate_checkpoint(participant: Participant, step: Step, rating: int) -> None:
    """Rate how helpful the module was (1-5); rating again replaces the rating."""
    _require_kind(step, "checkpoint")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ModuleError("Choose a rating from 1 (not helpful) to 5 (very helpful).")
    now = utcnow()
    row = _rating_for(participant.id, step.id)
    updated = row is not None
    if row is None:
        try:
            with db.session.begin_nested():
                db.session.add(CheckpointRating(participant_id=participant.id, step_id=step.id,
                                                rating=rating, at=now))
        except IntegrityError:  # rated by a concurrent request: update that row
            row, updated = _rating_for(participant.id, step.id), True
    if row is not None:
        row.rating, row.at = rating, now
    record_event(participant, "checkpoint_rated", at=now, step=step.key, step_id=step.id,
                 module=step.module.key, rating=rating, updated=updated)
    gamification.award_points(participant, "checkpoint_rated", step.key, at=now)
    _complete(participant, step, now)
    gamification.evaluate_badges(participant, at=now)


def _rating_for(participant_id: int, step_id: int) -> CheckpointRating | None:
    return db.session.scalar(select(CheckpointRating).where(
        CheckpointRating.participant_id == participant_id, CheckpointRating.step_id == step_id))


# --------------------------------------------------------------------------- suggestions


def suggest(participant: Participant, module: Module, *, actor: User, step: Step | None = None,
            note: str = "") -> ContentSuggestion:
    """A moderator suggests a module (or one of its steps) to a participant."""
    if actor.role not in MODERATORS:
        raise PermissionDenied("only moderators can suggest content")
    if not module.is_active:
        raise ModuleError("That module is no longer in the library.")
    if step is not None and (step.module_id != module.id or not step.is_active):
        raise ModuleError("That step is not part of the module.")
    note = (note or "").strip()
    if len(note) > SUGGESTION_NOTE_MAX:
        raise ModuleError(f"Please keep the note to {SUGGESTION_NOTE_MAX:,} characters.")
    suggestion = ContentSuggestion(participant_id=participant.id, module_id=module.id,
                                   step_id=step.id if step else None, note=note,
                                   suggested_by_id=actor.id, created_at=utcnow())
    db.session.add(suggestion)
    db.session.flush()
    audit.record("content.suggested", actor=actor, target=participant, suggestion=suggestion.id,
                 module=module.key, step=step.key if step else None)
    return suggestion


def suggestions_for(participant: Participant) -> list[ContentSuggestion]:
    """The participant's suggestions not dismissed yet (active modules only), newest first."""
    return list(db.session.scalars(
        select(ContentSuggestion).join(ContentSuggestion.module)
        .options(contains_eager(ContentSuggestion.module), joinedload(ContentSuggestion.step))
        .where(ContentSuggestion.participant_id == participant.id,
               ContentSuggestion.dismissed_at.is_(None), Module.is_active)
        .order_by(ContentSuggestion.created_at.desc(), ContentSuggestion.id.desc())))


def dismiss_suggestion(participant: Participant, suggestion: ContentSuggestion) -> None:
    """Hide a suggestion from the participant's home page (their own only)."""
    if suggestion.participant_id != participant.id:
        raise PermissionDenied("not your suggestion")
    if suggestion.dismissed_at is None:
        suggestion.dismissed_at = utcnow()
        db.session.flush()
