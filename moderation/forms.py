"""Forms of the watched-words, rota and risk-alert pages."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms import (
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from moderation.alerts import DEADLINE_RANGE, NOTE_MAX
from moderation.models import ALERT_ACTIONS, CATEGORIES, RULE_ACTIONS, RULE_KINDS, SEVERITIES
from moderation.rules import MESSAGE_MAX, TEXT_MAX


def _choices(pairs: Iterable[tuple[object, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class RuleForm(FlaskForm):
    category = SelectField("Category", choices=_choices(CATEGORIES.items()),
                           validators=[DataRequired()])
    severity = SelectField("Severity", choices=_choices((s, s.title()) for s in SEVERITIES),
                           validators=[DataRequired()])
    action = SelectField("What happens", choices=_choices(RULE_ACTIONS.items()),
                         validators=[DataRequired()])
    kind = SelectField("Kind", choices=_choices(RULE_KINDS.items()), validators=[DataRequired()])
    text = StringField("Phrase or pattern", validators=[DataRequired(), Length(max=TEXT_MAX)])
    unless = TextAreaField("Unless (one phrase per line)",
                           validators=[Optional(), Length(max=10_000)])
    message = TextAreaField("Kind message for the author (hold or block)",
                            validators=[Optional(), Length(max=MESSAGE_MAX)])
    submit = SubmitField("Save rule")

    def rule_data(self) -> dict[str, object]:
        return {"category": self.category.data, "severity": self.severity.data,
                "action": self.action.data, "kind": self.kind.data, "text": self.text.data,
                "unless": (self.unless.data or "").splitlines(), "message": self.message.data}


class RulesImportForm(FlaskForm):
    yaml_text = TextAreaField("Rules (YAML)", validators=[DataRequired(), Length(max=500_000)])
    submit = SubmitField("Check and import")


class TryTextForm(FlaskForm):
    sample = TextAreaField("Try a text", validators=[DataRequired(), Length(max=5000)])
    channel = SelectField("As", choices=_choices([("forum_post", "A forum post"),
                                                  ("reflection", "A journal reflection"),
                                                  ("sms", "An SMS reply")]))
    submit = SubmitField("Check")


class RotaAddForm(FlaskForm):
    user_id = SelectField("Clinician", coerce=int, validators=[InputRequired()])
    phone = StringField("Mobile for alert texts (optional)",
                        validators=[Optional(), Length(max=30)])
    submit = SubmitField("Add to the rota")


class RotaPhoneForm(FlaskForm):
    phone = StringField("Mobile for alert texts", validators=[Optional(), Length(max=30)])
    submit = SubmitField("Save number")


class RotaMoveForm(FlaskForm):
    direction = RadioField("Move", choices=_choices([("top", "Take on-call"), ("up", "Up"),
                                                     ("down", "Down")]),
                           validators=[DataRequired()])
    submit = SubmitField("Move")


class DeadlineForm(FlaskForm):
    minutes = IntegerField("Response deadline (minutes)",
                           validators=[InputRequired(), NumberRange(*DEADLINE_RANGE)])
    submit = SubmitField("Save deadline")


class ResolveForm(FlaskForm):
    actions = SelectMultipleField("What was done", choices=_choices(ALERT_ACTIONS.items()),
                                  validators=[DataRequired("Choose what was done.")])
    adverse_event = RadioField("Could this be an adverse event of the study?",
                               choices=_choices([("no", "No"), ("yes", "Yes, possibly")]),
                               validators=[DataRequired("Say whether it could be.")])
    note = TextAreaField("Note for the clinical team (optional)",
                         validators=[Optional(), Length(max=NOTE_MAX)])
    submit = SubmitField("Resolve alert")
