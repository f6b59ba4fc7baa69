"""Researcher forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from core.models import Participant
from outcomes.models import Study
from outcomes.participants import WITHDRAWAL_KINDS
from outcomes.randomisation import levels_of


class EnrolForm(FlaskForm):
    study_code = StringField("Study code (leave empty to generate one)",
                             validators=[Optional(), Length(max=40)])
    site = StringField("Site", validators=[Optional(), Length(max=80)])
    moderator_id = SelectField("Moderator", coerce=int, validators=[Optional()])
    submit = SubmitField("Enrol and create invite link")


class WithdrawForm(FlaskForm):
    kind = RadioField("What are they withdrawing from?",
                      choices=[SelectChoice(k, label) for k, label in WITHDRAWAL_KINDS.items()],
                      validators=[InputRequired("Choose what they are withdrawing from.")])
    day = DateField("Date they withdrew (leave empty for today)", validators=[Optional()])
    reason = TextAreaField("Reason", validators=[DataRequired("Give the reason for the "
                                                              "withdrawal."),
                                                 Length(max=2000)])
    submit = SubmitField("Record withdrawal")


class StatusForm(FlaskForm):
    to = HiddenField(validators=[DataRequired()])


#: prefix of the randomisation form's fields, one per stratification factor
STRATUM_FIELD = "stratum_"


class RandomiseForm(FlaskForm):
    submit = SubmitField("Randomise")

    def strata(self) -> dict[str, str]:
        """The stratum values typed, by factor name."""
        return {name.removeprefix(STRATUM_FIELD): field.data for name, field in self._fields.items()
                if name.startswith(STRATUM_FIELD)}

    def stratum_fields(self) -> list:
        return [field for name, field in self._fields.items() if name.startswith(STRATUM_FIELD)]


def randomise_form(study: Study, participant: Participant, **kwargs: object) -> RandomiseForm:
    """A form with a choice for each stratification factor; the site only when the
    participant's recorded site is not one of the study's (otherwise theirs is used)."""
    class Form(RandomiseForm):
        pass

    for factor, values in levels_of(study).items():
        if factor == "site" and participant.site in values:
            continue
        choices = [SelectChoice("", "Choose…")] + [SelectChoice(v, v) for v in values]
        setattr(Form, STRATUM_FIELD + factor,
                SelectField(factor.replace("_", " ").capitalize(), choices=choices,
                            validators=[DataRequired(f"Choose the participant's "
                                                     f"{factor.replace('_', ' ')}.")]))
    return Form(**kwargs)
