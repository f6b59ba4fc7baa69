"""Staff notes pages: ``/moderation/participants/<id>/notes`` lists the notes the signed-in
moderator may read (clinician-only notes for clinicians alone) and adds one. Moderators
who may see the participant only (``moderation.services.can_view``); others get 403.
Opening the list is audited. Also puts the "notes" panel and the "note" timeline source
on the staff page of a participant."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from core import audit
from core.access import role_required
from core.extensions import db
from core.forms import show_error
from core.models import Participant, User
from core.roles import MODERATORS
from moderation import bp, notes, record
from moderation.message_forms import NoteForm
from moderation.services import can_view


def _person(participant_id: int) -> Participant:
    person = db.get_or_404(Participant, participant_id)
    if not can_view(current_user, person):
        abort(403)
    return person


def _page(person: Participant, form: NoteForm):
    return render_template(
        "moderation/notes.html", person=person, form=form,
        notes=notes.notes_for(person, viewer=current_user),
        may_restrict=notes.may_read_clinician_only(current_user), note_max=notes.NOTE_MAX)


def _back(person: Participant, form: NoteForm, note_id: int):
    if form.return_to.data == "record":
        return redirect(url_for("moderation.participant", participant_id=person.id,
                                _anchor="panel-notes"))
    return redirect(url_for("moderation.participant_notes", participant_id=person.id,
                            _anchor=f"note-{note_id}"))


@bp.route("/participants/<int:participant_id>/notes", methods=["GET", "POST"])
@role_required(*MODERATORS)
def participant_notes(participant_id: int):
    person = _person(participant_id)
    form = NoteForm()
    if not form.is_submitted():
        audit.record("moderation.notes.viewed", actor=current_user, target=person.user)
        db.session.commit()
        return _page(person, form)
    if form.validate():
        try:
            note = notes.add_note(person, form.body.data, actor=current_user,
                                  clinician_only=bool(form.clinician_only.data))
        except notes.NoteError as exc:
            db.session.rollback()
            show_error(form, exc)
        except notes.PermissionDenied:
            abort(403)
        else:
            db.session.commit()
            flash("Note added.", "success")
            return _back(person, form, note.id)
    return _page(person, form)


#: how many notes the panel shows (the notes page has them all)
PANEL_NOTES = 3


def _panel(participant: Participant, viewer: User) -> dict[str, Any] | None:
    """The "notes" panel: the newest notes, how many in all, and the add form."""
    if viewer.role not in MODERATORS or not can_view(viewer, participant):
        return None
    return {"notes": notes.notes_for(participant, viewer=viewer, limit=PANEL_NOTES),
            "total": notes.count_for(participant, viewer=viewer),
            "form": NoteForm(formdata=None),
            "may_restrict": notes.may_read_clinician_only(viewer), "note_max": notes.NOTE_MAX}


record.add_source("note", notes.timeline_source)
record.add_panel(record.Panel(key="notes", title="Staff notes",
                              template="moderation/_notes_panel.html", load=_panel, order=30))
