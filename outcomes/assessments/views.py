"""The participant's questionnaire pages, under ``/questionnaires``.

A list of what is due; one question per screen (a fieldset of radio buttons with the
published response labels, Back/Next), each answer saved when the screen is posted;
a review screen listing every answer with a link to change it; submit, then the next
questionnaire or a thank-you. Participants only, and only their own responses: another
participant's response id answers 404. Staff never fill questionnaires for anyone.

The blueprint hangs off ``outcomes.bp`` (registered on the app together with it) so the
participant-facing address is short and has no "/research" in it.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from core import navigation
from core.access import role_required
from core.extensions import db
from core.forms import ConfirmForm
from core.models import Participant
from core.roles import Role
from outcomes import bp as outcomes_bp
from outcomes.assessments import services
from outcomes.assessments.forms import answer_form
from outcomes.assessments.models import AssessmentResponse
from outcomes.instruments import Instrument
from outcomes.participants import may_contact

bp = Blueprint("assessments", __name__, url_prefix="/questionnaires")


def questionnaires_due() -> list[services.DueQuestionnaire]:
    """For templates outside this package (e.g. the core home page), which cannot import
    it: the signed-in participant's due questionnaires, or none."""
    participant = getattr(current_user, "participant", None) \
        if current_user.is_authenticated else None
    return services.due_for(participant) if participant is not None else []


def _register(state) -> None:  # noqa: ANN001 - Flask's BlueprintSetupState
    state.app.register_blueprint(bp)
    state.app.add_template_global(questionnaires_due, "questionnaires_due")


outcomes_bp.record_once(_register)


def _may_fill(user) -> bool:  # noqa: ANN001
    participant = getattr(user, "participant", None)
    return participant is not None and may_contact(participant)


navigation.add("Questionnaires", "assessments.index", {Role.PARTICIPANT}, order=5,
               visible=_may_fill)
participant_only = role_required(Role.PARTICIPANT)


def _me() -> Participant:
    return current_user.participant


def _mine(response_id: int) -> AssessmentResponse:
    """The signed-in participant's response, or 404 (another's looks like no response)."""
    response = db.session.get(AssessmentResponse, response_id)
    if response is None or response.participant_id != _me().id:
        abort(404)
    return response


# --------------------------------------------------------------------------- list

@bp.route("/")
@participant_only
def index():
    participant = _me()
    schedule = services.schedule_for(participant)
    return render_template("outcomes/assessments/index.html", due=services.due_for(participant),
                           schedule=schedule, participant=participant, form=ConfirmForm(),
                           coming=next((s for s in schedule if s.status == services.UPCOMING
                                        and s.window.opens_at), None))


@bp.route("/start/<timepoint_key>/<instrument_id>", methods=["POST"])
@participant_only
def start(timepoint_key: str, instrument_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    participant = _me()
    timepoint = services.timepoint_by_key(participant.study_id, timepoint_key)
    if timepoint is None:
        abort(404)
    try:
        response = services.start(participant, timepoint, instrument_id)
    except services.AssessmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("assessments.index"))
    db.session.commit()
    return redirect(url_for("assessments.resume", response_id=response.id))


@bp.route("/<int:response_id>")
@participant_only
def resume(response_id: int):
    """Carry on where they left off: the first unanswered question, or the review."""
    response = _mine(response_id)
    if response.submitted_at is not None:
        flash("You have already sent this questionnaire. Thank you.", "info")
        return redirect(url_for("assessments.index"))
    number = services.first_unanswered(response)
    if number is None:
        return redirect(url_for("assessments.review", response_id=response.id))
    return redirect(url_for("assessments.question", response_id=response.id, number=number))


# --------------------------------------------------------------------------- one question

def _neighbours(instrument: Instrument, number: int) -> tuple[int | None, int | None]:
    numbers = instrument.item_numbers
    index = numbers.index(number)
    return (numbers[index - 1] if index else None,
            numbers[index + 1] if index + 1 < len(numbers) else None)


