"""Admin pages: accounts and roles, site settings, consent versions, audit log."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from core import accounts, audit, auth, settings
from core.access import role_required
from core.audit import AuditEntry
from core.extensions import db
from core.forms import (
    ConfirmForm,
    ConsentVersionForm,
    RoleForm,
    SettingsForm,
    StaffForm,
    show_error,
)
from core.models import ConsentRecord, ConsentVersion, User
from core.names import display_key
from core.roles import ROLE_LABELS, Role
from core.views import bp

PAGE_SIZE = 50


@bp.route("/admin/users")
@role_required("admin")
def admin_users():
    role = request.args.get("role", "")
    q = request.args.get("q", "").strip()
    query = select(User).order_by(User.role, User.email, User.display_name)
    if role in {r.value for r in Role}:
        query = query.where(User.role == Role(role))
    if q:
        # display_key is casefolded and accent-free, so "Zoë" is found as typed
        query = query.where(or_(func.lower(User.email).like(f"%{q.lower()}%"),
                                User.display_key.like(f"%{display_key(q)}%")))
    users = db.session.scalars(query.options(selectinload(User.participant)).limit(500)).all()
    return render_template("core/admin/users.html", users=users, role=role, q=q,
                           roles=ROLE_LABELS)


@bp.route("/admin/users/new", methods=["GET", "POST"])
@role_required("admin")
def admin_user_new():
    form = StaffForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_staff(form.email.data, Role(form.role.data), form.password.data,
                                         actor=current_user, display_name=form.display_name.data)
        except accounts.AccountError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash(f"Account created for {user.email}. Give them the first password in person or "
                  "by phone; staff roles that need two-step sign-in set it up at first sign-in.",
                  "success")
            return redirect(url_for("core.admin_user", user_id=user.id))
    return render_template("core/admin/user_new.html", form=form)


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@role_required("admin")
def admin_user(user_id: int):
    user = db.get_or_404(User, user_id)
    form = RoleForm(role=user.role.value)
    if form.validate_on_submit():
        if Role(form.role.data) == user.role:
            # the button pressed without picking another role must not sign them out
            # nor log a role change that never happened
            flash("The role is unchanged.", "info")
            return redirect(url_for("core.admin_user", user_id=user.id))
        try:
            accounts.change_role(user, Role(form.role.data), actor=current_user)
        except accounts.AccountError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash(f"Role changed to {ROLE_LABELS[user.role]}. Their sessions were signed out.",
                  "success")
            return redirect(url_for("core.admin_user", user_id=user.id))
    history = db.session.scalars(
        select(AuditEntry).where(AuditEntry.target_type == "user", AuditEntry.target_id == user.id)
        .order_by(AuditEntry.seq.desc()).limit(20)).all()
    return render_template("core/admin/user.html", user=user, form=form, confirm=ConfirmForm(),
                           history=history, roles=ROLE_LABELS)


@bp.route("/admin/users/<int:user_id>/<any(enable,disable,reset_mfa,sign_out):action>",
          methods=["POST"])
@role_required("admin")
def admin_user_action(user_id: int, action: str):
    user = db.get_or_404(User, user_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("The form expired. Please try again.", "error")
        return redirect(url_for("core.admin_user", user_id=user.id))
    try:
        if action in ("enable", "disable"):
            accounts.set_enabled(user, action == "enable", actor=current_user)
        elif action == "reset_mfa":
            auth.disable_mfa(user, actor=current_user)
        else:
            auth.revoke_all_sessions(user)
            audit.record("user.signed_out", actor=current_user, target=user)
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("Done.", "success")
    return redirect(url_for("core.admin_user", user_id=user.id))


def _resources_to_text(resources: list[dict]) -> str:
    return "\n".join(" | ".join([r.get("name", ""), r.get("phone", ""), r.get("url", ""),
                                 r.get("detail", "")]) for r in resources)


def parse_resources(text: str) -> list[dict[str, str]]:
    """Parse 'name | phone | url | detail' lines; raise AccountError naming the bad line."""
    resources = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) > 4 or not parts[0]:
            raise accounts.AccountError(
                f"Line {number}: use 'name | phone | web address | when to use it'.",
                "crisis_resources")
        parts += [""] * (4 - len(parts))
        name, phone, url, detail = parts
        if not phone and not url:
            raise accounts.AccountError(f"Line {number}: give a phone number or a web address.",
                                        "crisis_resources")
        if url and not url.startswith(("https://", "http://")):
            raise accounts.AccountError(f"Line {number}: web addresses start with https://.",
                                        "crisis_resources")
        resources.append({"name": name, "phone": phone, "url": url, "detail": detail})
    if not resources:
        raise accounts.AccountError("List at least one crisis resource.", "crisis_resources")
    return resources


@bp.route("/admin/settings", methods=["GET", "POST"])
@role_required("admin")
def admin_settings():
    values = settings.get_all()
    form = SettingsForm(data={**values, "crisis_resources": _resources_to_text(
        values["crisis_resources"])} if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            resources = parse_resources(form.crisis_resources.data)
        except accounts.AccountError as exc:
            show_error(form, exc)
        else:
            for key in ("site_name", "crisis_intro", "study_contact"):
                if getattr(form, key).data.strip() != values[key]:
                    settings.put(key, getattr(form, key).data.strip(), actor=current_user)
            if resources != values["crisis_resources"]:
                settings.put("crisis_resources", resources, actor=current_user)
            db.session.commit()
            flash("Settings saved.", "success")
            return redirect(url_for("core.admin_settings"))
    return render_template("core/admin/settings.html", form=form)


@bp.route("/admin/consent", methods=["GET", "POST"])
@role_required("admin")
def admin_consent():
    form = ConsentVersionForm()
    if form.validate_on_submit():
        try:
            accounts.publish_consent(form.version.data, form.text.data, actor=current_user)
        except accounts.AccountError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash("New consent version published. Participants will be asked to agree at their "
                  "next visit.", "success")
            return redirect(url_for("core.admin_consent"))
    versions = db.session.execute(
        select(ConsentVersion, func.count(ConsentRecord.id))
        .outerjoin(ConsentRecord, ConsentRecord.consent_version_id == ConsentVersion.id)
        .group_by(ConsentVersion.id).order_by(ConsentVersion.published_at.desc())).all()
    if request.method == "GET" and versions:
        form.text.data = versions[0][0].text
    return render_template("core/admin/consent.html", form=form, versions=versions)


@bp.route("/admin/audit")
@role_required("admin")
def admin_audit():
    before = request.args.get("before", type=int)
    if before is not None and not 0 < before < 2**31:
        abort(400)
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(PAGE_SIZE)
    if before:
        query = query.where(AuditEntry.seq < before)
    entries = db.session.scalars(query).all()
    actor_ids = {e.actor_id for e in entries if e.actor_id}
    actors = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(actor_ids)))}
    return render_template("core/admin/audit.html", entries=entries, actors=actors,
                           next_before=entries[-1].seq if len(entries) == PAGE_SIZE else None)
