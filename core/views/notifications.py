"""The notifications page: a signed-in person's own notifications, newest first.

Opening one is a POST (CSRF) that marks it read and then follows its link, but only
to a path on this site; anything else lands back on the list.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from core import notifications
from core.access import signed_in
from core.extensions import db
from core.forms import ConfirmForm
from core.views import bp


@bp.route("/notifications")
@signed_in
def notifications_page():
    page = request.args.get("page", "1")
    number = int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1
    listing = notifications.notifications_for(current_user, page=number)
    if number > 1 and not listing.items:
        return redirect(url_for("core.notifications_page"))
    return render_template("core/notifications.html", listing=listing)


@bp.route("/notifications/<int:notification_id>/open", methods=["POST"])
@signed_in
def open_notification(notification_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        row = notifications.open_notification(notification_id, user=current_user)
    except LookupError:
        abort(404)
    db.session.commit()
    if row.url and notifications.is_safe_url(row.url):
        return redirect(row.url)
    return redirect(url_for("core.notifications_page"))


@bp.route("/notifications/read-all", methods=["POST"])
@signed_in
def read_all_notifications():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    marked = notifications.mark_all_read(current_user)
    db.session.commit()
    if marked:
        flash("All your notifications are marked as read.", "success")
    return redirect(url_for("core.notifications_page"))
