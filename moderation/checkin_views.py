"""Check-in pages: the moderator's list and task page (complete, cancel), adding a task
by hand from a participant's page, message templates, per-study rule settings and the
fidelity figures.

Who: moderators (peer and clinician) work on tasks, peers only their own caseload's;
clinicians and admins edit templates, peers read them; clinicians and researchers set a
study's rules; researchers and clinicians read the fidelity figures.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from core import navigation
from core.access import role_required
from core.clock import utcnow
from core.extensions import db
from core.forms import ConfirmForm, show_error
from core.models import Participant, User
from core.roles import MODERATORS, Role
from moderation import bp, checkins, fidelity, record
from moderation.care_models import (
    CHECKIN_CHANNELS,
    CHECKIN_OUTCOMES,
    CHECKIN_REASONS,
    CheckInTask,
    CheckInTemplate,
)
from moderation.checkin_forms import (
    CancelForm,
    CompleteForm,
    ManualTaskForm,
    RangeForm,
    RuleSettingsForm,
    TemplateForm,
    settings_data,
    settings_from,
)
from moderation.checkins import settings as rule_settings
from moderation.checkins import tasks, wording
from moderation.services import can_view
from outcomes.models import Study
from outcomes.participants import may_contact

TEMPLATE_EDITORS = tuple(wording.EDITORS)
TEMPLATE_READERS = tuple(wording.READERS)
RULE_EDITORS = tuple(rule_settings.EDITORS)
FIDELITY_READERS = (Role.RESEARCHER, Role.CLINICIAN)

navigation.add("Check-ins", "moderation.checkins_list", MODERATORS, order=14)
navigation.add("Check-in rules", "moderation.checkin_rules", {Role.RESEARCHER}, order=15)
navigation.add("Check-in templates", "moderation.checkin_templates", {Role.ADMIN}, order=15)
navigation.add("Fidelity", "moderation.fidelity_figures", set(FIDELITY_READERS), order=16)


def _task_or_403(task_id: int) -> CheckInTask:
    task = db.get_or_404(CheckInTask, task_id)
    if not can_view(current_user, task.participant):
        abort(403)
    return task


def _task_url(task_id: int) -> str:
    return url_for("moderation.checkin_task", task_id=task_id)


# --------------------------------------------------------------------------- the list


@bp.route("/checkins")
@role_required(*MODERATORS)
def checkins_list():
    is_clinician = current_user.role == Role.CLINICIAN
    scope = request.args.get("who", "mine")
    scope = scope if is_clinician and scope in tasks.SCOPES else "mine"
    show = request.args.get("show", "open")
    show = show if show in tasks.SHOWS else "open"
    reason = request.args.get("reason") or None
    reason = reason if reason in CHECKIN_REASONS else None
    now = utcnow()
    rows = tasks.task_list(current_user, scope=scope, show=show, reason=reason, now=now)
    counts = tasks.tab_counts(current_user, scope=scope, reason=reason, now=now)
    return render_template("moderation/checkins.html", rows=rows, counts=counts, scope=scope,
                           show=show, reason=reason, now=now, reasons=CHECKIN_REASONS,
                           channels=CHECKIN_CHANNELS, outcomes=CHECKIN_OUTCOMES,
                           is_clinician=is_clinician, limit=tasks.LIST_LIMIT)


# --------------------------------------------------------------------------- one task


def _prefill(form: CompleteForm, task: CheckInTask,
             active: list[CheckInTemplate]) -> CheckInTemplate | None:
    """On a fresh page, start the message from the chosen template (or the one made for
    the task's reason), filled in for this participant."""
    chosen_id = request.args.get("template", type=int)
    chosen = (next((t for t in active if t.id == chosen_id), None) if chosen_id
              else wording.suggested(active, task.reason))
    if chosen is not None:
        form.body.data = wording.fill(chosen.body, task.participant, current_user)
        if chosen_id and not form.channel.data:
            form.channel.data = "in_app"
    return chosen


def _apply_template(form: CompleteForm, task: CheckInTask, active: list[CheckInTemplate],
                    template_id: int) -> tuple[CheckInTemplate | None, str]:
    """The moderator chose a template on a form they may have started: its words replace
    the message, everything else they typed stays. Returns the template and the text it
    replaced (shown beside the form, so nothing typed is lost; empty when the message
    was empty or another template's words)."""
    chosen = next((t for t in active if t.id == template_id), None)
    if chosen is None:
        return None, ""

    def fill(body: str) -> str:
        return wording.fill(body, task.participant, current_user)

    earlier = (form.body.data or "").strip()
    form.body.data = fill(chosen.body)
    if not form.channel.data:
        form.channel.data = "in_app"
    untouched = {fill(t.body).strip() for t in active}
    return chosen, "" if earlier in untouched else earlier


def _task_page(task: CheckInTask, form: CompleteForm | None = None,
               cancel_form: CancelForm | None = None, *, template_id: int | None = None) -> str:
    person = task.participant
    active = wording.templates(active_only=True)
    chosen, replaced = None, ""
    if form is None:
        form = CompleteForm(formdata=None, data={"version": task.version, "note": task.note})
        chosen = _prefill(form, task, active)
    elif template_id is not None:
        chosen, replaced = _apply_template(form, task, active, template_id)
    cancel_form = cancel_form or CancelForm(formdata=None, prefix="cancel",
                                           data={"version": task.version})
    contactable = may_contact(person)
    sms_reason = tasks.sms_unavailable_reason(person)
    if sms_reason or not contactable:
        form.without_sms()
    if not contactable:
        form.channel.choices = [c for c in form.channel.choices
                                if c.value not in tasks.MESSAGE_CHANNELS]
    added_by = db.session.get(User, task.detail["added_by"]) if task.detail.get("added_by") \
        else None
    return render_template(
        "moderation/checkin_task.html", task=task, person=person, form=form, added_by=added_by,
        cancel_form=cancel_form, templates=active, chosen=chosen, replaced=replaced,
        sms_reason=sms_reason,
        contactable=contactable, reasons=CHECKIN_REASONS, channels=CHECKIN_CHANNELS,
        outcomes=CHECKIN_OUTCOMES, now=utcnow(), may_read_note=tasks.may_read_note)


@bp.route("/checkins/<int:task_id>")
@role_required(*MODERATORS)
def checkin_task(task_id: int):
    return _task_page(_task_or_403(task_id))


def _completed_message(task: CheckInTask) -> str:
    if task.channel == "sms":
        return "Check-in done. Your message is in their inbox and will also go out as a text."
    if task.channel == "in_app":
        return "Check-in done. Your message is in their inbox."
    return "Check-in done. The contact is recorded."


def _attempt(form, act: Callable[[], str], *, done: str,
             closed: str | None = None) -> Response | None:
    """Run ``act`` (a service call that returns the message to flash): commit and go to
    ``done``; or, refused, roll back and say why: an already closed task sends the
    moderator to ``closed``, any other refusal gives ``None`` (show the form again with
    the refusal on its field)."""
    try:
        message = act()
    except checkins.AlreadyClosed as exc:
        db.session.rollback()
        flash(str(exc), "info")
        return redirect(closed or done)
    except checkins.PermissionDenied:
        db.session.rollback()
        abort(403)
    except checkins.CheckInError as exc:
        db.session.rollback()
        show_error(form, exc)
        return None
    db.session.commit()
    flash(message, "success")
    return redirect(done)


def _act_on_task(task_id: int, form, act: Callable[[], str]) -> Response | None:
    return _attempt(form, act, done=url_for("moderation.checkins_list"),
                    closed=_task_url(task_id))


@bp.route("/checkins/<int:task_id>/complete", methods=["POST"])
@role_required(*MODERATORS)
def checkin_complete(task_id: int):
    task = _task_or_403(task_id)
    form = CompleteForm()
    template_id = request.form.get("template", type=int)
    if template_id is not None:  # "start from this template", not "complete"
        return _task_page(task, form=form, template_id=template_id)
    if form.validate_on_submit():
        done = tasks.Completion(channel=form.channel.data, outcome=form.outcome.data,
                                body=form.body.data, note=form.note.data)

        def complete() -> str:
            checkins.complete(task, done, actor=current_user, version=form.version.data)
            return _completed_message(task)

        response = _act_on_task(task_id, form, complete)
        if response is not None:
            return response
    return _task_page(db.get_or_404(CheckInTask, task_id), form=form)


@bp.route("/checkins/<int:task_id>/cancel", methods=["POST"])
@role_required(*MODERATORS)
def checkin_cancel(task_id: int):
    task = _task_or_403(task_id)
    form = CancelForm(prefix="cancel")
    if form.validate_on_submit():

        def cancel() -> str:
            checkins.cancel(task, actor=current_user, version=form.version.data,
                            reason=form.reason.data)
            return "Check-in cancelled."

        response = _act_on_task(task_id, form, cancel)
        if response is not None:
            return response
    return _task_page(db.get_or_404(CheckInTask, task_id), cancel_form=form)


# --------------------------------------------------------------------------- by hand


def _panel_data(person: Participant, viewer) -> dict | None:
    if not can_view(viewer, person):
        return None
    return {"tasks": tasks.open_tasks_of(person), "form": ManualTaskForm(formdata=None),
            "reasons": CHECKIN_REASONS, "now": utcnow(), "contactable": may_contact(person)}


record.add_panel(record.Panel("checkins", "Check-ins", "moderation/checkin_panel.html",
                              _panel_data, order=40))


@bp.route("/participants/<int:participant_id>/checkins", methods=["GET", "POST"])
@role_required(*MODERATORS)
def checkin_add(participant_id: int):
    person = db.get_or_404(Participant, participant_id)
    if not can_view(current_user, person):
        abort(403)
    form = ManualTaskForm()
    if form.validate_on_submit():
        try:
            task = checkins.add_manual(person, actor=current_user,
                                       due_hours=form.due_hours.data, note=form.note.data)
        except checkins.PermissionDenied:
            db.session.rollback()
            abort(403)
        except checkins.CheckInError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash("Check-in added.", "success")
            return redirect(_task_url(task.id))
    return render_template("moderation/checkin_add.html", person=person, form=form,
                           open_tasks=tasks.open_tasks_of(person), reasons=CHECKIN_REASONS)


# --------------------------------------------------------------------------- templates


@bp.route("/checkins/templates")
@role_required(*TEMPLATE_READERS)
def checkin_templates():
    return render_template("moderation/checkin_templates.html", rows=wording.templates(),
                           reasons=CHECKIN_REASONS, confirm=ConfirmForm(),
                           may_edit=current_user.role in wording.EDITORS)


def _template_form_page(form: TemplateForm, template: CheckInTemplate | None) -> str:
    return render_template("moderation/checkin_template_form.html", form=form,
                           template=template, placeholders=wording.PLACEHOLDERS)


def _template_data(form: TemplateForm) -> wording.TemplateData:
    return wording.TemplateData(form.title.data or "", form.body.data or "",
                                form.reason.data or None)


@bp.route("/checkins/templates/new", methods=["GET", "POST"])
@role_required(*TEMPLATE_EDITORS)
def checkin_template_new():
    form = TemplateForm()
    if form.validate_on_submit():

        def create() -> str:
            wording.create(_template_data(form), actor=current_user)
            return "Template added."

        response = _attempt(form, create, done=url_for("moderation.checkin_templates"))
        if response is not None:
            return response
    return _template_form_page(form, None)


@bp.route("/checkins/templates/<int:template_id>", methods=["GET", "POST"])
@role_required(*TEMPLATE_EDITORS)
def checkin_template_edit(template_id: int):
    template = db.get_or_404(CheckInTemplate, template_id)
    form = TemplateForm(data={"title": template.title, "body": template.body,
                              "reason": template.reason or ""})
    if form.validate_on_submit():

        def edit() -> str:
            wording.edit(template, _template_data(form), actor=current_user)
            return "Template saved."

        response = _attempt(form, edit, done=url_for("moderation.checkin_templates"))
        if response is not None:
            return response
    return _template_form_page(form, db.get_or_404(CheckInTemplate, template_id))


@bp.route("/checkins/templates/<int:template_id>/active", methods=["POST"])
@role_required(*TEMPLATE_EDITORS)
def checkin_template_toggle(template_id: int):
    template = db.get_or_404(CheckInTemplate, template_id)
    if ConfirmForm().validate_on_submit():
        wording.set_active(template, not template.is_active, actor=current_user)
        db.session.commit()
        flash("Template turned " + ("on." if template.is_active else "off."), "success")
    return redirect(url_for("moderation.checkin_templates"))


@bp.route("/checkins/templates/seed", methods=["POST"])
@role_required(*TEMPLATE_EDITORS)
def checkin_templates_seed():
    if ConfirmForm().validate_on_submit():
        added = wording.seed_default_templates(current_user)
        db.session.commit()
        flash(f"{added} suggested template{'' if added == 1 else 's'} added.", "success")
    return redirect(url_for("moderation.checkin_templates"))


# --------------------------------------------------------------------------- rules


def _show_rule_error(form, exc: checkins.CheckInError) -> None:
    reason, _, name = (exc.field or "").partition("-")
    if reason in form and name in form[reason].form:
        target = form[reason].form[name]
        target.errors = [*target.errors, str(exc)]
    else:
        flash(str(exc), "error")


def _chosen_study() -> tuple[list[Study], Study | None]:
    studies = list(db.session.scalars(select(Study).order_by(Study.id)))
    wanted = request.args.get("study", type=int)
    study = next((s for s in studies if s.id == wanted), studies[0] if studies else None)
    if wanted is not None and (study is None or study.id != wanted):
        abort(404)
    return studies, study


@bp.route("/checkins/rules", methods=["GET", "POST"])
@role_required(*RULE_EDITORS)
def checkin_rules():
    studies, study = _chosen_study()
    form = None
    if study is not None:
        form = RuleSettingsForm(data=settings_data(checkins.rules_for(study.id)))
        if form.validate_on_submit():
            try:
                changed = checkins.save_rules(study, settings_from(form), actor=current_user)
            except checkins.CheckInError as exc:
                db.session.rollback()
                _show_rule_error(form, exc)
            else:
                db.session.commit()
                flash("Rules saved." if changed else "Nothing changed.", "success")
                return redirect(url_for("moderation.checkin_rules", study=study.id))
    return render_template("moderation/checkin_rules.html", studies=studies, study=study,
                           form=form, specs=rule_settings.SPECS, reasons=CHECKIN_REASONS)


# --------------------------------------------------------------------------- fidelity


@bp.route("/fidelity")
@role_required(*FIDELITY_READERS)
def fidelity_figures():
    start, end = fidelity.default_range(utcnow().date())
    form = RangeForm(formdata=request.args or None, data={"start": start, "end": end})
    studies = list(db.session.scalars(select(Study).order_by(Study.id)))
    form.offer_studies(studies)
    figures = None
    if form.validate():
        start, end = form.start.data or start, form.end.data or end
        try:
            figures = fidelity.fidelity(start, end, study_id=form.chosen_study())
        except ValueError as exc:
            form.start.errors = [*form.start.errors, str(exc)]
    return render_template("moderation/fidelity.html", form=form, figures=figures,
                           studies=studies)


