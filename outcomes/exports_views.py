"""The researcher's export page: choose a format, download the bundle (a zip of every
pseudonymised table, the codebook, a README and SHA-256 checksums). Researchers with the
identifiable export right also download one source of free text at a time; admins give and
take away that right. Every download and every change of the right is audit-logged."""

from __future__ import annotations

import io

from flask import abort, flash, redirect, render_template, send_file, url_for
from flask_login import current_user
from sqlalchemy import select

from core import navigation
from core.access import role_required
from core.extensions import db
from core.models import User
from core.roles import Role
from outcomes import bp, exports, services
from outcomes.exports import bundle, freetext
from outcomes.exports.forms import ExportForm, FreeTextForm, RightForm

navigation.add("Exports", "outcomes.exports_page", {Role.RESEARCHER}, order=12)
navigation.add("Export rights", "outcomes.export_rights", {Role.ADMIN}, order=60)


def _study():
    try:
        return services.current_study()
    except services.NoStudy as exc:
        abort(404, str(exc))


def _page(study, form: ExportForm, free_form: FreeTextForm | None = None):
    if free_form is None and freetext.has_right(current_user):
        free_form = FreeTextForm(formdata=None)
    return render_template("outcomes/exports/index.html", study=study, form=form,
                           free_form=free_form, tables=exports.NAMES)


@bp.route("/exports", methods=["GET", "POST"])
@role_required(Role.RESEARCHER)
def exports_page():
    study = _study()
    form = ExportForm()
    if form.validate_on_submit():
        result, archive = bundle.export(study, form.fmt.data, actor=current_user, via="web")
        db.session.commit()
        response = send_file(io.BytesIO(archive), mimetype="application/zip",
                             as_attachment=True, download_name=result.zip_name)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Export-Checksum"] = result.checksum
        return response
    return _page(study, form)


@bp.route("/exports/free-text", methods=["POST"])
@role_required(Role.RESEARCHER)
def export_free_text():
    study = _study()
    if not freetext.has_right(current_user):
        # a researcher without the right (or whose right was just taken away)
        flash("You do not have the identifiable export right: ask an admin.", "error")
        return redirect(url_for("outcomes.exports_page"))
    form = FreeTextForm()
    if not form.validate_on_submit():
        return _page(study, ExportForm(formdata=None), form)
    name, content = freetext.export(study, form.source.data, form.purpose.data,
                                    actor=current_user)
    db.session.commit()
    response = send_file(io.BytesIO(content), mimetype="text/csv", as_attachment=True,
                         download_name=name)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/exports/rights")
@role_required(Role.ADMIN)
def export_rights():
    researchers = list(db.session.scalars(
        select(User).where(User.role == Role.RESEARCHER).order_by(User.email)))
    return render_template("outcomes/exports/rights.html", researchers=researchers,
                           holders=set(freetext.holders()), form=RightForm(formdata=None))


@bp.route("/exports/rights/<int:user_id>", methods=["POST"])
@role_required(Role.ADMIN)
def set_export_right(user_id: int):
    user = db.get_or_404(User, user_id)
    form = RightForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        freetext.set_right(user, form.allowed.data == "1", actor=current_user)
    except freetext.ExportRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("outcomes.export_rights"))
    db.session.commit()
    flash(f"{user.name}: free-text export {'allowed' if form.allowed.data == '1' else 'removed'}.",
          "success")
    return redirect(url_for("outcomes.export_rights"))
