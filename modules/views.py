"""Participant pages of the therapy modules: today, the library, a module, its steps,
progress, the mood check, and the module media files.

Every page is for participants whose study arm has modules (``feature_required``);
everyone else gets 403 and sees no module navigation. Views parse a form, load rows,
call one service, commit, flash and redirect; what happens lives in
``modules.services``, ``modules.mood`` and ``modules.gamification``. Each page builds one
``services.Context`` so its query count does not grow with the library or the history.
"""

from __future__ import annotations

import functools
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from flask import abort, flash, redirect, render_template, send_file, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from core import navigation
from core.access import role_required
from core.clock import utcnow
from core.extensions import db
from core.forms import show_error
from core.models import Participant
from core.pagecache import cached
from core.roles import Role
from modules import bp, charts, gamification, mood, services
from modules.forms import (
    ActionCheckForm,
    ButtonForm,
    CheckpointForm,
    MoodForm,
    ReflectionForm,
    quiz_form,
)
from modules.library import media_path
from modules.models import (
    ActionPlan,
    CheckpointRating,
    ContentSuggestion,
    JournalEntry,
    Module,
    Step,
)
from modules.progress import local_date, participant_zone
from modules.today import home_context
from outcomes.assessments.services import due_for
from outcomes.services import features_for, refuse_feature

F = TypeVar("F", bound=Callable[..., Any])

#: how the pages name each kind of step, and each kind of evidence
KIND_LABELS = {"read": "Read", "video": "Watch", "reflect": "Reflect", "quiz": "Quiz",
               "action": "Try it", "checkpoint": "Your view"}
EVIDENCE_LABELS = {"cbt": "CBT", "self-compassion": "Self-compassion",
                   "positive-psychology": "Positive psychology",
                   "behavioural-activation": "Behavioural activation",
                   "mindfulness": "Mindfulness", "psychoeducation": "Understanding",
                   "social-skills": "Social skills"}
PRIVACY_NOTE = ("Only you can see this, unless what you write suggests you may be at risk; "
                "then a clinician from the study team may read it.")
FLAGGED_NOTE = ("Thank you for writing this. It sounds like things may be hard right now. "
                "A clinician from the study team may read it and get in touch. If you feel "
                "unsafe, please use one of these services now.")
MOOD_DAYS = 30
#: served with the module's pictures and videos: nothing in them may run
MEDIA_CSP = ("default-src 'none'; img-src 'self' data:; media-src 'self'; "
             "style-src 'unsafe-inline'; sandbox")
MEDIA_TYPES = {".vtt": "text/vtt", ".webp": "image/webp", ".webm": "video/webm",
               ".mp4": "video/mp4", ".svg": "image/svg+xml"}


def has_modules(user: Any) -> bool:
    return bool(features_for(user).get("modules"))


navigation.add("Today", "modules.today", {Role.PARTICIPANT}, order=0, visible=has_modules)
navigation.add("Modules", "modules.library", {Role.PARTICIPANT}, order=20, visible=has_modules)
navigation.add("Progress", "modules.progress", {Role.PARTICIPANT}, order=30, visible=has_modules)


