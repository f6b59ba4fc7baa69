"""Forms of the message pages (both sides), staff notes and content suggestions.

The length limits are the services' own (the browser is told them too); the services
check again, so a caller without a form gets the same refusal.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, SubmitField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from moderation.messages import BODY_MAX
from moderation.notes import NOTE_MAX
from modules.services import SUGGESTION_NOTE_MAX

#: where a staff-page form goes back to after success: the participant's page (its
#: panel) or the form's own page; a name, never a URL
RETURN_TO = ("record", "page")


class ReplyForm(FlaskForm):
    """A participant writes to their moderators."""

    body = TextAreaField("Your message", validators=[
        DataRequired("Please write a message first."),
        Length(max=BODY_MAX, message=f"Please keep the message under {BODY_MAX:,} characters.")])
    submit = SubmitField("Send")


class StaffMessageForm(FlaskForm):
    body = TextAreaField("Message", validators=[
        DataRequired("Please write a message first."),
        Length(max=BODY_MAX, message=f"Please keep the message under {BODY_MAX:,} characters.")])
    by_sms = BooleanField("Also send it as a text message")
    submit = SubmitField("Send message")


class NoteForm(FlaskForm):
    """Prefixed: the staff page of a participant carries several panels' forms."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("prefix", "note")
        super().__init__(*args, **kwargs)

    body = TextAreaField("Note", validators=[
        DataRequired("Please write the note first."),
        Length(max=NOTE_MAX, message=f"Please keep the note under {NOTE_MAX:,} characters.")])
    clinician_only = BooleanField("Only clinicians may read this note")
    return_to = HiddenField(default="page", validators=[Optional(), AnyOf(RETURN_TO)])
    submit = SubmitField("Add note")


class SuggestForm(FlaskForm):
    """Prefixed: the staff page of a participant carries several panels' forms."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("prefix", "suggest")
        super().__init__(*args, **kwargs)

    module = SelectField("Module", validators=[DataRequired("Choose a module.")],
                         validate_choice=False)
    step = SelectField("Step (optional)", validators=[Optional()], validate_choice=False)
    note = TextAreaField("A note for them (optional)", validators=[
        Optional(), Length(max=SUGGESTION_NOTE_MAX,
                           message=f"Please keep the note to {SUGGESTION_NOTE_MAX:,} characters.")])
    return_to = HiddenField(default="page", validators=[Optional(), AnyOf(RETURN_TO)])
    submit = SubmitField("Suggest")