def _render_question(response: AssessmentResponse, instrument: Instrument, number: int,
                     form, *, from_review: bool, status: int = 200):  # noqa: ANN001
    item = next(i for i in instrument.items if i.number == number)
    return render_template(
        "outcomes/assessments/question.html", response=response, instrument=instrument,
        item=item, form=form, position=instrument.item_numbers.index(number) + 1,
        count=len(instrument.items), from_review=from_review,
        answered=len(services.answers_of(response))), status


@bp.route("/<int:response_id>/question/<int:number>", methods=["GET", "POST"])
@participant_only
def question(response_id: int, number: int):
    response = _mine(response_id)
    instrument = services.instrument_of(response)
    if number not in instrument.item_numbers:
        abort(404)
    if response.submitted_at is not None:
        flash("You have already sent this questionnaire. Thank you.", "info")
        return redirect(url_for("assessments.index"))
    from_review = request.values.get("review") == "1"
    item = next(i for i in instrument.items if i.number == number)
    if request.method == "GET":
        form = answer_form(instrument, item, services.answers_of(response).get(number))
        return _render_question(response, instrument, number, form, from_review=from_review)
    form = answer_form(instrument, item, None, bound=True)
    if not form.validate_on_submit():
        abort(400)
    raw = form.raw_answer()
    if raw is not None:
        try:
            services.save_answer(response, _me(), number, raw)
        except services.AssessmentError as exc:
            db.session.rollback()
            form.answer.errors = [str(exc)]
            return _render_question(response, instrument, number, form,
                                    from_review=from_review, status=400)
        db.session.commit()
    return _after_answer(response, instrument, number, from_review=from_review)


def _after_answer(response: AssessmentResponse, instrument: Instrument, number: int, *,
                  from_review: bool):
    before, after = _neighbours(instrument, number)
    if request.form.get("go") == "back":
        if before is None:
            return redirect(url_for("assessments.index"))
        return redirect(url_for("assessments.question", response_id=response.id, number=before))
    if request.form.get("go") == "later":
        flash("Your answers so far are saved. Come back any time to carry on.", "success")
        return redirect(url_for("assessments.index"))
    if from_review or after is None:
        return redirect(url_for("assessments.review", response_id=response.id))
    return redirect(url_for("assessments.question", response_id=response.id, number=after))


# --------------------------------------------------------------------------- review, submit

def _render_review(response: AssessmentResponse, *, missing: list[int] | None = None,
                   status: int = 200):
    instrument = services.instrument_of(response)
    labels = {option.value: option.label for option in instrument.options}
    return render_template("outcomes/assessments/review.html", response=response,
                           instrument=instrument, answers=services.answers_of(response),
                           labels=labels, missing=missing or [], form=ConfirmForm()), status


@bp.route("/<int:response_id>/review")
@participant_only
def review(response_id: int):
    response = _mine(response_id)
    if response.submitted_at is not None:
        flash("You have already sent this questionnaire. Thank you.", "info")
        return redirect(url_for("assessments.index"))
    return _render_review(response)


@bp.route("/<int:response_id>/submit", methods=["POST"])
@participant_only
def submit(response_id: int):
    response = _mine(response_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    participant = _me()
    try:
        outcome = services.submit(response, participant)
    except services.MissingAnswers as exc:
        db.session.rollback()
        return _render_review(response, missing=exc.items, status=400)
    except services.AssessmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("assessments.index"))
    timepoint_key = response.timepoint.key
    db.session.commit()
    if outcome.timepoint_completed:
        return redirect(url_for("assessments.thanks", timepoint_key=timepoint_key))
    flash("Thank you: your answers are saved.", "success")
    return redirect(url_for("assessments.index"))


@bp.route("/thanks/<timepoint_key>")
@participant_only
def thanks(timepoint_key: str):
    participant = _me()
    timepoint = services.timepoint_by_key(participant.study_id, timepoint_key)
    if timepoint is None:
        abort(404)
    if services.state_of(participant, timepoint).status != services.COMPLETED:
        return redirect(url_for("assessments.index"))
    return render_template("outcomes/assessments/thanks.html", timepoint=timepoint,
                           participant=participant, due=services.due_for(participant),
                           has_today=navigation.is_visible(current_user, "modules.today"))
