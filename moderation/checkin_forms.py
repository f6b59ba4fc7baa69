"""Forms of the check-in pages: completing and cancelling a task, adding one by hand,
templates, per-study rule settings and the fidelity date range."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import HiddenInput

from moderation.care_models import CHECKIN_CHANNELS, CHECKIN_OUTCOMES, CHECKIN_REASONS
from moderation.checkins.settings import DUE_HOURS_RANGE, SPECS, RuleSetting
from moderation.checkins.tasks import CANCEL_MAX, NOTE_MAX
from moderation.checkins.wording import BODY_MAX, TITLE_MAX

DUE_CHOICES = [SelectChoice(24, "Tomorrow (24 hours)"), SelectChoice(48, "In 2 days"),
               SelectChoice(72, "In 3 days"), SelectChoice(168, "In a week")]


def _version_field() -> IntegerField:
    return IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class CompleteForm(FlaskForm):
    channel = RadioField("How did you get in touch?",
                         choices=[SelectChoice(k, v) for k, v in CHECKIN_CHANNELS.items()],
                         validators=[DataRequired("Choose how you got in touch.")])
    body = TextAreaField("Message", validators=[Optional(), Length(max=10_000)])
    outcome = RadioField("What came of it?",
                         choices=[SelectChoice(k, v) for k, v in CHECKIN_OUTCOMES.items()],
                         validators=[DataRequired("Choose what came of it.")])
    note = TextAreaField("Staff note (optional, never shown to the participant)",
                         validators=[Optional(), Length(max=NOTE_MAX)])
    version = _version_field()
    submit = SubmitField("Complete check-in")

    def without_sms(self) -> None:
        self.channel.choices = [c for c in self.channel.choices if c.value != "sms"]


class CancelForm(FlaskForm):
    reason = TextAreaField("Why is it not needed?",
                           validators=[DataRequired("Say why the check-in is not needed."),
                                       Length(max=CANCEL_MAX)])
    version = _version_field()
    submit = SubmitField("Cancel check-in")


class ManualTaskForm(FlaskForm):
    due_hours = SelectField("Due", coerce=int, choices=DUE_CHOICES, default=48,
                            validators=[InputRequired()])
    note = TextAreaField("What to check in about (optional, staff only)",
                         validators=[Optional(), Length(max=NOTE_MAX)])
    submit = SubmitField("Add a check-in")


class TemplateForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired("Give the template a title."),
                                             Length(max=TITLE_MAX)])
    reason = SelectField("Suits check-ins for",
                         choices=[SelectChoice("", "Any reason"),
                                  *(SelectChoice(k, v) for k, v in CHECKIN_REASONS.items())])
    body = TextAreaField("Message", validators=[DataRequired("Write the message."),
                                                Length(max=BODY_MAX * 10)])
    submit = SubmitField("Save template")


# --------------------------------------------------------------------------- rule settings


def _rule_form(reason: str) -> type[Form]:
    spec = SPECS[reason]
    fields: dict[str, Any] = {"is_enabled": BooleanField("Make check-ins for this rule")}
    if spec.threshold_label:
        fields["threshold"] = IntegerField(
            spec.threshold_label,
            validators=[InputRequired("Give a whole number."),
                        NumberRange(spec.low, spec.high,
                                    f"Choose a whole number from {spec.low} to {spec.high}.")])
    low, high = DUE_HOURS_RANGE
    fields["due_hours"] = IntegerField(
        "Due within (hours)",
        validators=[InputRequired("Give a number of hours."),
                    NumberRange(low, high, f"Choose from {low} to {high} hours (two weeks).")])
    return type(f"{reason.title()}RuleForm", (Form,), fields)


def _settings_form() -> type[FlaskForm]:
    fields: dict[str, Any] = {reason: FormField(_rule_form(reason), label=CHECKIN_REASONS[reason])
                              for reason in SPECS}
    fields["submit"] = SubmitField("Save rules")
    return type("RuleSettingsForm", (FlaskForm,), fields)


RuleSettingsForm = _settings_form()


def settings_data(settings: dict[str, RuleSetting]) -> dict[str, dict[str, Any]]:
    """The stored settings as form data."""
    return {reason: {"is_enabled": s.is_enabled, "threshold": s.threshold,
                     "due_hours": s.due_hours} for reason, s in settings.items()}


def settings_from(form: FlaskForm) -> list[RuleSetting]:
    settings = []
    for reason in SPECS:
        sub = form[reason].form
        threshold = sub.threshold.data if "threshold" in sub else None
        settings.append(RuleSetting(reason, bool(sub.is_enabled.data), threshold,
                                    sub.due_hours.data))
    return settings


class RangeForm(FlaskForm):
    class Meta:
        csrf = False

    start = DateField("From", validators=[Optional()])
    end = DateField("To (included)", validators=[Optional()])
    study = SelectField("Study", choices=[SelectChoice("", "All studies")], default="")
    submit = SubmitField("Show")

    def offer_studies(self, studies: list[Any]) -> None:
        self.study.choices = [SelectChoice("", "All studies"),
                              *(SelectChoice(str(s.id), s.name) for s in studies)]

    def chosen_study(self) -> int | None:
        """The chosen study's id (one of those offered), or None for all."""
        value = self.study.data or ""
        return int(value) if value.isdigit() else None
