"""Forms of the participant pages: mood, reflections, quizzes, actions, checkpoints.

Radio groups are rendered by ``modules/_choices.html`` as a fieldset with a legend;
these classes only parse and validate.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, SelectMultipleField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from modules.mood import MOOD_SCALE, NOTE_MAX
from modules.services import REFLECTION_MAX

#: the words on a 1-5 rating of how something went or how helpful it was
HELPFUL_WORDS = [(1, "Not at all"), (2, "A little"), (3, "Somewhat"), (4, "Quite a lot"),
                 (5, "Very much")]
WENT_WORDS = [(1, "Not well"), (2, "Not so well"), (3, "Okay"), (4, "Well"), (5, "Really well")]


class ChoiceField(RadioField):
    """A radio group of whole numbers whose missing or made-up answer gets one plain
    message (instead of WTForms' "Not a valid choice")."""

    def __init__(self, label: str, choices: list[tuple[int, str]], *, message: str,
                 required: bool = True, **kwargs: Any) -> None:
        validators = [InputRequired(message)] if required else [Optional()]
        super().__init__(label, choices=_choices(choices), coerce=int, validate_choice=False,
                         validators=validators, **kwargs)
        self.message = message

    def process_formdata(self, valuelist: list[str]) -> None:
        if valuelist:
            try:
                self.data = int(valuelist[0])
            except ValueError as exc:
                self.data = None
                raise ValueError(self.message) from exc

    def pre_validate(self, form: Any) -> None:
        if self.data is not None and self.data not in {choice.value for choice in self.choices}:
            raise ValidationError(self.message)


def _choices(pairs: list[tuple[int, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]  # type: ignore[arg-type]


def _rating_field(label: str, words: list[tuple[int, str]], *, required: bool) -> ChoiceField:
    return ChoiceField(label, [(n, f"{n} · {w}") for n, w in words],
                       message="Choose a number from 1 to 5.", required=required)


class MoodForm(FlaskForm):
    score = ChoiceField("How are you feeling today?",
                        [(value, word) for value, word, _ in MOOD_SCALE],
                        message="Choose how you feel today, from 1 to 5.")
    note = TextAreaField("Anything you want to add?",
                         validators=[Optional(), Length(max=NOTE_MAX,
                                                        message=f"Please keep it under "
                                                                f"{NOTE_MAX} characters.")])
    submit = SubmitField("Save my mood")


class ReflectionForm(FlaskForm):
    body = TextAreaField("Your reflection", validators=[
        DataRequired("Write a few words first. Even one line is fine."),
        Length(max=REFLECTION_MAX, message=f"Please keep it under {REFLECTION_MAX} characters.")])
    submit = SubmitField("Save my reflection")


class CheckpointForm(FlaskForm):
    rating = _rating_field("How helpful was this module for you?", HELPFUL_WORDS, required=True)
    submit = SubmitField("Send my rating")


class ActionCheckForm(FlaskForm):
    """"Did you try it?" A rating is asked for only when they did."""

    tried = RadioField("Did you try it?",
                       choices=[SelectChoice("yes", "Yes, I tried it"),
                                SelectChoice("no", "Not yet, or no")],
                       validators=[InputRequired("Tell us whether you tried it.")])
    rating = _rating_field("If you tried it, how did it go?", WENT_WORDS, required=False)
    submit = SubmitField("Send")

    def validate(self, extra_validators: Any = None) -> bool:
        # Not a validate_rating method: the field's Optional() would skip it when empty.
        valid = super().validate(extra_validators)
        if self.tried.data == "yes" and self.rating.data is None and not self.rating.errors:
            self.rating.errors = ["Choose how it went, from 1 to 5."]
            return False
        return valid


class ButtonForm(FlaskForm):
    """A bare form for state-changing buttons (CSRF only): mark as done, plan, dismiss."""

    submit = SubmitField("Continue")


class QuizForm(FlaskForm):
    """Built per quiz by :func:`quiz_form`: one field ``q<n>`` per question."""

    question_names: tuple[str, ...] = ()
    submit = SubmitField("Check my answers")

    def question_fields(self) -> list[Any]:
        return [self[name] for name in self.question_names]

    def answers(self) -> dict[int, list[int]]:
        """{question index: chosen option indexes}, as ``services.answer_quiz`` takes them."""
        return {index: _as_list(self[name].data) for index, name in enumerate(self.question_names)}


def _as_list(data: Any) -> list[int]:
    if data is None:
        return []
    return [int(v) for v in data] if isinstance(data, list) else [int(data)]


def quiz_form(questions: list[dict[str, Any]], **kwargs: Any) -> QuizForm:
    """A form for a quiz step's ``data["questions"]``: radios for a question with one
    correct answer, checkboxes ("choose all that apply") for several."""
    fields: dict[str, Any] = {"question_names": tuple(f"q{i}" for i in range(len(questions)))}
    for index, question in enumerate(questions):
        choices = [(i, option["text"]) for i, option in enumerate(question["options"])]
        if is_multiple(question):
            fields[f"q{index}"] = SelectMultipleField(
                question["text"], coerce=int, choices=_choices(choices),
                validators=[DataRequired("Choose at least one answer.")],
                invalid_choice_message="Choose from the answers shown.")
        else:
            fields[f"q{index}"] = ChoiceField(question["text"], choices,
                                              message="Choose an answer.")
    form_class = type("StepQuizForm", (QuizForm,), fields)
    return form_class(**kwargs)


def is_multiple(question: dict[str, Any]) -> bool:
    """A "choose all that apply" question (the sync stores it; older rows are counted)."""
    if "multiple" in question:
        return bool(question["multiple"])
    return sum(1 for option in question["options"] if option.get("correct")) > 1
