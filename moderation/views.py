"""Moderator pages: the caseload and a participant's timeline."""

from __future__ import annotations

from flask import abort, render_template, request
from flask_login import current_user

from core import navigation
from core.access import role_required
from core.events import KINDS
from core.extensions import db
from core.models import Participant
from core.roles import MODERATORS, Role
from moderation import bp, services
from outcomes.prompts.services import sms_answers_for

navigation.add("Caseload", "moderation.caseload", MODERATORS, order=10)


@bp.route("/")
@role_required(*MODERATORS)
def caseload():
    # only clinicians may see everyone; a peer's ``all=1`` must not relabel their own list
    everyone = request.args.get("all") == "1" and current_user.role == Role.CLINICIAN
    band = request.args.get("band", "")
    rows = services.caseload(current_user, everyone=everyone)
    if band in {"green", "amber", "red", "grey"}:
        rows = [r for r in rows if r.band == band]
    return render_template("moderation/caseload.html", rows=rows, everyone=everyone, band=band)


@bp.route("/participants/<int:participant_id>")
@role_required(*MODERATORS)
def participant(participant_id: int):
    person = db.get_or_404(Participant, participant_id)
    try:
        events = services.view_participant(person, actor=current_user)
    except services.PermissionDenied:
        abort(403)
    db.session.commit()
    return render_template("moderation/participant.html", person=person, events=events, kinds=KINDS,
                           sms_answers=sms_answers_for(person))
