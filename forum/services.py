"""What people do in the forum: post, comment, react, mark a suggestion helpful, edit,
delete; and what moderators do to it (hide, unhide, approve held content).

Transaction contract: every function flushes and never commits; the outermost caller
(view, CLI, moderation) commits once. Refusals are :class:`ForumError` (a sentence for
the author, with the form field it belongs to) or :class:`PermissionDenied`.

Writing goes through screening (``core.screening``): ``screen`` before storing (a
``block`` stores nothing and raises :class:`Blocked` with the kind message), ``screened``
after. A held item is shown only to its author ("waiting for a moderator") and to staff;
its notifications wait until a moderator approves it. Markdown is rendered once here
(``forum.markup``); pages show the stored HTML.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select

from core import audit, notifications, screening
from core.clock import utcnow
from core.events import record_event
from core.extensions import db
from core.models import User
from core.roles import MODERATORS, Role
from forum import activity  # noqa: F401 - registers the event kinds
from forum.markup import render
from forum.models import POST_KINDS, Comment, Edit, Post, Reaction

#: the supportive reactions, in the order pages show them (key -> label)
REACTIONS = {
    "thinking_of_you": "Thinking of you",
    "me_too": "Me too",
    "proud_of_you": "Proud of you",
    "helpful": "This helps me",
}
KIND_LABELS = {"post": "Post", "talk_it_out": "Talk it out"}
TITLE_MAX = 120
BODY_MAX = 5000
COMMENT_MAX = 2000

#: defaults of the settings an app may override in its config
DEFAULTS = {
    "FORUM_EDIT_MINUTES": 30,
    "FORUM_NEW_ACCOUNT_DAYS": 7,
    "FORUM_NEW_POST_SECONDS": 120,
    "FORUM_NEW_COMMENT_SECONDS": 30,
}
BLOCKED_MESSAGE = ("We couldn't post this as it is. Please have another look at what you "
                   "wrote; your words are still here.")
WRITERS = MODERATORS | {Role.PARTICIPANT}


class ForumError(Exception):
    """A refusal to show the author, next to ``field`` when given."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Blocked(ForumError):
    """Screening refused the text; nothing was stored."""


class PermissionDenied(Exception):
    pass


def setting(name: str) -> int:
    return int(current_app.config.get(name, DEFAULTS[name]))


def is_staff_viewer(user: Any) -> bool:
    """Staff who see held and hidden content (marked as such)."""
    return user.role in MODERATORS


def can_see(item: Post | Comment, viewer: Any) -> bool:
    return item.is_public or item.author_id == viewer.id or is_staff_viewer(viewer)


def post_url(post: Post | int, comment: Comment | None = None) -> str:
    """The site path of a post (and a comment on it), for notifications. Built without
    ``url_for`` so services work outside a request (CLI, demo seed, scheduler)."""
    post_id = post if isinstance(post, int) else post.id
    anchor = f"#comment-{comment.id}" if comment is not None else ""
    return f"/forum/posts/{post_id}{anchor}"


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Written:
    """What a write produced: the item and the screening verdict."""

    item: Post | Comment
    verdict: screening.Verdict

    @property
    def held(self) -> bool:
        return not self.verdict.publishes


#: further checks run before anyone writes; each raises :class:`ForumError` to refuse
#: (moderation registers the posting suspension here)
WRITER_CHECKS: list[Callable[[User], None]] = []


def _check_writer(actor: User) -> None:
    if actor.role not in WRITERS:
        raise PermissionDenied("only participants and moderators write in the forum")
    for check in WRITER_CHECKS:
        check(actor)


def _clean(text: str | None, *, field: str, limit: int, required: bool = True) -> str:
    text = (text or "").replace("\r\n", "\n").strip()
    if required and not text:
        raise ForumError("Please write something first.", field)
    if len(text) > limit:
        raise ForumError(f"Please keep this under {limit} characters "
                         f"(it has {len(text)}).", field)
    return text


