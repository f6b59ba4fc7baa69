"""Forms of the forum pages. They parse and check lengths; the rules that need the
database (rate limits, edit window, screening) live in ``forum.services``."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from forum.reports import NOTE_MAX, REASONS
from forum.services import BODY_MAX, COMMENT_MAX, KIND_LABELS, REACTIONS, TITLE_MAX

KIND_HINTS = {
    "post": "Share how you are, something that went well, or something on your mind.",
    "talk_it_out": "Describe a problem; others suggest ways forward, and you mark what helped.",
}


class PostForm(FlaskForm):
    kind = RadioField("What would you like to do?", default="post",
                      choices=[SelectChoice(k, v) for k, v in KIND_LABELS.items()],
                      validators=[InputRequired("Please choose what kind of post this is.")])
    title = StringField("In a sentence, what would you like help with?",
                        validators=[Optional(), Length(max=TITLE_MAX)])
    body = TextAreaField("Your post", validators=[Length(max=BODY_MAX)])


class EditPostForm(FlaskForm):
    title = StringField("In a sentence, what would you like help with?",
                        validators=[Optional(), Length(max=TITLE_MAX)])
    body = TextAreaField("Your post", validators=[Length(max=BODY_MAX)])


class CommentForm(FlaskForm):
    body = TextAreaField("Your comment", validators=[Length(max=COMMENT_MAX)])
    parent_id = HiddenField()


class EditCommentForm(FlaskForm):
    body = TextAreaField("Your comment", validators=[Length(max=COMMENT_MAX)])


class ReactionForm(FlaskForm):
    #: sent by the reaction button that was pressed
    kind = HiddenField(validators=[InputRequired()])

    def validate_kind(self, field: HiddenField) -> None:
        if field.data not in REACTIONS:
            raise ValidationError("Please choose one of the reactions.")


class ReportForm(FlaskForm):
    reason = RadioField("Why are you reporting this?",
                        choices=[SelectChoice(k, v) for k, v in REASONS.items()],
                        validators=[InputRequired("Please choose a reason.")])
    note = TextAreaField("Anything the moderator should know? (optional)",
                         validators=[Optional(), Length(max=NOTE_MAX)])
