"""Message pages on both sides of the conversation.

- ``/messages`` (blueprint ``inbox``, participants only): the participant's one
  conversation with their moderators, oldest first, and a form to write. It carries no
  participant id: each participant only ever reaches their own. Opening it marks the
  moderators' messages (and the notifications about them) read.
- ``/moderation/participants/<id>/messages`` (moderators who may see that participant,
  ``moderation.services.can_view``; others get 403): the conversation and the send form,
  with "also send as a text" offered only when the participant may be texted. Opening it
  is audited and marks the participant's messages read.

The ``inbox`` blueprint hangs off moderation's blueprint (registered on the app with it)
so the participant's address is short and has no "/moderation" in it. This module also
puts the "messages" panel and the "message" timeline source on the staff page of a
participant (``moderation.record``) and the "Messages" entry in participants' navigation.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_login import current_user

from core import navigation, principal
from core.access import role_required
from core.extensions import db
from core.forms import show_error
from core.models import Participant
from core.roles import MODERATORS, Role
from core.sms.statuses import meaning
from moderation import alerts, messages, record
from moderation import bp as moderation_bp
from moderation.care_models import ModeratorMessage
from moderation.message_forms import ReplyForm, StaffMessageForm
from moderation.services import can_view
from outcomes.participants import may_contact
from outcomes.services import features_for

bp = Blueprint("inbox", __name__, url_prefix="/messages")
participant_only = role_required(Role.PARTICIPANT)
moderators_only = role_required(*MODERATORS)


def unread_count(user: Any) -> int:
    """The participant's unread messages from their moderators (0 for anyone else), for
    the navigation: loaded with the session (``core.principal``), else one query."""
    participant = getattr(user, "participant", None) \
        if getattr(user, "is_authenticated", False) else None
    if participant is None:
        return 0
    if "kinship_unread_messages" not in g:
        g.kinship_unread_messages = principal.fact(
            "unread_messages", user, lambda: messages.unread_for_participant(participant))
    return g.kinship_unread_messages


def _register(state) -> None:  # noqa: ANN001 - Flask's BlueprintSetupState
    state.app.register_blueprint(bp)


moderation_bp.record_once(_register)


def may_write(participant: Participant) -> bool:
    """Whether the participant may write to the moderators: still in the study, and their
    study group has moderator contact (or a moderator has already written to them)."""
    if not may_contact(participant):
        return False
    return bool(features_for(participant.user).get("checkins")) \
        or messages.has_conversation(participant)


def _has_messages_entry(user: Any) -> bool:
    participant = getattr(user, "participant", None)
    return participant is not None and may_write(participant)


principal.register("unread_messages", messages.unread_for_participant_fact)
navigation.add("Messages", "inbox.index", {Role.PARTICIPANT}, order=40,
               visible=_has_messages_entry, count=unread_count)


# --------------------------------------------------------------------------- participant


def _inbox_page(participant: Participant, form: ReplyForm, *,
                new: frozenset[int] = frozenset()):
    return render_template(
        "inbox/index.html", person=participant, form=form,
        conversation=messages.conversation(participant), may_write=may_write(participant),
        body_max=messages.BODY_MAX, staff_name=messages.staff_name, new=new)


def _after_writing(written: messages.Written):
    if written.is_risk:  # as the forum does: the crisis resources at once
        flash(alerts.AUTHOR_MESSAGE, "info")
        return redirect(url_for("core.crisis"))
    flash("Sent. Your moderator will read it and answer here.", "success")
    return redirect(url_for("inbox.index", _anchor=f"message-{written.message.id}"))


@bp.route("", methods=["GET", "POST"])
@participant_only
def index():
    participant: Participant = current_user.participant
    form = ReplyForm()
    if form.is_submitted():
        if not may_write(participant):
            abort(403)
        if form.validate():
            try:
                written = messages.write(participant, form.body.data)
            except messages.MessageError as exc:
                db.session.rollback()
                show_error(form, exc)
            else:
                db.session.commit()
                return _after_writing(written)
        return _inbox_page(participant, form)
    new = frozenset(m.id for m in messages.conversation(participant)
                    if m.direction == "to_participant" and m.read_at is None)
    messages.open_inbox(participant)
    db.session.commit()
    return _inbox_page(participant, form, new=new)


# --------------------------------------------------------------------------- staff


def _person(participant_id: int) -> Participant:
    """The participant, or 404; 403 when the signed-in moderator may not see them."""
    person = db.get_or_404(Participant, participant_id)
    if not can_view(current_user, person):
        abort(403)
    return person


def _staff_page(person: Participant, form: StaffMessageForm, conversation: list):
    return render_template(
        "moderation/messages.html", person=person, form=form, conversation=conversation,
        texts=messages.text_copies(conversation), meaning=meaning,
        sms_refusal=messages.sms_refusal(person),
        contact_refusal=messages.contact_refusal(person),
        guided=bool(features_for(person.user).get("checkins")), body_max=messages.BODY_MAX)


def _send(person: Participant, form: StaffMessageForm) -> ModeratorMessage | None:
    """Send from the form, or put the refusal on its field (None)."""
    try:
        return messages.send_from_page(person, form.body.data, actor=current_user,
                                       by_sms=bool(form.by_sms.data))
    except messages.MessageError as exc:
        db.session.rollback()
        show_error(form, exc)
    except messages.PermissionDenied:
        abort(403)
    return None


@moderation_bp.route("/participants/<int:participant_id>/messages", methods=["GET", "POST"])
@moderators_only
def participant_messages(participant_id: int):
    person = _person(participant_id)
    form = StaffMessageForm()
    if form.is_submitted():
        message = _send(person, form) if form.validate() else None
        if message is not None:
            db.session.commit()
            flash("Message sent" + (" in the app and as a text." if message.sms_message_id
                                    else " in the app."), "success")
            return redirect(url_for("moderation.participant_messages",
                                    participant_id=person.id, _anchor=f"message-{message.id}"))
        return _staff_page(person, form, messages.conversation(person))
    conversation = messages.view_conversation(person, actor=current_user)
    db.session.commit()
    return _staff_page(person, form, conversation)


# --------------------------------------------------------------------------- staff page parts


record.add_source("message", messages.timeline_source)
record.add_panel(record.Panel(key="messages", title="Messages",
                              template="moderation/_messages_panel.html",
                              load=messages.panel_data, order=20))