def feature_required(feature: str) -> Callable[[F], F]:
    """Only when the signed-in participant's study arm has ``feature`` (else home while
    they await allocation, or 403). Goes under ``@role_required``, which has already
    turned away everyone else."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not features_for(current_user).get(feature):
                return refuse_feature(current_user)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def participant_page(view: F) -> F:
    """A module page: participants only, and only when their arm has modules."""
    return role_required(Role.PARTICIPANT)(feature_required("modules")(view))


@bp.context_processor
def labels() -> dict[str, Any]:
    return {"kind_labels": KIND_LABELS, "evidence_labels": EVIDENCE_LABELS,
            "mood_scale": mood.MOOD_SCALE,
            "mood_symbols": {level.score: level.symbol for level in mood.MOOD_SCALE}}


def _me() -> Participant:
    return current_user.participant


# --------------------------------------------------------------------------- awards


@dataclass(frozen=True)
class _Before:
    points: int
    badges: frozenset[str]


def _before(participant: Participant) -> _Before | None:
    """What the participant had before an action, to tell them what it earned."""
    if not gamification.enabled(participant):
        return None
    earned = frozenset(b.id for b in gamification.badge_status(participant) if b.earned)
    return _Before(gamification.total_points(participant), earned)


def _flash_done(message: str, participant: Participant, before: _Before | None) -> None:
    """Flash ``message`` with the points it earned, then any new badge or level."""
    if before is None:
        flash(message, "award")
        return
    points = gamification.total_points(participant)
    gained = points - before.points
    flash(f"{message} +{gained} points" if gained > 0 else message, "award")
    for badge in gamification.badge_status(participant):
        if badge.earned and badge.id not in before.badges:
            flash(f"New badge: {badge.name}", "award")
    level = gamification.level_for(points)
    if level.number > gamification.level_for(before.points).number:
        flash(f"You reached level {level.number}: {level.name}", "award")


# --------------------------------------------------------------------------- today


@bp.route("/today")
@participant_page
@cached()
def today():
    return _render_today(_me())


def _render_today(participant: Participant, *, mood_form: MoodForm | None = None,
                  bound_check: tuple[int, ActionCheckForm] | None = None) -> str:
    """The today page; a form that failed to validate is passed in to show its errors."""
    home = home_context(participant)
    ctx, facts = home.ctx, home.facts
    entry = facts.mood
    if mood_form is None:
        data = {"score": entry.score, "note": entry.note} if entry else None
        mood_form = MoodForm(formdata=None, data=data)
    plans = services.due_action_checks(participant) if facts.has_checks else []
    # one query for all their steps (the service's joined rows are not kept alive)
    steps = {step.id: step for step in db.session.scalars(
        select(Step).where(Step.id.in_([plan.step_id for plan in plans])))} if plans else {}
    checks = []
    for plan in plans:
        form = (bound_check[1] if bound_check and bound_check[0] == plan.id
                else ActionCheckForm(formdata=None, prefix=f"check-{plan.id}"))
        checks.append((plan, steps[plan.step_id], form))
    return render_template(
        "modules/today.html", greeting=_greeting(participant),
        next_step=home.next_step, checks=checks,
        suggestions=services.suggestions_for(participant) if facts.has_suggestions else [],
        mood_entry=entry, mood_form=mood_form,
        game=gamification.summary(participant, points=ctx.points),
        button=ButtonForm(formdata=None), started=bool(ctx.counts.done),
        timezone=participant.timezone, questionnaires=due_for(participant))


def _greeting(participant: Participant) -> str:
    hour = utcnow().astimezone(participant_zone(participant)).hour
    part = "morning" if 4 <= hour < 12 else "afternoon" if 12 <= hour < 18 else "evening"
    return f"Good {part}, {current_user.display_name}"


@bp.route("/mood", methods=["POST"])
@participant_page
def log_mood():
    participant = _me()
    form = MoodForm()
    if form.validate_on_submit():
        before = _before(participant)
        try:
            mood.log_mood(participant, form.score.data, form.note.data)
        except services.ModuleError as exc:
            db.session.rollback()
            show_error(form, exc, field="score")
        else:
            db.session.commit()
            _flash_done("Your mood is saved.", participant, before)
            return redirect(url_for("modules.today"))
    return _render_today(participant, mood_form=form)


@bp.route("/actions/<int:plan_id>/check", methods=["POST"])
@participant_page
def check_action(plan_id: int):
    participant = _me()
    plan = db.get_or_404(ActionPlan, plan_id)
    if plan.participant_id != participant.id:
        abort(404)
    form = ActionCheckForm(prefix=f"check-{plan.id}")
    if form.validate_on_submit():
        before = _before(participant)
        tried = form.tried.data == "yes"
        try:
            services.check_action(participant, plan, tried=tried, rating=form.rating.data)
        except services.ModuleError as exc:
            db.session.rollback()
            show_error(form, exc, field="rating")
        else:
            db.session.commit()
            _flash_done("Well done for trying it. Thank you for telling us." if tried else
                        "Thank you for telling us. You can try it any time.", participant, before)
            return redirect(url_for("modules.today"))
    return _render_today(participant, bound_check=(plan.id, form))


@bp.route("/suggestions/<int:suggestion_id>/dismiss", methods=["POST"])
@participant_page
def dismiss_suggestion(suggestion_id: int):
    participant = _me()
    suggestion = db.get_or_404(ContentSuggestion, suggestion_id)
    if suggestion.participant_id != participant.id:
        abort(404)
    if ButtonForm().validate_on_submit():
        services.dismiss_suggestion(participant, suggestion)
        db.session.commit()
        flash("Removed from your suggestions.", "success")
    return redirect(url_for("modules.today"))


# --------------------------------------------------------------------------- library, module


@bp.route("/")
@participant_page
def library():
    cards = services.library(_me())
    groups: list[tuple[Any, list[services.ModuleCard]]] = []
    for card in cards:
        if not groups or groups[-1][0] is not card.pathway:
            groups.append((card.pathway, []))
        groups[-1][1].append(card)
    return render_template("modules/library.html", groups=groups)


@bp.route("/<module_key>")
@participant_page
def module(module_key: str):
    participant = _me()
    page = services.module_progress(participant, _module_or_404(module_key))
    return render_template("modules/module.html", page=page, module=page.module)


def _module_or_404(key: str) -> Module:
    return db.one_or_404(select(Module).where(Module.key == key, Module.is_active))


# --------------------------------------------------------------------------- steps


@bp.route("/<module_key>/<step_key>", methods=["GET", "POST"])
@participant_page
@cached()
def step(module_key: str, step_key: str):
    participant = _me()
    # the active module from the catalogue, the active step from the module's page
    ctx = services.build_context(participant)
    module = next((m for m in ctx.modules if m.key == module_key), None)
    if module is None:
        abort(404)
    page = services.module_progress(participant, module, ctx=ctx)
    step = next((state.step for state in page.steps if state.step.key == step_key), None)
    if step is None:
        abort(404)
    if not page.unlocked:
        flash(f"This module is not open yet. {page.reason}.", "info")
        return redirect(url_for("modules.module", module_key=module_key))
    return STEP_HANDLERS[step.kind](participant, step, page)


def _render_step(step: Step, page: services.ModulePage, **context: Any) -> str:
    state = next(s for s in page.steps if s.step.id == step.id)
    before, after = page.neighbours(step)
    return render_template(f"modules/steps/{step.kind}.html", step=step, page=page,
                           module=page.module, state=state, before=before, after=after,
                           **context)


def _onward(step: Step, page: services.ModulePage) -> Response:
    """After finishing a step: the next step, or the module page at the end."""
    _, after = page.neighbours(step)
    if after is None:
        return redirect(url_for("modules.module", module_key=page.module.key))
    return redirect(url_for("modules.step", module_key=page.module.key, step_key=after.key))


def _read_or_watch(participant: Participant, step: Step, page: services.ModulePage):
    form = ButtonForm()
    if form.validate_on_submit():
        before = _before(participant)
        services.complete_step(participant, step)
        db.session.commit()
        _flash_done("Step done.", participant, before)
        return _onward(step, page)
    return _render_step(step, page, form=form)


def _quiz(participant: Participant, step: Step, page: services.ModulePage):
    questions = step.data.get("questions") or []
    form = quiz_form(questions)
    result = None
    if form.validate_on_submit():
        before = _before(participant)
        try:
            result = services.answer_quiz(participant, step, form.answers())
        except services.ModuleError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            if result.passed:
                _flash_done("Quiz passed." if result.first_pass else "Passed again.",
                            participant, before)
    return _render_step(step, page, form=form, questions=questions, result=result)


def _reflect(participant: Participant, step: Step, page: services.ModulePage):
    form = ReflectionForm()
    form.body.label.text = step.data.get("prompt") or "Your reflection"
    if form.validate_on_submit():
        before = _before(participant)
        try:
            entry = services.write_reflection(participant, step, form.body.data)
        except services.ModuleError as exc:
            db.session.rollback()
            show_error(form, exc, field="body")
        else:
            db.session.commit()
            _flash_done("Your reflection is saved.", participant, before)
            if entry.screening == "flagged":
                # risk screening (moderation) flagged it: crisis resources at once
                flash(FLAGGED_NOTE, "info")
                return redirect(url_for("core.crisis"))
            return _onward(step, page)
    entries = db.session.scalars(
        select(JournalEntry).where(JournalEntry.participant_id == participant.id,
                                   JournalEntry.step_id == step.id)
        .order_by(JournalEntry.created_at.desc()).limit(20)).all()
    return _render_step(step, page, form=form, entries=entries,
                        privacy_note=PRIVACY_NOTE, timezone=participant.timezone)


def _action(participant: Participant, step: Step, page: services.ModulePage):
    form = ButtonForm()
    if form.validate_on_submit():
        before = _before(participant)
        plan = services.plan_action(participant, step)
        db.session.commit()
        day = _local_day(plan.check_due_at, participant)
        _flash_done(f"Good luck! We'll ask you how it went on {day}.", participant, before)
        return _onward(step, page)
    plan = db.session.scalar(select(ActionPlan).where(
        ActionPlan.participant_id == participant.id, ActionPlan.step_id == step.id))
    days = {"planned": _local_day(plan.planned_at, participant),
            "due": _local_day(plan.check_due_at, participant)} if plan else {}
    return _render_step(step, page, form=form, plan=plan, days=days,
                        check_after_days=int(step.data.get("check_after_days") or 3))


def _checkpoint(participant: Participant, step: Step, page: services.ModulePage):
    form = CheckpointForm()
    form.rating.label.text = step.data.get("question") or form.rating.label.text
    if form.validate_on_submit():
        before = _before(participant)
        services.rate_checkpoint(participant, step, form.rating.data)
        db.session.commit()
        _flash_done("Thank you for your rating.", participant, before)
        return _onward(step, page)
    if not form.is_submitted():
        rated = db.session.scalar(select(CheckpointRating.rating).where(
            CheckpointRating.participant_id == participant.id,
            CheckpointRating.step_id == step.id))
        form.rating.data = rated
    return _render_step(step, page, form=form)


def _local_day(at: datetime, participant: Participant) -> str:
    local = at.astimezone(participant_zone(participant))
    return f"{local:%A} {local.day} {local:%B}"


STEP_HANDLERS: dict[str, Callable[[Participant, Step, services.ModulePage], Any]] = {
    "read": _read_or_watch,
    "video": _read_or_watch,
    "quiz": _quiz,
    "reflect": _reflect,
    "action": _action,
    "checkpoint": _checkpoint,
}


# --------------------------------------------------------------------------- progress


@bp.route("/progress")
@participant_page
def progress():
    participant = _me()
    cards = services.library(participant)
    entries = mood.mood_history(participant, days=MOOD_DAYS)
    chart = charts.mood_chart([(e.local_date, e.score) for e in entries],
                              end=local_date(participant), days=MOOD_DAYS,
                              scale=mood.MOOD_SCALE)
    game = gamification.summary(participant)
    return render_template(
        "modules/progress.html", cards=cards, done=sum(card.completed for card in cards),
        game=game, badges=gamification.badge_status(participant) if game.enabled else [],
        entries=entries, chart=chart, mood_days=MOOD_DAYS, timezone=participant.timezone)


# --------------------------------------------------------------------------- media


@bp.route("/media/<module_key>/<path:relative>")
@participant_page
def media(module_key: str, relative: str):
    path = media_path(module_key, relative)
    if path is None:
        abort(404)
    mimetype = MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    response = send_file(path, mimetype=mimetype or "application/octet-stream",
                         conditional=True, max_age=3600)
    response.headers["Content-Security-Policy"] = MEDIA_CSP
    return response
