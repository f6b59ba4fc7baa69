"""A signed-in person's own settings: profile, password, two-step sign-in."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField

from core import accounts, audit, auth, sessions
from core.access import role_required, signed_in
from core.extensions import db
from core.forms import ConfirmForm, PasswordConfirmForm, PasswordForm, ProfileForm, show_error
from core.names import PhoneError, mask_phone, normalise_phone
from core.views import bp


@bp.route("/account", methods=["GET", "POST"])
@signed_in
def account():
    participant = current_user.participant
    form = ProfileForm(obj=participant) if participant else None
    if participant is not None and request.method == "GET":
        form.display_name.data = current_user.display_name
    if form is not None and form.validate_on_submit():
        try:
            phone = None
            if form.phone.data and form.phone.data.strip():
                try:
                    phone = normalise_phone(form.phone.data,
                                            current_app.config["DEFAULT_PHONE_REGION"])
                except PhoneError as exc:
                    raise accounts.AccountError(str(exc), "phone") from exc
            accounts.update_profile(current_user, accounts.ProfileAnswers(
                display_name=form.display_name.data, timezone=form.timezone.data, phone=phone,
                sms_consent=form.sms_consent.data, wake_start=form.wake_start.data,
                wake_end=form.wake_end.data))
        except accounts.AccountError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash("Your settings are saved.", "success")
            return redirect(url_for("core.account"))
    badges_form = (BadgesForm(formdata=None, show_badges=current_user.show_badges)
                   if participant else None)
    return render_template("core/account.html", form=form, participant=participant,
                           masked_phone=mask_phone(participant.phone if participant else None),
                           badges_form=badges_form)


class BadgesForm(FlaskForm):
    """The forum-profile opt-in (its own small form, so it saves without the profile)."""

    show_badges = BooleanField("Show my badges on my forum profile")
    submit = SubmitField("Save profile setting")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, prefix="badges", **kwargs)


@bp.route("/account/badges", methods=["POST"])
@role_required("participant")
def account_badges():
    form = BadgesForm()
    if not form.validate_on_submit():
        abort(400)
    current_user.show_badges = bool(form.show_badges.data)
    db.session.commit()
    flash("Your badges now show on your forum profile." if current_user.show_badges
          else "Your badges are now private.", "success")
    return redirect(url_for("core.account"))


@bp.route("/account/password", methods=["GET", "POST"])
@signed_in
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        from core.passwords import check_password

        if not check_password(current_user.password_hash, form.current.data):
            form.current.errors = ["That is not your current password."]
        else:
            try:
                accounts.check_password_rules(form.password.data, current_user.email,
                                              current_user.display_name)
            except accounts.AccountError as exc:
                form.password.errors = [str(exc)]
            else:
                auth.change_password(current_user, form.password.data, actor=current_user)
                db.session.commit()
                sessions.end()
                flash("Your password is changed and you were signed out everywhere. "
                      "Please sign in with the new password.", "success")
                return redirect(url_for("core.login"))
    return render_template("core/password.html", form=form)


@bp.route("/account/security")
@signed_in
def security():
    from sqlalchemy import func, select

    from core.models import RecoveryCode

    remaining = db.session.scalar(
        select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == current_user.id,
                                                  RecoveryCode.used_at.is_(None)))
    return render_template("core/security.html", remaining=remaining, form=ConfirmForm())


@bp.route("/account/security/recovery-codes", methods=["POST"])
@signed_in
def recovery_codes():
    form = ConfirmForm()
    if not form.validate_on_submit() or not current_user.mfa_enabled:
        abort(400)
    codes = auth.regenerate_recovery_codes(current_user)
    audit.record("mfa.recovery_codes_renewed", actor=current_user, target=current_user)
    db.session.commit()
    return render_template("core/recovery_codes.html", codes=codes, next=url_for("core.security"))


@bp.route("/account/security/turn-off", methods=["GET", "POST"])
@role_required("participant", "peer_moderator")
def mfa_disable():
    if current_user.mfa_required or not current_user.mfa_enabled:
        abort(403 if current_user.mfa_required else 404)
    form = PasswordConfirmForm()
    if form.validate_on_submit():
        from core.passwords import check_password

        if check_password(current_user.password_hash, form.password.data):
            auth.disable_mfa(current_user, actor=current_user)
            db.session.commit()
            flash("Two-step sign-in is off.", "info")
            return redirect(url_for("core.security"))
        form.password.errors = ["That is not your password."]
    return render_template("core/mfa_disable.html", form=form)
