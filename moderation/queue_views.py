"""Review-queue pages (peer moderators and clinicians): the queue, an item with its
content, reports and history, the action forms, and each moderator's category opt-outs.

Reporters' names are shown to clinicians only: peer moderators see the reasons and notes
(what they need to judge the content), so a report cannot set peers against each other.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError

from core import navigation
from core.access import role_required
from core.extensions import db
from core.forms import show_error
from core.roles import MODERATORS, Role
from forum.reports import REASONS as REPORT_REASONS
from moderation import bp, content, queue, services
from moderation.models import CATEGORIES, QueueItem
from moderation.queue_forms import ActionForm, HideForm, OptOutForm, SuspendForm, WarnForm

navigation.add("Review queue", "moderation.queue_list", MODERATORS, order=9)

#: action -> (form class, service, what the form adds to the call, what to flash)
ACTIONS: dict[str, tuple[type[ActionForm], Any, tuple[str, ...], str]] = {
    "approve": (ActionForm, queue.approve, (), "Approved. Its reports are closed."),
    "hide": (HideForm, queue.hide, ("reason",), "Hidden from participants. You can show it "
                                                 "again from the item page."),
    "unhide": (ActionForm, queue.unhide, (), "Shown to participants again."),
    "redact": (ActionForm, queue.redact, (), "Personal details removed. Approve or hide it "
                                             "next."),
    "warn": (WarnForm, queue.warn, ("reason", "message"), "Message sent to the author."),
    "suspend": (SuspendForm, queue.suspend, ("days", "reason"), "Posting suspended."),
    "escalate": (ActionForm, queue.escalate, (), "Escalated: the on-call clinician has a "
                                                 "risk alert."),
}


def _load(item_id: int) -> tuple[QueueItem, queue.Entry]:
    item = db.get_or_404(QueueItem, item_id)
    try:
        return item, queue.entry_for(item, current_user)
    except queue.PermissionDenied:
        abort(403)


@bp.route("/queue")
@role_required(*MODERATORS)
def queue_list():
    if queue.sync_reports():
        db.session.commit()
    return render_template("moderation/queue.html", entries=queue.queue_for(current_user),
                           handled=queue.recently_handled(current_user),
                           skipped=queue.opt_outs(current_user), categories=CATEGORIES,
                           form=_opt_out_form())


def _opt_out_form() -> OptOutForm:
    return OptOutForm(data={"categories": sorted(queue.opt_outs(current_user))})


def _item_page(item: QueueItem, entry: queue.Entry, forms: dict[str, ActionForm] | None = None):
    fresh = {name: spec[0](formdata=None, prefix=name) for name, spec in ACTIONS.items()}
    for form in fresh.values():
        form.version.data = str(item.version)
    # a form that failed keeps the version its moderator saw, so it cannot skip a change
    forms = fresh | (forms or {})
    return render_template(
        "moderation/queue_item.html", item=item, entry=entry, forms=forms,
        reports=queue.all_reports(entry), history=queue.item_history(item),
        alert=queue.open_alert_for(item), categories=CATEGORIES, report_reasons=REPORT_REASONS,
        labels=queue.ACTION_LABELS, show_reporters=current_user.role == Role.CLINICIAN,
        text=None if entry.is_forum else content.text_of(item.content_type, item.content_id),
        suspended_until=queue.suspended_until(item.author) if item.author else None,
        can_view_participant=item.participant is not None
        and services.can_view(current_user, item.participant))


@bp.route("/queue/<int:item_id>")
@role_required(*MODERATORS)
def queue_item(item_id: int):
    return _item_page(*_load(item_id))


@bp.route("/queue/<int:item_id>/<any(approve, escalate, hide, redact, suspend, unhide, warn)"
          ":queue_action>", methods=["POST"])
@role_required(*MODERATORS)
def queue_act(item_id: int, queue_action: str):
    action = queue_action
    item, entry = _load(item_id)
    form_class, service, fields, done = ACTIONS[action]
    form = form_class(prefix=action)
    if not form.validate_on_submit():
        return _item_page(item, entry, {action: form}), 400
    try:
        service(item, actor=current_user, version=int(form.version.data),
                **{name: form[name].data for name in fields})
        db.session.commit()
    except queue.AlreadyHandled as exc:
        db.session.rollback()
        flash(str(exc), "error")
    except StaleDataError:  # another moderator's action committed first
        db.session.rollback()
        flash(str(queue.last_handler(item_id)), "error")
    except queue.QueueError as exc:
        db.session.rollback()
        show_error(form, exc)
        return _item_page(*_load(item_id), {action: form}), 400
    else:
        flash(done, "success")
        if action == "escalate" and current_user.role != Role.CLINICIAN:
            return redirect(url_for("moderation.queue_list"))  # now clinicians only
    return redirect(url_for("moderation.queue_item", item_id=item_id))


@bp.route("/queue/categories", methods=["POST"])
@role_required(*MODERATORS)
def queue_opt_outs():
    form = OptOutForm()
    if form.validate_on_submit():
        try:
            queue.set_opt_outs(current_user, form.categories.data or [], actor=current_user)
        except queue.QueueError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash("Your queue categories are saved.", "success")
    return redirect(url_for("moderation.queue_list"))
