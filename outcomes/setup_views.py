"""Study set-up pages: the set-up form, YAML export, YAML import with a dry run.

Researchers edit; admins may look (read-only) and download the YAML, but the trial's
design is the research team's, so they cannot change it. Every save goes through
``outcomes.setup`` (checks, change guard, audit) exactly as the CLI does.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from core import navigation
from core.access import role_required, roles_of
from core.extensions import db
from core.roles import Role
from outcomes import bp, randomisation, services, setup
from outcomes.setup_forms import (
    MAX_YAML,
    ImportForm,
    SetupForm,
    document_data,
    error_items,
    form_data,
    place_problems,
)

navigation.add("Study set-up", "outcomes.setup_page", {Role.RESEARCHER}, order=12)
#: where the schedule and the SMS protocol are edited, found by endpoint name so this page
#: links to them as soon as their owners add them
SECTION_PAGES = {"schedule": ("schedule",), "sms_protocol": ("protocol", "prompt")}


def _study():
    try:
        return services.current_study()
    except services.NoStudy as exc:
        abort(404, str(exc))


def _section_links() -> dict[str, str]:
    """The first researcher page (GET, no URL parameters) whose endpoint names the section."""
    links = {}
    for rule in current_app.url_map.iter_rules():
        access = roles_of(current_app.view_functions[rule.endpoint])
        if rule.arguments or "GET" not in rule.methods or rule.endpoint.startswith(
                "outcomes.setup") or not isinstance(access, frozenset) \
                or Role.RESEARCHER not in access:
            continue
        for section, words in SECTION_PAGES.items():
            if section not in links and any(word in rule.endpoint for word in words):
                links[section] = url_for(rule.endpoint)
    return links


def _render(study, form: SetupForm, *, to_confirm: list[str] | None = None,
            problems: list[str] | None = None, status: int = 200):
    data = setup.study_data(study)
    return render_template(
        "outcomes/setup/edit.html", study=study, form=form, data=data,
        locked=setup.is_locked(study), is_open=randomisation.is_open(study),
        can_edit=current_user.role == Role.RESEARCHER, to_confirm=to_confirm or [],
        problems=problems or [], errors=error_items(form), links=_section_links(),
    ), status


@bp.route("/setup")
@role_required(Role.RESEARCHER, Role.ADMIN)
def setup_page():
    study = _study()
    return _render(study, SetupForm(data=form_data(setup.study_data(study))))


@bp.route("/setup", methods=["POST"])
@role_required(Role.RESEARCHER)
def setup_save():
    study = _study()
    form = SetupForm()
    if form.add_arm.data:
        if setup.is_locked(study):
            flash("Arms cannot be added once enrolment has opened.", "error")
        else:
            form.arms.append_entry()
        return _render(study, form)
    if not form.validate_on_submit():
        return _render(study, form, status=400)
    data, places = document_data(form)
    doc = setup.Document(data)
    try:
        plan = setup.save(study, doc, actor=current_user, confirmed=form.confirm.data,
                          via="page")
    except setup.NeedsConfirmation as exc:
        db.session.rollback()
        return _render(study, form, to_confirm=[p.message for p in exc.problems], status=409)
    except setup.SetupError as exc:
        db.session.rollback()
        return _render(study, form, problems=place_problems(form, exc.problems, places),
                       status=400)
    db.session.commit()
    _flash_saved(plan)
    return redirect(url_for("outcomes.setup_page"))


def _flash_saved(plan: setup.Plan) -> None:
    if not plan.changes:
        flash("Nothing has changed.", "info")
    else:
        flash(f"The study set-up is saved ({len(plan.changes)} change"
              f"{'s' if len(plan.changes) != 1 else ''}, recorded in the audit log).", "success")


@bp.route("/setup/study.yaml")
@role_required(Role.RESEARCHER, Role.ADMIN)
def setup_export():
    study = _study()
    text = setup.to_yaml(setup.study_data(study))
    return Response(text, mimetype="application/yaml", headers={
        "Content-Disposition": f'attachment; filename="study-{study.slug}.yaml"'})


def _render_import(study, form: ImportForm, *, problems: Any = (), plan: Any = None,
                   to_confirm: Any = (), status: int = 200):
    return render_template("outcomes/setup/import.html", study=study, form=form,
                           problems=list(problems), plan=plan, to_confirm=list(to_confirm),
                           locked=setup.is_locked(study)), status


@bp.route("/setup/import")
@role_required(Role.RESEARCHER)
def setup_import():
    study = _study()
    return _render_import(study, ImportForm())


@bp.route("/setup/import", methods=["POST"])
@role_required(Role.RESEARCHER)
def setup_import_save():
    study = _study()
    form = ImportForm()
    if not form.validate_on_submit():
        expired = [setup.Problem(None, "The form expired. Please send it again.")] \
            if form.errors.get("csrf_token") else []
        return _render_import(study, form, problems=expired, status=400)
    text = _uploaded(form)
    if text is None:
        return _render_import(study, form, status=400)
    form.text.data = text  # what was sent stays in the box, whatever happens next
    doc = setup.read_yaml(text)
    try:
        if form.dry_run.data:
            plan = setup.preview(study, doc)
            return _render_import(study, form, plan=plan)
        plan = setup.save(study, doc, actor=current_user, confirmed=form.confirm.data,
                          via="yaml")
    except setup.NeedsConfirmation as exc:
        db.session.rollback()
        return _render_import(study, form, to_confirm=exc.problems,
                              plan=setup.preview(study, setup.read_yaml(text)), status=409)
    except setup.SetupError as exc:
        db.session.rollback()
        return _render_import(study, form, problems=exc.problems, status=400)
    db.session.commit()
    _flash_saved(plan)
    return redirect(url_for("outcomes.setup_page"))


def _uploaded(form: ImportForm) -> str | None:
    """The uploaded file's text when one was chosen, else what was pasted."""
    upload = form.upload.data
    if upload is not None and getattr(upload, "filename", ""):
        raw = upload.read(MAX_YAML + 1)
        if len(raw) > MAX_YAML:
            form.upload.errors = ["The file is too large for a study set-up."]
            return None
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            form.upload.errors = ["The file is not UTF-8 text."]
            return None
    if not (form.text.data or "").strip():
        form.text.errors = ["Paste a set-up document or choose a file."]
        return None
    return form.text.data

