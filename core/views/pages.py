"""Shared pages: the home page of each role, crisis resources, health check."""

from __future__ import annotations

from datetime import timedelta

from flask import redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import text

from core import navigation
from core.access import public, signed_in
from core.clock import utcnow
from core.events import KINDS, events_for
from core.extensions import db
from core.roles import ALL_ROLES, STAFF, Role
from core.views import bp

#: where each role lands after signing in
HOME_ENDPOINTS = {
    Role.PEER_MODERATOR: "moderation.caseload",
    Role.CLINICIAN: "moderation.caseload",
    Role.RESEARCHER: "outcomes.dashboard",
    Role.ADMIN: "core.admin_users",
}

navigation.add("Home", "core.home", {Role.PARTICIPANT}, order=0,
               visible=lambda user: user.participant.arm_id is None
               or not navigation.is_visible(user, "modules.today"))
navigation.add("Users", "core.admin_users", {Role.ADMIN}, order=80)
navigation.add("Settings", "core.admin_settings", {Role.ADMIN}, order=81)
navigation.add("Consent", "core.admin_consent", {Role.ADMIN}, order=82)
navigation.add("Audit log", "core.admin_audit", {Role.ADMIN}, order=83)
navigation.add("Account", "core.account", ALL_ROLES, order=95)


@bp.route("/")
@signed_in
def home():
    if current_user.role in STAFF:
        return redirect(url_for(HOME_ENDPOINTS[current_user.role]))
    participant = current_user.participant
    # Randomised participants whose arm has modules land on its Today page. Asking the
    # navigation (that entry is visible only for such arms) keeps core free of domain
    # imports; not-yet-randomised participants keep this page.
    if participant.arm_id is not None and navigation.is_visible(current_user, "modules.today"):
        return redirect(url_for("modules.today"))
    recent = events_for(participant.id, since=utcnow() - timedelta(days=14), limit=20)
    return render_template("core/home.html", participant=participant, recent=recent, kinds=KINDS)


@bp.route("/help")
@public
def crisis():
    return render_template("core/crisis.html")


@bp.route("/healthz")
@public
def healthz():
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}
