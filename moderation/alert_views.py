"""Risk-alert pages (clinicians only), the on-call rota (clinicians and admins) and the
adverse-events list (researchers and clinicians). Peer moderators reach none of them."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError
from wtforms.fields.choices import SelectChoice

from core import navigation
from core.access import role_required
from core.extensions import db
from core.forms import ConfirmForm, show_error
from core.models import User
from core.roles import Role
from moderation import alerts, bp, content
from moderation.forms import DeadlineForm, ResolveForm, RotaAddForm, RotaMoveForm, RotaPhoneForm
from moderation.models import ALERT_ACTIONS, CATEGORIES, LEVELS, RiskAlert, RotaEntry
from outcomes.participants import may_contact

ROTA_ROLES = (Role.CLINICIAN, Role.ADMIN)
navigation.add("Risk alerts", "moderation.alerts_list", {Role.CLINICIAN}, order=11)
navigation.add("On-call rota", "moderation.rota", set(ROTA_ROLES), order=12)
navigation.add("Adverse events", "moderation.adverse_events",
               {Role.RESEARCHER, Role.CLINICIAN}, order=13)


@bp.route("/alerts")
@role_required(Role.CLINICIAN)
def alerts_list():
    everything = request.args.get("all") == "1"
    rows = alerts.alerts_for(current_user, include_resolved=everything)
    return render_template("moderation/alerts.html", rows=rows, everything=everything,
                           categories=CATEGORIES, levels=LEVELS)


def _alert_page(alert: RiskAlert, form: ResolveForm | None = None):
    alerts.view_alert(alert, actor=current_user)
    db.session.commit()
    participant = alert.participant
    return render_template(
        "moderation/alert.html", alert=alert, form=form or ResolveForm(),
        confirm=ConfirmForm(), text=content.text_of(alert.content_type, alert.content_id),
        history=alerts.alert_history(alert), categories=CATEGORIES, levels=LEVELS,
        actions=ALERT_ACTIONS,
        contactable=participant is None or may_contact(participant))


@bp.route("/alerts/<int:alert_id>")
@role_required(Role.CLINICIAN)
def alert_detail(alert_id: int):
    return _alert_page(db.get_or_404(RiskAlert, alert_id))


@bp.route("/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@role_required(Role.CLINICIAN)
def alert_acknowledge(alert_id: int):
    alert = db.get_or_404(RiskAlert, alert_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        taken = alerts.acknowledge(alert, actor=current_user)
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        taken = False
    if taken:
        flash("You have taken this alert. Escalation has stopped.", "success")
    else:
        alert = db.session.get(RiskAlert, alert_id)
        who = alert.acknowledged_by.name if alert and alert.acknowledged_by else "someone else"
        flash(f"This alert was already taken by {who}.", "info")
    return redirect(url_for("moderation.alert_detail", alert_id=alert_id))


@bp.route("/alerts/<int:alert_id>/resolve", methods=["POST"])
@role_required(Role.CLINICIAN)
def alert_resolve(alert_id: int):
    alert = db.get_or_404(RiskAlert, alert_id)
    form = ResolveForm()
    if form.validate_on_submit():
        try:
            alerts.resolve(alert, actor=current_user, actions=form.actions.data,
                           note=form.note.data, adverse_event=form.adverse_event.data == "yes")
            db.session.commit()
        except alerts.AlertError as exc:
            db.session.rollback()
            show_error(form, exc)
        except StaleDataError:
            db.session.rollback()
            flash("Someone else changed this alert at the same time. Please check it again.",
                  "error")
            return redirect(url_for("moderation.alert_detail", alert_id=alert_id))
        else:
            flash("Alert resolved.", "success")
            return redirect(url_for("moderation.alerts_list"))
    return _alert_page(db.get_or_404(RiskAlert, alert_id), form)


# --------------------------------------------------------------------------- rota


def _rota_page(add_form: RotaAddForm | None = None, deadline_form: DeadlineForm | None = None):
    entries = alerts.rota()
    add_form = add_form or RotaAddForm()
    listed = {e.user_id for e in entries}
    add_form.user_id.choices = [SelectChoice(u.id, u.name) for u in alerts.clinicians()
                                if u.id not in listed]
    deadline_form = deadline_form or DeadlineForm(data={"minutes": alerts.deadline_minutes()})
    on_call = alerts.on_call()
    return render_template("moderation/rota.html", entries=entries, add_form=add_form,
                           deadline_form=deadline_form, move_form=RotaMoveForm(),
                           phone_form=RotaPhoneForm(), confirm=ConfirmForm(),
                           on_call_id=on_call.id if on_call else None)


@bp.route("/rota")
@role_required(*ROTA_ROLES)
def rota():
    return _rota_page()


@bp.route("/rota/add", methods=["POST"])
@role_required(*ROTA_ROLES)
def rota_add():
    form = RotaAddForm()
    form.user_id.choices = [SelectChoice(u.id, u.name) for u in alerts.clinicians()]
    if form.validate_on_submit():
        user = db.session.get(User, form.user_id.data)
        try:
            if user is None:
                raise alerts.AlertError("Choose a clinician.", "user_id")
            alerts.add_to_rota(user, phone=form.phone.data, actor=current_user)
        except alerts.AlertError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash("Added to the rota.", "success")
            return redirect(url_for("moderation.rota"))
    return _rota_page(add_form=form)


@bp.route("/rota/<int:entry_id>/move", methods=["POST"])
@role_required(*ROTA_ROLES)
def rota_move(entry_id: int):
    entry = db.get_or_404(RotaEntry, entry_id)
    form = RotaMoveForm()
    if form.validate_on_submit():
        alerts.move(entry, form.direction.data, actor=current_user)
        db.session.commit()
        flash("Rota updated.", "success")
    return redirect(url_for("moderation.rota"))


@bp.route("/rota/<int:entry_id>/phone", methods=["POST"])
@role_required(*ROTA_ROLES)
def rota_phone(entry_id: int):
    entry = db.get_or_404(RotaEntry, entry_id)
    form = RotaPhoneForm()
    if form.validate_on_submit():
        try:
            alerts.set_phone(entry, form.phone.data, actor=current_user)
        except alerts.AlertError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash("Number saved.", "success")
    return redirect(url_for("moderation.rota"))


@bp.route("/rota/<int:entry_id>/remove", methods=["POST"])
@role_required(*ROTA_ROLES)
def rota_remove(entry_id: int):
    entry = db.get_or_404(RotaEntry, entry_id)
    if ConfirmForm().validate_on_submit():
        alerts.remove_from_rota(entry, actor=current_user)
        db.session.commit()
        flash("Removed from the rota.", "success")
    return redirect(url_for("moderation.rota"))


@bp.route("/rota/deadline", methods=["POST"])
@role_required(*ROTA_ROLES)
def rota_deadline():
    form = DeadlineForm()
    if form.validate_on_submit():
        try:
            alerts.set_deadline_minutes(form.minutes.data, actor=current_user)
        except alerts.AlertError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash("Deadline saved.", "success")
            return redirect(url_for("moderation.rota"))
    return _rota_page(deadline_form=form)


# --------------------------------------------------------------------------- adverse events


@bp.route("/adverse-events")
@role_required(Role.RESEARCHER, Role.CLINICIAN)
def adverse_events():
    return render_template("moderation/adverse_events.html", rows=alerts.adverse_events(),
                           categories=CATEGORIES, actions=ALERT_ACTIONS)
