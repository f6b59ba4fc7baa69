"""Forms of the review queue. Every action form carries the item's ``version``."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Regexp

from moderation.models import CATEGORIES
from moderation.queue import REASONS, SUSPEND_DAYS, WARN_MAX

_REASONS = [SelectChoice("", "Choose why"), *(SelectChoice(k, v) for k, v in REASONS.items())]


class ActionForm(FlaskForm):
    """Approve, unhide, redact, escalate: nothing to fill in but the version."""

    version = HiddenField(validators=[DataRequired(), Regexp(r"^\d{1,9}$")])
    submit = SubmitField("Go")


class HideForm(ActionForm):
    reason = SelectField("Why hide it", choices=_REASONS,
                         validators=[DataRequired("Choose why.")])
    submit = SubmitField("Hide")


class WarnForm(ActionForm):
    reason = SelectField("Why", choices=_REASONS, validators=[DataRequired("Choose why.")])
    message = TextAreaField("Message to the author",
                            validators=[DataRequired("Write the message the author will read."),
                                        Length(max=WARN_MAX)])
    submit = SubmitField("Send the message")


class SuspendForm(ActionForm):
    days = IntegerField("Days without posting",
                        validators=[InputRequired("Say for how many days."),
                                    NumberRange(*SUSPEND_DAYS)])
    reason = SelectField("Why", choices=_REASONS, validators=[DataRequired("Choose why.")])
    submit = SubmitField("Suspend posting")


class OptOutForm(FlaskForm):
    categories = SelectMultipleField("Categories I do not want to see",
                                     choices=[SelectChoice(k, v) for k, v in CATEGORIES.items()])
    submit = SubmitField("Save")
