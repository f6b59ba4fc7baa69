"""Forum pages: the newsfeed, writing a post, a post's thread with comments, replies and
reactions, talk-it-out helpful marks, editing, deleting and reporting.

For participants whose study arm has the forum, and for moderators (who see held and
hidden content, marked). Everyone else gets 403 and no navigation entry. Views parse a
form, load rows, call one service, commit, flash and redirect; the rules live in
``forum.services`` and ``forum.reports``, the reading in ``forum.feed``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from core import navigation
from core.access import role_required
from core.extensions import db
from core.forms import ConfirmForm, show_error
from core.pagecache import cached
from core.roles import MODERATORS, Role
from forum import bp, feed, reports, services
from forum.forms import (
    KIND_HINTS,
    CommentForm,
    EditCommentForm,
    EditPostForm,
    PostForm,
    ReactionForm,
    ReportForm,
)
from forum.models import Comment, Post
from outcomes.services import features_for, refuse_feature

F = TypeVar("F", bound=Callable[..., Any])

FORUM_ROLES = MODERATORS | {Role.PARTICIPANT}
HELD_NOTE = ("Thank you. A moderator will read this before others can see it. Until then "
             "it shows to you as “waiting for a moderator”.")
RISK_NOTE = ("Thank you for sharing this. It sounds like things may be hard right now. "
             "A clinician from the study team may read it and get in touch. If you feel "
             "unsafe, please use one of these services now.")


def has_forum(user: Any) -> bool:
    return bool(features_for(user).get("forum"))


navigation.add("Forum", "forum.feed", FORUM_ROLES, order=25, visible=has_forum)


def forum_page(view: F) -> F:
    """A forum route: participants and moderators, and only when the arm has the forum."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not has_forum(current_user):
            return refuse_feature(current_user)
        return view(*args, **kwargs)

    return role_required(*FORUM_ROLES)(wrapper)  # type: ignore[return-value]


@bp.app_template_global("forum_name")
def forum_name(user: Any) -> str:
    return services.display_name(user)


@bp.app_template_global("forum_initials")
def forum_initials(user: Any) -> str:
    return services.initials(services.display_name(user))


@bp.app_template_global("forum_profile_url")
def forum_profile_url(user: Any) -> str | None:
    """The author's forum profile (``forum.profile``), when that page exists."""
    from flask import current_app

    if "forum.profile" not in current_app.view_functions or user.participant is None:
        return None
    return url_for("forum.profile", user_id=user.id)


@bp.context_processor
def labels() -> dict[str, Any]:
    return {"reactions": services.REACTIONS, "kind_labels": services.KIND_LABELS,
            "report_reasons": reports.REASONS, "is_staff_viewer":
                current_user.is_authenticated and services.is_staff_viewer(current_user),
            "can_edit": services.can_edit, "viewer_tz": _viewer_tz()}


def _viewer_tz() -> str | None:
    participant = current_user.participant if current_user.is_authenticated else None
    return participant.timezone if participant is not None else None


# --------------------------------------------------------------------------- feed


@bp.route("/", endpoint="feed")
@forum_page
@cached()
def feed_page():
    kind = request.args.get("kind")
    try:
        page = feed.feed(current_user, cursor=request.args.get("cursor"), kind=kind)
    except feed.BadCursor:
        abort(400)
    return render_template("forum/feed.html", page=page, kind=kind,
                           reaction_form=ReactionForm(formdata=None),
                           profiles="forum.profile" in current_app.view_functions)


@bp.route("/new", methods=["GET", "POST"])
@forum_page
def new_post():
    form = PostForm()
    if request.method == "GET" and request.args.get("kind") in services.KIND_LABELS:
        form.kind.data = request.args["kind"]
    if form.validate_on_submit():
        try:
            written = services.create_post(current_user, kind=form.kind.data,
                                           title=form.title.data, body=form.body.data)
        except services.ForumError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            return _after_write(written, "Your post is up.")
    return render_template("forum/new.html", form=form, kind_hints=KIND_HINTS)


def _after_write(written: services.Written, done: str, *,
                 anchor: str | None = None) -> Response:
    item = written.item
    post_id = item.id if isinstance(item, Post) else item.post_id
    if written.verdict.is_risk:
        flash(RISK_NOTE, "info")
        return redirect(url_for("core.crisis"))
    flash(HELD_NOTE if written.held else done, "info" if written.held else "success")
    return redirect(url_for("forum.post", post_id=post_id, _anchor=anchor))


# --------------------------------------------------------------------------- a thread


def _post_or_404(post_id: int) -> Post:
    post = feed.load_post(post_id, current_user)
    if post is None:
        abort(404)
    return post


def _comment_or_404(comment_id: int) -> Comment:
    comment = db.get_or_404(Comment, comment_id)
    if not services.can_see(comment, current_user):
        abort(404)
    _post_or_404(comment.post_id)
    return comment


@bp.route("/posts/<int:post_id>")
@forum_page
def post(post_id: int):
    return _render_thread(_post_or_404(post_id))


def _render_thread(post: Post, *, comment_form: CommentForm | None = None,
                   status: int = 200) -> tuple[str, int]:
    thread = feed.thread(post, current_user)
    comment_form = comment_form or CommentForm(formdata=None)
    # the form at the foot of the thread; a failed reply keeps its text in its own form
    replying_to = {str(node.comment.id) for node in thread.comments}
    top_form = (CommentForm(formdata=None) if comment_form.parent_id.data in replying_to
                else comment_form)
    top_form.body.label.text = "Suggest a way forward" if post.is_talk_it_out else "Your comment"
    return render_template(
        "forum/post.html", thread=thread, post=post, comment_form=comment_form,
        bound_parent=comment_form.parent_id.data if top_form is not comment_form else "",
        top_form=top_form,
        reaction_form=ReactionForm(formdata=None), button=ConfirmForm(formdata=None),
        is_author=post.author_id == current_user.id), status


