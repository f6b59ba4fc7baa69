"""Moderator pages: the caseload and the staff page of a participant."""

from __future__ import annotations

from flask import abort, render_template, request
from flask_login import current_user

from core import navigation
from core.access import role_required
from core.extensions import db
from core.models import Participant
from core.pagecache import cached
from core.roles import MODERATORS, Role
from moderation import bp, services, timeline
from moderation import caseload as caseload_figures
from outcomes.prompts.services import sms_answers_for

navigation.add("Caseload", "moderation.caseload", MODERATORS, order=10)


def _everyone() -> bool:
    # only clinicians may see everyone; a peer's ``all=1`` must not relabel their own list
    return request.args.get("all") == "1" and current_user.role == Role.CLINICIAN


@bp.route("/")
@role_required(*MODERATORS)
@cached(lambda: caseload_figures.version(current_user, everyone=_everyone()))
def caseload():
    everyone = _everyone()
    filters = services.Filters.from_args(request.args)
    result = services.caseload(current_user, everyone=everyone, filters=filters)
    return render_template("moderation/caseload.html", caseload=result, filters=result.filters,
                           everyone=everyone, sorts=caseload_figures.SORTS,
                           bands=caseload_figures.BAND_CHOICES,
                           has_choices=caseload_figures.HAS_CHOICES,
                           no_arm=caseload_figures.NO_ARM)


@bp.route("/participants/<int:participant_id>")
@role_required(*MODERATORS)
def participant(participant_id: int):
    person = db.get_or_404(Participant, participant_id)
    try:
        page = services.view_participant(
            person, actor=current_user, kinds=services.parse_kinds(request.args.getlist("show")),
            period=request.args.get("period", services.DEFAULT_PERIOD))
    except services.PermissionDenied:
        abort(403)
    db.session.commit()
    return render_template("moderation/participant.html", person=person, page=page,
                           kind_labels=timeline.KIND_LABELS, periods=services.PERIODS,
                           sms_answers=sms_answers_for(person))
