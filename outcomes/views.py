"""Researcher pages: the dashboard, enrolment, invite links, and each participant's
path: randomisation, status moves and withdrawals."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core import accounts, navigation
from core.access import role_required
from core.clock import utcnow
from core.extensions import db
from core.forms import ConfirmForm, show_error
from core.models import Invite, Participant, User
from core.roles import MODERATORS, Role
from outcomes import adherence, bp, randomisation, services
from outcomes import participants as path
from outcomes.forms import EnrolForm, RandomiseForm, StatusForm, WithdrawForm, randomise_form
from outcomes.models import Arm, Study

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
    """The trial at a glance, computed from live data on every request. ``?stopped_after=N``
    changes how many days without use count as "stopped using" (1 to 365)."""
    study = _study()
    raw = request.args.get("stopped_after", "").strip()
    stopped_after = int(raw) if raw.isdigit() and 1 <= int(raw) <= 365 else None
    board = services.dashboard(
        study, stopped_after_days=stopped_after or adherence.DEFAULT_STOPPED_AFTER_DAYS)
    return render_template("outcomes/dashboard.html", board=board,
                           statuses=services.STATUSES, kinds=path.WITHDRAWAL_KINDS,
                           is_open=randomisation.is_open(study), form=ConfirmForm(),
                           definitions=adherence.DEFINITIONS, show=services.show_value,
                           stopped_after_error=bool(raw) and stopped_after is None)


@bp.route("/open", methods=["POST"])
@role_required(*RESEARCH)
def open_enrolment():
    study = _study()
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        randomisation.open_enrolment(study, actor=current_user)
    except path.TrialError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("Enrolment is open. The allocation sequence is made and kept hidden.", "success")
    return redirect(url_for("outcomes.dashboard"))


@bp.route("/participants")
@role_required(*RESEARCH)
def participants():
    study = _study()
    status = request.args.get("status", "")
    query = (select(Participant).options(joinedload(Participant.user))
             .where(Participant.study_id == study.id).order_by(Participant.study_code))
    if status == path.LOST:
        query = query.where(Participant.id.in_(services.lost_to_follow_up_ids(study)))
    elif status in services.STATUSES:
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
            show_error(form, exc)
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
    return _participant_page(db.get_or_404(Participant, participant_id))


def _participant_page(person: Participant, *, withdraw_form: WithdrawForm | None = None,
                      random_form: RandomiseForm | None = None):
    """The participant's record. Reads nothing of the allocation sequence: only their own
    arm, once they have one."""
    study = db.session.get(Study, person.study_id)
    invites = db.session.scalars(select(Invite).where(Invite.participant_id == person.id)
                                 .order_by(Invite.created_at.desc())).all()
    now = utcnow()
    return render_template(
        "outcomes/participant.html", person=person, invites=invites, now=now, study=study,
        form=ConfirmForm(), arm=db.session.get(Arm, person.arm_id) if person.arm_id else None,
        withdrawals=path.withdrawals_of(person), kinds=path.WITHDRAWAL_KINDS,
        moves=path.moves_for(person), status_form=StatusForm(),
        lost=path.is_lost_to_follow_up(person, now=now, days=study.lost_after_days),
        lost_after_days=study.lost_after_days,
        can_randomise=person.status == "baseline_done" and randomisation.is_open(study),
        random_form=random_form or randomise_form(study, person, formdata=None),
        withdraw_form=withdraw_form or WithdrawForm(formdata=None),
        can_withdraw=person.status != path.WITHDRAWN)


def _field_error(form, exc: path.TrialError) -> None:
    """Show a service's refusal next to its field (strata fields are ``stratum_<name>``),
    or at the top of the page."""
    name = next((n for n in (exc.field, f"stratum_{exc.field}") if exc.field and n in form), None)
    show_error(form, exc, field=name or "")


@bp.route("/participants/<int:participant_id>/randomise", methods=["POST"])
@role_required(*RESEARCH)
def randomise(participant_id: int):
    person = db.get_or_404(Participant, participant_id)
    study = db.session.get(Study, person.study_id)
    form = randomise_form(study, person)
    if form.validate_on_submit():
        try:
            arm = randomisation.randomise(person, actor=current_user, strata=form.strata())
        except path.TrialError as exc:
            db.session.rollback()
            _field_error(form, exc)
        else:
            db.session.commit()
            flash(f"{person.study_code} is randomised to {arm.name}.", "success")
            return redirect(url_for("outcomes.participant", participant_id=person.id))
    return _participant_page(person, random_form=form)


@bp.route("/participants/<int:participant_id>/withdraw", methods=["POST"])
@role_required(*RESEARCH)
def withdraw(participant_id: int):
    person = db.get_or_404(Participant, participant_id)
    form = WithdrawForm()
    if form.validate_on_submit():
        try:
            at = path.withdrawal_time(person, form.day.data, now=utcnow())
            path.withdraw(person, form.kind.data, actor=current_user, reason=form.reason.data,
                          at=at)
        except path.TrialError as exc:
            db.session.rollback()
            _field_error(form, exc)
        else:
            db.session.commit()
            flash(f"The withdrawal of {person.study_code} is recorded.", "success")
            return redirect(url_for("outcomes.participant", participant_id=person.id))
    return _participant_page(person, withdraw_form=form)


@bp.route("/participants/<int:participant_id>/status", methods=["POST"])
@role_required(*RESEARCH)
def move(participant_id: int):
    person = db.get_or_404(Participant, participant_id)
    form = StatusForm()
    if not form.validate_on_submit() or form.to.data not in path.MANUAL_MOVES:
        abort(400)
    try:
        path.transition(person, form.to.data, actor=current_user)
    except path.TrialError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"{person.study_code} is now {path.describe(form.to.data)}.", "success")
    return redirect(url_for("outcomes.participant", participant_id=person.id))


@bp.route("/participants/<int:participant_id>/invite", methods=["POST"])
@role_required(*RESEARCH)
def reissue_invite(participant_id: int):
    person = db.get_or_404(Participant, participant_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if person.status == path.WITHDRAWN:
        flash(f"{person.study_code} has withdrawn from the study: no new invite is made.", "error")
        return redirect(url_for("outcomes.participant", participant_id=person.id))
    try:
        issued = accounts.issue_invite(person, actor=current_user)
    except accounts.AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("outcomes.participant", participant_id=person.id))
    db.session.commit()
    return render_template("outcomes/invite_link.html", participant=person, invite=issued.invite,
                           link=url_for("core.invite", token=issued.token, _external=True))
