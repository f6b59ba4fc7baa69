"""Glue between Flask's cookie session, Flask-Login and ``UserSession`` rows.

The cookie holds only the session row id (``sid``) and Flask-Login's user id.
Each request re-checks the row, so logout, idle and absolute timeouts and
admin revocation take effect at once, and a copied cookie is useless once
its row is revoked.
"""

from __future__ import annotations

import functools

from flask import Flask, flash, g, session
from flask_login import login_user, logout_user

from core import accounts, auth, changes, notifications, principal, settings
from core.access import register_gate
from core.extensions import db, login_manager
from core.models import User, UserSession

SESSION_KEY = "sid"
TIMEOUT_MESSAGES = {
    "idle": "You were signed out after a while without activity. Please sign in again.",
    "expired": "Your session has ended. Please sign in again.",
}


def init_app(app: Flask) -> None:
    login_manager.user_loader(load_user)
    register_gate(mfa_gate)
    register_gate(consent_gate)
    principal.register("consent_ok", accounts.consent_ok_fact)
    principal.register("site_settings", settings.stored_fact)
    principal.register("unread_notifications", notifications.unread_fact)
    # what cached pages are checked against (core.pagecache)
    for counter in (changes.EPOCH, changes.FORUM_COUNTER):
        principal.register(f"changes_{counter}", functools.partial(changes.counter_fact, counter))


def load_user(user_id: str) -> User | None:
    try:
        uid = int(user_id)
    except ValueError:
        return None
    check = auth.check_session(session.get(SESSION_KEY), uid)
    if check.user is None:
        session.clear()
        if check.reason in TIMEOUT_MESSAGES:
            flash(TIMEOUT_MESSAGES[check.reason], "info")
        return None
    if check.touched:
        # the last-seen touch (already autoflushed, so ``session.dirty`` cannot tell);
        # nothing else is pending this early
        db.session.commit()
    return check.user if check.user.is_active else None


def start(user: User, row: UserSession) -> None:
    """Bind a browser to a session row (new cookie, so no fixation)."""
    session.clear()
    session[SESSION_KEY] = row.id
    session.permanent = True
    login_user(user)


def current_row() -> UserSession | None:
    """This request's session row (loaded with the user by ``core.principal``)."""
    if "kinship_session_row" not in g:
        sid = session.get(SESSION_KEY)
        g.kinship_session_row = db.session.get(UserSession, sid) if sid else None
    return g.kinship_session_row


def end() -> None:
    auth.revoke_session(session.get(SESSION_KEY))
    logout_user()
    session.clear()


def mfa_gate(user: User) -> str | None:
    row = current_row()
    if row is None or row.mfa_at is not None:
        return None
    if user.mfa_enabled:
        return "core.mfa_verify"
    if user.mfa_required:
        return "core.mfa_setup"
    return None


def consent_gate(user: User) -> str | None:
    if user.is_participant and not principal.fact(
            "consent_ok", user, lambda: accounts.has_current_consent(user)):
        return "core.reconsent"
    return None
