"""Researcher pages: the dashboard, enrolment and invite links."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core import accounts, navigation
from core.access import role_required
from core.clock import utcnow
from core.extensions import db
from core.forms import ConfirmForm
from core.models import Invite, Participant, User
from core.roles import MODERATORS, Role
from outcomes import bp, services
from outcomes.forms import EnrolForm

RESEARCH = (Role.RESEARCHER, Role.ADMIN)
navigation.add("Trial", "outcomes.dashboard", {Role.RESEARCHER}, order=10)
navigation.add("Participants", "outcomes.participants", set(RESEARCH), order=11)


def _study():
    try:
        return services.current_study()
    except services.NoStudy as exc:
        abort(404, str(exc))


@bp.route("/")
@role_required(*RESEARCH)
def dashboard():
    study = _study()
    return render_template("outcomes/dashboard.html", board=services.dashboard(study),
                           statuses=services.STATUSES)


@bp.route("/participants")
@role_required(*RESEARCH)
def participants():
    study = _study()
    status = request.args.get("status", "")
    query = (select(Participant).options(joinedload(Participant.user))
             .where(Participant.study_id == study.id).order_by(Participant.study_code))
    if status in services.STATUSES:
        query = query.where(Participant.status == status)
    people = db.session.scalars(query).all()
    return render_template("outcomes/participants.html", people=people, status=status,
                           statuses=services.STATUSES, arms={a.id: a for a in study.arms})


def _moderator_choices() -> list[tuple[int, str]]:
    staff = db.session.scalars(select(User).where(User.role.in_(MODERATORS), User.is_enabled)
                               .order_by(User.display_name, User.email)).all()
    return [(0, "Assign later")] + [(u.id, f"{u.name} ({u.role.label})") for u in staff]


@bp.route("/participants/new", methods=["GET", "POST"])
@role_required(*RESEARCH)
def enrol():
    study = _study()
    form = EnrolForm()
    form.moderator_id.choices = _moderator_choices()
    if form.validate_on_submit():
        moderator = db.session.get(User, form.moderator_id.data) if form.moderator_id.data else None
        try:
            issued = accounts.enrol_participant(study, actor=current_user,
                                                study_code=form.study_code.data,
                                                site=form.site.data, moderator=moderator)
        except accounts.AccountError as exc:
            db.session.rollback()
            field = getattr(form, exc.field or "", None)
            if field is not None:
                field.errors = list(field.errors) + [str(exc)]
            else:
                flash(str(exc), "error")
        else:
            db.session.commit()
            return render_template(
                "outcomes/invite_link.html", participant=issued.invite.participant,
                link=url_for("core.invite", token=issued.token, _external=True),
                invite=issued.invite)
    return render_template("outcomes/enrol.html", form=form, study=study)


@bp.route("/participants/<int:participant_id>")
@role_required(*RESEARCH)
def participant(participant_id: int):
    person = db.get_or_404(Participant, participant_id)
    invites = db.session.scalars(select(Invite).where(Invite.participant_id == person.id)
                                 .order_by(Invite.created_at.desc())).all()
    return render_template("outcomes/participant.html", person=person, invites=invites,
                           now=utcnow(), form=ConfirmForm())


@bp.route("/participants/<int:participant_id>/invite", methods=["POST"])
@role_required(*RESEARCH)
def reissue_invite(participant_id: int):
    person = db.get_or_404(Participant, participant_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        issued = accounts.issue_invite(person, actor=current_user)
    except accounts.AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("outcomes.participant", participant_id=person.id))
    db.session.commit()
    return render_template("outcomes/invite_link.html", participant=person, invite=issued.invite,
                           link=url_for("core.invite", token=issued.token, _external=True))
