"""The researcher's SMS protocol page: the current YAML in a text box, its problems by
line, and every saved version with who saved it and when."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length

from core import navigation
from core.access import role_required
from core.extensions import db
from core.models import User
from core.roles import Role
from outcomes import bp, services
from outcomes.prompts import protocol as protocols

navigation.add("SMS prompts", "outcomes.sms_protocol", {Role.RESEARCHER}, order=12)


class ProtocolForm(FlaskForm):
    text = TextAreaField("Protocol (YAML)", validators=[
        DataRequired("Type the protocol."), Length(max=50_000)])
    submit = SubmitField("Save as a new version")


def _study():
    try:
        return services.current_study()
    except services.NoStudy as exc:
        abort(404, str(exc))


def _page(study, form: ProtocolForm, *, problems: list[str] | None = None):
    if problems:
        form.text.errors = list(problems)  # for aria-invalid and the error link
    versions = protocols.versions_of(study)
    authors = {u.id: u.name for u in db.session.scalars(select(User).where(
        User.id.in_({v.created_by_id for v in versions if v.created_by_id})))}
    current = versions[0] if versions else None
    protocol = protocols.read_protocol(current.data) if current is not None else None
    return render_template("outcomes/prompts/protocol.html", study=study, form=form,
                           problems=problems or [], versions=versions, authors=authors,
                           current=current, protocol=protocol,
                           days=protocols.DAY_NAMES), 422 if problems else 200


@bp.route("/sms-protocol", methods=["GET", "POST"])
@role_required(Role.RESEARCHER)
def sms_protocol():
    study = _study()
    form = ProtocolForm()
    if not form.is_submitted():
        current = protocols.current_version(study)
        form.text.data = current.source if current is not None else protocols.default_text()
        return _page(study, form)
    if not form.validate():
        return _page(study, form, problems=list(form.text.errors))
    try:
        saved = protocols.save_protocol_text(study, form.text.data, actor=current_user)
    except protocols.ProtocolError as exc:
        db.session.rollback()
        return _page(study, form, problems=exc.problems)
    db.session.commit()
    if saved is None:
        flash("Nothing changed: the protocol is the same as the current version.", "info")
    else:
        flash(f"Version {saved.version} of the SMS protocol is saved. It applies from the "
              "next planning run.", "success")
    return redirect(url_for("outcomes.sms_protocol"))