@bp.route("/posts/<int:post_id>/comments", methods=["POST"])
@forum_page
def comment(post_id: int):
    post = _post_or_404(post_id)
    form = CommentForm()
    if form.validate_on_submit():
        parent = _parent(form, post)
        try:
            written = services.create_comment(current_user, post, body=form.body.data,
                                              parent=parent)
        except services.ForumError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            return _after_write(written, "Your reply is posted." if parent else
                                "Your comment is posted.", anchor=f"comment-{written.item.id}")
    return _render_thread(post, comment_form=form, status=422)


def _parent(form: CommentForm, post: Post) -> Comment | None:
    if not form.parent_id.data:
        return None
    try:
        parent = db.session.get(Comment, int(form.parent_id.data))
    except ValueError:
        abort(400)
    if parent is None or parent.post_id != post.id:
        abort(404)
    return parent


@bp.route("/posts/<int:post_id>/react", methods=["POST"])
@forum_page
def react(post_id: int):
    post = _post_or_404(post_id)
    form = ReactionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        added = services.toggle_reaction(post, actor=current_user, kind=form.kind.data)
    except services.ForumError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        label = services.REACTIONS[form.kind.data]
        flash(f"You sent “{label}”." if added else f"You took back “{label}”.", "success")
    back = request.form.get("back")
    if back == "feed":
        return redirect(url_for("forum.feed", _anchor=f"post-{post.id}"))
    return redirect(url_for("forum.post", post_id=post.id, _anchor="reactions"))


@bp.route("/comments/<int:comment_id>/helpful", methods=["POST"])
@forum_page
def helpful(comment_id: int):
    comment = _comment_or_404(comment_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        marked = services.toggle_helpful(comment, actor=current_user)
    except services.PermissionDenied:
        abort(403)
    except services.ForumError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("Marked as helpful. Thank you for letting them know." if marked
              else "No longer marked as helpful.", "success")
    return redirect(url_for("forum.post", post_id=comment.post_id,
                            _anchor=f"comment-{comment.id}"))


# --------------------------------------------------------------------------- edit, delete


@bp.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
@forum_page
def edit_post(post_id: int):
    post = _post_or_404(post_id)
    if post.author_id != current_user.id:
        abort(403)
    form = EditPostForm(obj=post) if request.method == "GET" else EditPostForm()
    if form.validate_on_submit():
        try:
            written = services.edit_post(post, actor=current_user, title=form.title.data,
                                         body=form.body.data)
        except services.ForumError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            return _after_write(written, "Your changes are saved.")
    return render_template("forum/edit.html", form=form, item=post, post=post,
                           deadline=services.edit_deadline(post),
                           open=services.can_edit(post, current_user))


@bp.route("/comments/<int:comment_id>/edit", methods=["GET", "POST"])
@forum_page
def edit_comment(comment_id: int):
    comment = _comment_or_404(comment_id)
    if comment.author_id != current_user.id:
        abort(403)
    form = EditCommentForm(obj=comment) if request.method == "GET" else EditCommentForm()
    if form.validate_on_submit():
        try:
            written = services.edit_comment(comment, actor=current_user, body=form.body.data)
        except services.ForumError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            return _after_write(written, "Your changes are saved.",
                                anchor=f"comment-{comment.id}")
    return render_template("forum/edit.html", form=form, item=comment, post=comment.post,
                           deadline=services.edit_deadline(comment),
                           open=services.can_edit(comment, current_user))


@bp.route("/posts/<int:post_id>/delete", methods=["POST"])
@forum_page
def delete_post(post_id: int):
    post = _post_or_404(post_id)
    return _delete(post, url_for("forum.feed"), "Your post is deleted.")


@bp.route("/comments/<int:comment_id>/delete", methods=["POST"])
@forum_page
def delete_comment(comment_id: int):
    comment = _comment_or_404(comment_id)
    return _delete(comment, url_for("forum.post", post_id=comment.post_id,
                                    _anchor=f"comment-{comment.id}"),
                   "Your comment is deleted.")


def _delete(item: Post | Comment, back: str, done: str) -> Response:
    if item.author_id != current_user.id:
        abort(403)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.soft_delete(item, actor=current_user)
    db.session.commit()
    flash(done, "success")
    return redirect(back)


# --------------------------------------------------------------------------- reports


@bp.route("/posts/<int:post_id>/report", methods=["GET", "POST"])
@forum_page
def report_post(post_id: int):
    return _report(_post_or_404(post_id))


@bp.route("/comments/<int:comment_id>/report", methods=["GET", "POST"])
@forum_page
def report_comment(comment_id: int):
    return _report(_comment_or_404(comment_id))


def _report(item: Post | Comment):
    post_id = item.id if isinstance(item, Post) else item.post_id
    form = ReportForm()
    if form.validate_on_submit():
        try:
            reports.report(item, actor=current_user, reason=form.reason.data,
                           note=form.note.data or "")
        except services.PermissionDenied:
            abort(404)
        except services.ForumError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash("Thank you for telling us. A moderator will look at it soon.", "success")
            return redirect(url_for("forum.post", post_id=post_id))
    return render_template("forum/report.html", form=form, item=item, post_id=post_id,
                           already=reports.open_report_for(item, current_user) is not None)
