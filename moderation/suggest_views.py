"""Suggesting content from the staff side: ``/moderation/participants/<id>/suggestions``
shows what was suggested to the participant (and whether they put it aside) with a form
to suggest a module or one of its steps, with a note. Moderators who may see the
participant only (``moderation.services.can_view``); others get 403. Opening the page is
audited. A refusal goes on its field and the form keeps what was chosen and typed. Also
puts the "suggest" panel and the "suggestion" timeline source on the staff page of a
participant."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from core import audit
from core.access import role_required
from core.extensions import db
from core.forms import show_error
from core.models import Participant, User
from core.roles import MODERATORS
from moderation import bp, record, suggestions
from moderation.message_forms import SuggestForm
from moderation.services import can_view
from modules.services import SUGGESTION_NOTE_MAX

#: how many earlier suggestions the panel lists
PANEL_ROWS = 3


def suggest_form(library: list[suggestions.LibraryModule], *, bound: bool = True
                 ) -> SuggestForm:
    """The form with the library's modules, and their steps grouped by module; ``bound``
    reads the posted values (a panel's blank form is not)."""
    form = SuggestForm() if bound else SuggestForm(formdata=None)
    form.module.choices = [SelectChoice("", "Choose a module")] + [
        SelectChoice(str(entry.module.id), entry.module.title) for entry in library]
    groups: dict[str, list[SelectChoice]] = {"": [SelectChoice("", "The whole module")]}
    for entry in library:
        groups[entry.module.title] = [
            SelectChoice(str(step.id), f"{number}. {step.title}")
            for number, step in enumerate(entry.steps, start=1)]
    form.step.choices = groups
    return form


def _number(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


def _person(participant_id: int) -> Participant:
    person = db.get_or_404(Participant, participant_id)
    if not can_view(current_user, person):
        abort(403)
    return person


def _page(person: Participant, form: SuggestForm):
    return render_template(
        "moderation/suggestions.html", person=person, form=form,
        refusal=suggestions.refusal(person), rows=suggestions.suggestions_of(person),
        title_of=suggestions.title_of, note_max=SUGGESTION_NOTE_MAX)


def _back(person: Participant, form: SuggestForm):
    if form.return_to.data == "record":
        return redirect(url_for("moderation.participant", participant_id=person.id,
                                _anchor="panel-suggest"))
    return redirect(url_for("moderation.participant_suggestions", participant_id=person.id))


@bp.route("/participants/<int:participant_id>/suggestions", methods=["GET", "POST"])
@role_required(*MODERATORS)
def participant_suggestions(participant_id: int):
    person = _person(participant_id)
    form = suggest_form(suggestions.library())
    if not form.is_submitted():
        audit.record("moderation.suggestions.viewed", actor=current_user, target=person.user)
        db.session.commit()
    elif form.validate():
        try:
            suggestions.make_suggestion(person, actor=current_user,
                                        module_id=_number(form.module.data),
                                        step_id=_number(form.step.data), note=form.note.data)
        except suggestions.SuggestError as exc:
            db.session.rollback()
            show_error(form, exc)
        except suggestions.PermissionDenied:
            abort(403)
        else:
            db.session.commit()
            flash(f"Suggested to {person.user.display_name or person.study_code}. It shows "
                  "on their Today page.", "success")
            return _back(person, form)
    return _page(person, form)


def _panel(participant: Participant, viewer: User) -> dict[str, Any] | None:
    if viewer.role not in MODERATORS or not can_view(viewer, participant):
        return None
    return {"form": suggest_form(suggestions.library(), bound=False),
            "refusal": suggestions.refusal(participant),
            "rows": suggestions.suggestions_of(participant, limit=PANEL_ROWS),
            "title_of": suggestions.title_of, "note_max": SUGGESTION_NOTE_MAX}


record.add_source("suggestion", suggestions.timeline_source)
record.add_panel(record.Panel(key="suggest", title="Suggest content",
                              template="moderation/_suggest_panel.html", load=_panel,
                              order=40))
