"""Forms of the core pages. Validation that needs the database lives in services."""

from __future__ import annotations

import functools
import zoneinfo

from flask import flash
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional

from core.roles import ROLE_LABELS, Role


@functools.cache
def timezone_choices() -> list[SelectChoice]:
    legacy = ("Etc/", "SystemV/", "US/", "posix/", "right/")
    zones = sorted(z for z in zoneinfo.available_timezones()
                   if "/" in z and not z.startswith(legacy))
    return [SelectChoice(z, z.replace("_", " ")) for z in zones]


def staff_role_choices() -> list[SelectChoice]:
    return [SelectChoice(r.value, ROLE_LABELS[r]) for r in Role if r != Role.PARTICIPANT]


def show_error(form: FlaskForm, exc: Exception, field: str | None = None) -> None:
    """Put a service's refusal next to the field it names (``exc.field``), or flash it at
    the top of the page; the form keeps everything that was typed."""
    name = field or getattr(exc, "field", None)
    target = form[name] if name and name in form else None
    if target is not None:
        target.errors = [*target.errors, str(exc)]
    else:
        flash(str(exc), "error")


SAME_PASSWORD = EqualTo("password", "The passwords differ.")


class LoginForm(FlaskForm):
    identifier = StringField("E-mail, study code or display name",
                             validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    next = HiddenField()
    submit = SubmitField("Sign in")


class CodeForm(FlaskForm):
    code = StringField("Code from your authenticator app, or a recovery code",
                       validators=[DataRequired(), Length(max=20)])
    submit = SubmitField("Continue")


class MfaSetupForm(FlaskForm):
    code = StringField("The 6-digit code your app shows now",
                       validators=[DataRequired(), Length(min=6, max=8)])
    submit = SubmitField("Turn on two-step sign-in")


class InviteForm(FlaskForm):
    display_name = StringField("Display name", validators=[DataRequired(), Length(max=40)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField("Type the password again",
                            validators=[DataRequired(), SAME_PASSWORD])
    timezone = SelectField("Your time zone", validators=[DataRequired()])
    phone = StringField("Mobile number (optional)", validators=[Optional(), Length(max=30)])
    sms_consent = BooleanField("I agree to receive text messages from the study")
    consent_version_id = HiddenField(validators=[DataRequired()])
    consent = BooleanField("I have read the information above and I agree to take part",
                           validators=[InputRequired("You need to agree to take part.")])
    submit = SubmitField("Create my account")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class ReconsentForm(FlaskForm):
    consent_version_id = HiddenField(validators=[DataRequired()])
    sms_consent = BooleanField("I agree to receive text messages from the study")
    agree = SubmitField("I agree")
    decline = SubmitField("I do not agree")


class ProfileForm(FlaskForm):
    display_name = StringField("Display name", validators=[DataRequired(), Length(max=40)])
    timezone = SelectField("Your time zone", validators=[DataRequired()])
    phone = StringField("Mobile number", validators=[Optional(), Length(max=30)])
    sms_consent = BooleanField("Send me text messages from the study")
    wake_start = TimeField("My day usually starts at", validators=[DataRequired()])
    wake_end = TimeField("My day usually ends at", validators=[DataRequired()])
    submit = SubmitField("Save changes")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField("Type the new password again",
                            validators=[DataRequired(), SAME_PASSWORD])
    submit = SubmitField("Change password")


class ConfirmForm(FlaskForm):
    """A bare form for buttons that change state (CSRF only)."""

    submit = SubmitField("Confirm")


class PasswordConfirmForm(FlaskForm):
    """For changes that weaken an account: the password proves it is really its owner."""

    password = PasswordField("Your password", validators=[DataRequired(), Length(max=256)])
    submit = SubmitField("Turn off two-step sign-in")


class StaffForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    display_name = StringField("Name shown to participants (optional)",
                               validators=[Optional(), Length(max=40)])
    role = SelectField("Role", choices=staff_role_choices(), validators=[DataRequired()])
    password = PasswordField("First password", validators=[DataRequired(), Length(max=256)])
    submit = SubmitField("Create account")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=staff_role_choices(), validators=[DataRequired()])
    submit = SubmitField("Change role")


class SettingsForm(FlaskForm):
    site_name = StringField("Site name", validators=[DataRequired(), Length(max=60)])
    crisis_intro = TextAreaField("Crisis page introduction",
                                 validators=[DataRequired(), Length(max=1000)])
    crisis_resources = TextAreaField(
        "Crisis resources, one per line: name | phone | web address | when to use it",
        validators=[DataRequired(), Length(max=5000)])
    study_contact = TextAreaField("Study contact", validators=[DataRequired(), Length(max=500)])
    submit = SubmitField("Save settings")


class ConsentVersionForm(FlaskForm):
    version = StringField("Version label", validators=[DataRequired(), Length(max=20)])
    text = TextAreaField("Consent text (Markdown)", validators=[DataRequired(), Length(max=50000)])
    submit = SubmitField("Publish (participants will be asked to agree again)")
