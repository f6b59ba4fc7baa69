"""Quizzes: scoring (single and "choose all that apply"), feedback, rejections, passing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from markupsafe import Markup
from sqlalchemy import select

from core import clock
from core.extensions import db
from modules import gamification, services
from modules.models import QuizAttempt, StepProgress
from modules.services import ModuleError
from tests.factories import make_participant
from tests.modules.content_rows import (
    add_step,
    count_of,
    events_of,
    make_module,
    quiz_data,
    step_of,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RIGHT = {0: [1], 1: [0, 2]}


@pytest.fixture
def ctx(app):
    clock.set_time(NOW)
    with app.app_context():
        yield


def _quiz(**data):
    module = make_module("m", kinds=("read",))
    return add_step(module, "quiz", key="m-quiz", data=quiz_data(**data))


def test_all_right_scores_one_and_passes(ctx):
    participant = make_participant(arm="guided")
    result = services.answer_quiz(participant, _quiz(), RIGHT)
    assert (result.score, result.passed, result.first_pass) == (1.0, True, True)
    assert [q.correct for q in result.questions] == [True, True]
    assert [q.correct_options for q in result.questions] == [[1], [0, 2]]


def test_a_multi_answer_question_needs_exactly_the_correct_set(ctx):
    """It marks a "choose all that apply" question right only for the exact set."""
    participant = make_participant(arm="guided")
    step = _quiz()
    for chosen in ([0], [2], [0, 1, 2], [1]):
        result = services.answer_quiz(participant, step, {0: [1], 1: chosen})
        assert result.questions[1].correct is False
        assert result.score == 0.5
    result = services.answer_quiz(participant, step, {0: [1], 1: [2, 0, 2]})
    assert result.questions[1].correct and result.questions[1].chosen == [0, 2]


def test_feedback_is_given_for_each_chosen_option(ctx):
    participant = make_participant(arm="guided")
    result = services.answer_quiz(participant, _quiz(), {0: [0], 1: [2, 1]})
    assert result.questions[0].feedback_html == ["<p>Not quite.</p>"]
    assert result.questions[1].feedback_html == ["<p>Hmm.</p>", "<p>Yes!</p>"]
    assert all(isinstance(f, Markup) for q in result.questions for f in q.feedback_html)


def test_plain_text_feedback_is_escaped(ctx):
    participant = make_participant(arm="guided")
    data = quiz_data()
    data["questions"][0]["options"][0] = {"text": "Yes", "correct": False,
                                          "feedback": "<b>not</b> quite"}
    step = add_step(make_module("m", kinds=("read",)), "quiz", key="q", data=data)
    result = services.answer_quiz(participant, step, {0: [0], 1: [0]})
    assert str(result.questions[0].feedback_html[0]) == "&lt;b&gt;not&lt;/b&gt; quite"


@pytest.mark.parametrize(("answers", "message"), [
    ({0: [1]}, "Question 2: choose at least one answer."),
    ({0: [1], 1: []}, "Question 2: choose at least one answer."),
    ({0: [], 1: [0]}, "Question 1: choose at least one answer."),
    ({0: [1], 1: [0], 2: [0]}, "There is no question 3 in this quiz."),
    ({0: [1], 1: [0], -1: [0]}, "There is no question 0 in this quiz."),
    ({0: [2], 1: [0]}, "Question 1: answer 3 is not one of the choices."),
    ({0: [1], 1: [-1]}, "Question 2: answer 0 is not one of the choices."),
])
def test_bad_answers_are_rejected_naming_the_question(ctx, answers, message):
    """It refuses incomplete or impossible answers and stores nothing."""
    participant = make_participant(arm="guided")
    step = _quiz()
    with pytest.raises(ModuleError) as raised:
        services.answer_quiz(participant, step, answers)
    assert str(raised.value) == message
    assert count_of(QuizAttempt) == 0 and events_of(participant.id, "quiz_answered") == []


def test_only_quiz_steps_take_answers(ctx):
    participant = make_participant(arm="guided")
    with pytest.raises(ModuleError, match="not a quiz step"):
        services.answer_quiz(participant, step_of(make_module("m"), "read"), RIGHT)


def test_failing_does_not_complete_the_step_and_a_retry_may_pass(ctx):
    """It stores every attempt; a fail leaves the step open; a later pass completes it."""
    participant = make_participant(arm="guided")
    step = _quiz(pass_mark=1.0)
    failed = services.answer_quiz(participant, step, {0: [1], 1: [0]})
    assert (failed.score, failed.passed) == (0.5, False)
    assert count_of(StepProgress) == 0
    assert events_of(participant.id, "quiz_passed") == []
    passed = services.answer_quiz(participant, step, RIGHT)
    db.session.commit()
    assert passed.passed and passed.first_pass
    assert count_of(StepProgress, StepProgress.step_id == step.id) == 1
    attempts = db.session.scalars(select(QuizAttempt).order_by(QuizAttempt.id)).all()
    assert [(a.passed, a.answers) for a in attempts] == [
        (False, {"0": [1], "1": [0]}), (True, {"0": [1], "1": [0, 2]})]


def test_passing_again_rewards_once(ctx):
    """It records quiz_passed and its points once, however many passing attempts."""
    participant = make_participant(arm="guided")
    step = _quiz()
    services.answer_quiz(participant, step, RIGHT)
    again = services.answer_quiz(participant, step, RIGHT)
    services.answer_quiz(participant, step, {0: [1], 1: [1]})
    db.session.commit()
    assert again.passed and not again.first_pass
    assert len(events_of(participant.id, "quiz_answered")) == 3
    assert len(events_of(participant.id, "quiz_passed")) == 1
    assert len(events_of(participant.id, "step_completed")) == 1
    # quiz 20 + step 10 (the module's read step is not done, so no module points)
    assert gamification.total_points(participant) == 30


def test_pass_mark_defaults_to_half(ctx):
    participant = make_participant(arm="guided")
    assert services.answer_quiz(participant, _quiz(), {0: [1], 1: [1]}).passed


def test_pass_mark_is_a_fraction_of_questions(ctx):
    participant = make_participant(arm="guided")
    data = quiz_data(pass_mark=0.67)
    data["questions"].append(data["questions"][0])
    step = add_step(make_module("m", kinds=("read",)), "quiz", key="q3", data=data)
    result = services.answer_quiz(participant, step, {0: [1], 1: [0, 2], 2: [0]})
    assert round(result.score, 3) == 0.667 and not result.passed
    assert services.answer_quiz(participant, step, {0: [1], 1: [0, 2], 2: [1]}).passed


def test_quiz_events_hold_scores_not_answers(ctx):
    participant = make_participant(arm="guided")
    step = _quiz()
    services.answer_quiz(participant, step, RIGHT)
    [answered] = events_of(participant.id, "quiz_answered")
    assert answered.detail == {"step": step.key, "step_id": step.id, "score": 1.0, "right": 2,
                               "questions": 2, "passed": True}
