"""Researcher forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import Length, Optional


class EnrolForm(FlaskForm):
    study_code = StringField("Study code (leave empty to generate one)",
                             validators=[Optional(), Length(max=40)])
    site = StringField("Site", validators=[Optional(), Length(max=80)])
    moderator_id = SelectField("Moderator", coerce=int, validators=[Optional()])
    submit = SubmitField("Enrol and create invite link")
