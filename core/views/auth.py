"""Sign in and out, two-step sign-in, invites and re-consent."""

from __future__ import annotations

from urllib.parse import urlsplit

import segno
from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from markupsafe import Markup

from core import accounts, auth, sessions
from core.access import public, role_required
from core.extensions import db
from core.forms import CodeForm, InviteForm, LoginForm, MfaSetupForm, ReconsentForm, show_error
from core.names import PhoneError, normalise_phone
from core.views import bp

MFA_SECRET_KEY = "mfa_pending_secret"  # noqa: S105 - a session key name, not a secret


def _client_ip() -> str | None:
    return request.remote_addr


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("core.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("core.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        try:
            user = auth.authenticate(form.identifier.data, form.password.data, ip=_client_ip())
        except auth.LoginError as exc:
            db.session.commit()  # keep the attempt and its audit entry
            form.password.errors = [str(exc)]
            return render_template("core/login.html", form=form), 429 if isinstance(
                exc, auth.LockedOut) else 200
        row = auth.open_session(user, mfa_done=False)
        if not (user.mfa_enabled or user.mfa_required):
            auth.mark_mfa_done(row)
            auth.finish_login(user, row)
        db.session.commit()
        sessions.start(user, row)
        session["next"] = _safe_next(form.next.data)
        if row.mfa_at is None:
            return redirect(url_for("core.mfa_verify" if user.mfa_enabled else "core.mfa_setup"))
        return redirect(session.pop("next"))
    return render_template("core/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@role_required(gates=False)
def logout():
    sessions.end()
    db.session.commit()
    flash("You are signed out. Take care.", "success")
    return redirect(url_for("core.login"))


@bp.route("/login/code", methods=["GET", "POST"])
@role_required(gates=False)
def mfa_verify():
    row = sessions.current_row()
    if row is None or row.mfa_at is not None:
        return redirect(url_for("core.home"))
    if not current_user.mfa_enabled:
        return redirect(url_for("core.mfa_setup"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            ok = auth.check_code(current_user, form.code.data, ip=_client_ip())
        except auth.LockedOut as exc:
            db.session.commit()  # keep the audit entry
            form.code.errors = [str(exc)]
            return render_template("core/mfa_verify.html", form=form, demo_code=None), 429
        if ok:
            auth.mark_mfa_done(row)
            auth.finish_login(current_user, row)
            db.session.commit()
            return redirect(_safe_next(session.pop("next", None)))
        db.session.commit()
        form.code.errors = ["That code did not work. Codes change every 30 seconds; "
                            "try the newest."]
    return render_template("core/mfa_verify.html", form=form,
                           demo_code=auth.demo_code(current_user))


@bp.route("/account/two-step", methods=["GET", "POST"])
@role_required(gates=False)
def mfa_setup():
    row = sessions.current_row()
    if current_user.mfa_enabled:
        if row is not None and row.mfa_at is None:
            return redirect(url_for("core.mfa_verify"))
        flash("Two-step sign-in is already on for your account.", "info")
        return redirect(url_for("core.security"))
    secret = session.get(MFA_SECRET_KEY) or auth.new_mfa_secret()
    session[MFA_SECRET_KEY] = secret
    form = MfaSetupForm()
    if form.validate_on_submit():
        try:
            codes = auth.enable_mfa(current_user, secret, form.code.data)
        except auth.LoginError as exc:
            form.code.errors = [str(exc)]
        else:
            session.pop(MFA_SECRET_KEY, None)
            if row is not None and row.mfa_at is None:
                auth.mark_mfa_done(row)
                auth.finish_login(current_user, row)
            db.session.commit()
            return render_template("core/recovery_codes.html", codes=codes,
                                   next=_safe_next(session.pop("next", None)))
    issuer = current_app.config.get("MFA_ISSUER", "Kinship")
    uri = auth.provisioning_uri(current_user, secret, issuer)
    # segno writes the SVG itself from the URI's bits: no user text reaches the markup
    svg = segno.make(uri, error="m").svg_inline(scale=5, title="QR code for your authenticator app")
    qr = Markup(svg)  # noqa: S704
    return render_template("core/mfa_setup.html", form=form, secret=secret, qr=qr,
                           required=current_user.mfa_required)


@bp.route("/invite/<token>", methods=["GET", "POST"])
@public
def invite(token: str):
    if current_user.is_authenticated:
        flash("You are already signed in. Sign out first to use an invite link.", "info")
        return redirect(url_for("core.home"))
    try:
        invite_row = accounts.find_invite(token)
    except accounts.AccountError as exc:
        return render_template("core/invite_invalid.html", message=str(exc)), 404
    consent = accounts.current_consent(invite_row.participant)
    if consent is None:
        abort(503, "The study has not published its consent information yet.")
    form = InviteForm()
    if request.method == "GET":
        form.timezone.data = invite_row.participant.timezone
        form.consent_version_id.data = str(consent.id)
    if form.validate_on_submit():
        try:
            phone = _phone_or_none(form.phone.data)
            version = form.consent_version_id.data
            user = accounts.accept_invite(token, accounts.InviteAnswers(
                display_name=form.display_name.data, password=form.password.data,
                timezone=form.timezone.data, phone=phone, sms_consent=form.sms_consent.data,
                # a mangled id is "not the current version": asked to agree again, no crash
                consent_version_id=int(version) if version.isdecimal() else 0))
        except accounts.AccountError as exc:
            db.session.rollback()
            show_error(form, exc)
            if exc.field == "consent":
                form.consent_version_id.data = str(consent.id)
                form.consent.data = False
        else:
            row = auth.open_session(user, mfa_done=True)
            auth.finish_login(user, row)
            db.session.commit()
            sessions.start(user, row)
            flash(f"Welcome, {user.display_name}. Your account is ready.", "success")
            return redirect(url_for("core.home"))
    return render_template("core/invite.html", form=form, consent=consent,
                           participant=invite_row.participant)


@bp.route("/consent", methods=["GET", "POST"])
@role_required("participant", gates=False)
def reconsent():
    gate = sessions.mfa_gate(current_user)
    if gate:
        return redirect(url_for(gate))
    consent = accounts.current_consent(current_user.participant)
    if consent is None or accounts.has_current_consent(current_user):
        return redirect(url_for("core.home"))
    form = ReconsentForm()
    if request.method == "GET":
        form.consent_version_id.data = str(consent.id)
        form.sms_consent.data = current_user.participant.sms_consent
    if form.validate_on_submit():
        if form.decline.data:
            from core import audit

            audit.record("consent.declined", actor=current_user, target=current_user,
                         version=consent.version)
            sessions.end()
            db.session.commit()
            flash("You have not agreed to the new information, so you are signed out. "
                  "The study team will contact you to talk about what you would like to do.",
                  "info")
            return redirect(url_for("core.login"))
        if not form.agree.data:
            return render_template("core/reconsent.html", form=form, consent=consent), 400
        if form.consent_version_id.data != str(consent.id):
            flash("The information changed again while you were reading. Please read this version.",
                  "warning")
            return redirect(url_for("core.reconsent"))
        accounts.record_consent(current_user, consent, sms_consent=form.sms_consent.data)
        db.session.commit()
        flash("Thank you. Your agreement is recorded.", "success")
        return redirect(url_for("core.home"))
    return render_template("core/reconsent.html", form=form, consent=consent)


def _phone_or_none(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    try:
        return normalise_phone(raw, current_app.config["DEFAULT_PHONE_REGION"])
    except PhoneError as exc:
        raise accounts.AccountError(str(exc), "phone") from exc