def _screen(text: str, *, channel: str, author: User, field: str) -> screening.Verdict:
    verdict = screening.screen(text, channel=channel, author=author)
    if verdict.action == "block":
        raise Blocked(verdict.message or BLOCKED_MESSAGE, field)
    return verdict


def _rate_limit(author: User, model: type[Post] | type[Comment], seconds_setting: str,
                what: str, field: str) -> None:
    """New participants wait a little between posts (and between comments)."""
    if author.role != Role.PARTICIPANT:
        return
    now = utcnow()
    if now - author.created_at >= timedelta(days=setting("FORUM_NEW_ACCOUNT_DAYS")):
        return
    wait = timedelta(seconds=setting(seconds_setting))
    last = db.session.scalar(select(func.max(model.created_at))
                             .where(model.author_id == author.id))
    if last is not None and now - last < wait:
        left = math.ceil((last + wait - now).total_seconds())
        amount = f"{left} seconds" if left < 90 else f"{(left + 59) // 60} minutes"
        raise ForumError(f"While your account is new you can write one {what} every "
                         f"{_span(wait)}. Please try again in {amount}; what you wrote is "
                         "still here.", field)


def _span(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    return f"{seconds} seconds" if seconds < 90 else f"{seconds // 60} minutes"


def create_post(author: User, *, kind: str, body: str, title: str = "") -> Written:
    """Write a post (or a talk-it-out thread) after screening. Flushes."""
    _check_writer(author)
    if kind not in POST_KINDS:
        raise ForumError("Please choose what kind of post this is.", "kind")
    title = _clean(title, field="title", limit=TITLE_MAX, required=kind == "talk_it_out")
    if kind == "post":
        title = ""
    body = _clean(body, field="body", limit=BODY_MAX)
    _rate_limit(author, Post, "FORUM_NEW_POST_SECONDS", "post", "body")
    verdict = _screen(f"{title}\n\n{body}".strip(), channel="forum_post", author=author,
                      field="body")
    post = Post(author_id=author.id, kind=kind, title=title, body=body,
                body_html=render(body), is_held=not verdict.publishes)
    db.session.add(post)
    db.session.flush()
    screening.screened(verdict, channel="forum_post", content_id=post.id, author=author)
    if author.participant is not None:
        record_event(author.participant, "post_written", post_id=post.id, post_kind=kind)
        _award(author, "post_written", post.id)
    return Written(post, verdict)


def create_comment(author: User, post: Post, *, body: str,
                   parent: Comment | None = None) -> Written:
    """Comment on a post, or reply to one of its top-level comments. Flushes."""
    _check_writer(author)
    if post.deleted_at is not None or not can_see(post, author):
        raise ForumError("This post is no longer open for comments.", "body")
    if parent is not None:
        if parent.post_id != post.id or parent.parent_id is not None:
            raise ForumError("You can reply to a comment on this post only.", "body")
        if not can_see(parent, author) or parent.deleted_at is not None:
            raise ForumError("This comment is no longer open for replies.", "body")
    body = _clean(body, field="body", limit=COMMENT_MAX)
    _rate_limit(author, Comment, "FORUM_NEW_COMMENT_SECONDS", "comment", "body")
    verdict = _screen(body, channel="forum_comment", author=author, field="body")
    comment = Comment(post_id=post.id, author_id=author.id, body=body, body_html=render(body),
                      parent_id=parent.id if parent else None, is_held=not verdict.publishes)
    db.session.add(comment)
    db.session.flush()
    screening.screened(verdict, channel="forum_comment", content_id=comment.id, author=author)
    if author.participant is not None:
        record_event(author.participant, "comment_written", post_id=post.id,
                     comment_id=comment.id, reply=parent is not None)
        _award(author, "comment_written", comment.id)
    if comment.is_public:
        _tell_about_comment(comment, post, parent)
    return Written(comment, verdict)


def _tell_about_comment(comment: Comment, post: Post, parent: Comment | None) -> None:
    """Notify the post's author and, for a reply, the comment's author (once each)."""
    author = comment.author
    name = display_name(author)
    url = post_url(post, comment)
    told: set[int] = set()
    if parent is not None and parent.author_id != author.id:
        notifications.notify(parent.author, kind="reply", actor=author, url=url,
                             text=f"{name} replied to your comment.")
        told.add(parent.author_id)
    if post.author_id not in told and post.author_id != author.id:
        what = "suggested a way forward on" if post.is_talk_it_out else "commented on"
        notifications.notify(post.author, kind="reply", actor=author, url=url,
                             text=f"{name} {what} your post.")


def _award(user: User, reason: str, key: int | str) -> None:
    from modules.gamification import award_for_event

    award_for_event(user.participant, reason, str(key))


# --------------------------------------------------------------------------- editing


def _check_author(item: Post | Comment, actor: User) -> None:
    if item.author_id != actor.id:
        raise PermissionDenied("only the author may change this")


def edit_deadline(item: Post | Comment) -> datetime:
    return item.created_at + timedelta(minutes=setting("FORUM_EDIT_MINUTES"))


def can_edit(item: Post | Comment, actor: Any) -> bool:
    return (item.author_id == actor.id and item.deleted_at is None
            and utcnow() < edit_deadline(item))


def _check_editable(item: Post | Comment, actor: User) -> None:
    _check_author(item, actor)
    if item.deleted_at is not None:
        raise ForumError("This has been deleted.", "body")
    if utcnow() >= edit_deadline(item):
        raise ForumError(f"You can change what you wrote for {setting('FORUM_EDIT_MINUTES')} "
                         "minutes after posting it. That time has passed.", "body")


def _keep_version(item: Post | Comment, actor: User) -> None:
    db.session.add(Edit(post_id=item.id if isinstance(item, Post) else None,
                        comment_id=item.id if isinstance(item, Comment) else None,
                        editor_id=actor.id, title=getattr(item, "title", ""), body=item.body,
                        body_html=item.body_html, written_at=item.edited_at or item.created_at))


def edit_post(post: Post, *, actor: User, body: str, title: str = "") -> Written:
    """Change one's own post within the edit window; the old version is kept. Flushes."""
    _check_editable(post, actor)
    title = _clean(title, field="title", limit=TITLE_MAX, required=post.is_talk_it_out)
    body = _clean(body, field="body", limit=BODY_MAX)
    verdict = _screen(f"{title}\n\n{body}".strip(), channel="forum_post", author=actor,
                      field="body")
    _keep_version(post, actor)
    post.title = title if post.is_talk_it_out else ""
    post.body, post.body_html = body, render(body)
    post.edited_at = utcnow()
    post.is_held = post.is_held or not verdict.publishes
    db.session.flush()
    screening.screened(verdict, channel="forum_post", content_id=post.id, author=actor)
    return Written(post, verdict)


def edit_comment(comment: Comment, *, actor: User, body: str) -> Written:
    """Change one's own comment within the edit window; the old version is kept."""
    _check_editable(comment, actor)
    body = _clean(body, field="body", limit=COMMENT_MAX)
    verdict = _screen(body, channel="forum_comment", author=actor, field="body")
    _keep_version(comment, actor)
    comment.body, comment.body_html = body, render(body)
    comment.edited_at = utcnow()
    comment.is_held = comment.is_held or not verdict.publishes
    db.session.flush()
    screening.screened(verdict, channel="forum_comment", content_id=comment.id, author=actor)
    return Written(comment, verdict)


def soft_delete(item: Post | Comment, *, actor: User) -> None:
    """Soft-delete one's own post or comment: threads show "deleted" in its place."""
    _check_author(item, actor)
    if item.deleted_at is None:
        item.deleted_at = utcnow()
        db.session.flush()


# --------------------------------------------------------------------------- reactions


def toggle_reaction(post: Post, *, actor: User, kind: str) -> bool:
    """Add the reaction, or take it back if ``actor`` already gave it; True when added."""
    _check_writer(actor)
    if kind not in REACTIONS:
        raise ForumError("Please choose one of the reactions.")
    if post.deleted_at is not None or not can_see(post, actor):
        raise ForumError("This post is no longer open for reactions.")
    removed = db.session.execute(delete(Reaction).where(
        Reaction.post_id == post.id, Reaction.user_id == actor.id, Reaction.kind == kind))
    if removed.rowcount:
        db.session.flush()
        return False
    db.session.add(Reaction(post_id=post.id, user_id=actor.id, kind=kind))
    db.session.flush()
    if actor.participant is not None:
        record_event(actor.participant, "reaction_given", post_id=post.id, reaction=kind)
        _award(actor, "reaction_given", f"{post.id}:{kind}")
    if post.is_public:
        notifications.notify(post.author, kind="reaction", actor=actor, url=post_url(post),
                             text=f"{display_name(actor)} reacted to your post: "
                                  f"{REACTIONS[kind]}.",
                             dedupe_key=f"reaction:post:{post.id}")
    return True


def toggle_helpful(comment: Comment, *, actor: User) -> bool:
    """The author of a talk-it-out thread marks a suggestion that helped (or unmarks it);
    True when marked."""
    post = comment.post
    if post.author_id != actor.id:
        raise PermissionDenied("only the author of the thread marks what helped")
    if not post.is_talk_it_out:
        raise ForumError("Only suggestions in a talk-it-out thread can be marked helpful.")
    if comment.deleted_at is not None or not comment.is_public:
        raise ForumError("This suggestion can't be marked now.")
    if comment.helpful_at is not None:
        comment.helpful_at = None
        db.session.flush()
        return False
    comment.helpful_at = utcnow()
    db.session.flush()
    if actor.participant is not None:
        record_event(actor.participant, "helpful_marked", post_id=post.id,
                     comment_id=comment.id)
        _award(actor, "helpful_marked", comment.id)
    helper = comment.author
    if helper.participant is not None and helper.id != actor.id:
        record_event(helper.participant, "helpful_received", post_id=post.id,
                     comment_id=comment.id)
    notifications.notify(helper, kind="helpful", actor=actor, url=post_url(post, comment),
                         text=f"{display_name(actor)} said your suggestion helped them.")
    return True


# --------------------------------------------------------------------------- moderation


def _check_moderator(actor: User) -> None:
    if actor.role not in MODERATORS:
        raise PermissionDenied("only moderators do this")


def hide(item: Post | Comment, *, actor: User, reason: str | None = None) -> bool:
    """Hide a post or comment from participants (reversible); False if it already was.
    Audited (the reason is a short code, never free text)."""
    _check_moderator(actor)
    if item.hidden_at is not None:
        return False
    item.hidden_at, item.hidden_by_id = utcnow(), actor.id
    db.session.flush()
    audit.record(f"forum.{_type(item)}.hidden", actor=actor, target=item, reason=reason)
    return True


def unhide(item: Post | Comment, *, actor: User) -> bool:
    """Show a hidden post or comment again; False if it was not hidden. Audited."""
    _check_moderator(actor)
    if item.hidden_at is None:
        return False
    item.hidden_at, item.hidden_by_id = None, None
    db.session.flush()
    audit.record(f"forum.{_type(item)}.unhidden", actor=actor, target=item)
    return True


def approve(item: Post | Comment, *, actor: User) -> bool:
    """Publish held content (screening held it); its notifications go out now. Audited."""
    _check_moderator(actor)
    if not item.is_held:
        return False
    item.is_held = False
    db.session.flush()
    audit.record(f"forum.{_type(item)}.approved", actor=actor, target=item)
    if isinstance(item, Comment) and item.is_public:
        parent = db.session.get(Comment, item.parent_id) if item.parent_id else None
        _tell_about_comment(item, item.post, parent)
    return True


def _type(item: Post | Comment) -> str:
    return "post" if isinstance(item, Post) else "comment"


# --------------------------------------------------------------------------- names


def display_name(user: Any) -> str:
    """The pseudonym; staff without one appear under their role, never their e-mail."""
    if user.display_name:
        return user.display_name
    return Role(user.role).label


def initials(name: str) -> str:
    """One or two letters for the avatar: the first letters of the first two words."""
    letters = [word[0] for word in name.split() if word and word[0].isalnum()]
    return "".join(letters[:2]).upper() or "?"
