"""A participant's forum profile: ``/forum/people/<user id>``.

It shows only what is safe and chosen: the pseudonymous display name, an initials avatar,
the month they joined, how much they have shared in the forum, and their badges only when
they opted in on their account page (``User.show_badges``). Never a study code, e-mail,
phone, status or arm. Reading only: the page runs a fixed number of queries.

Who may look: whoever may use the forum (``forum.views.forum_page``: participants whose
arm has the forum, and moderators). A profile exists for participants who have set up
their account and whose arm has the forum; anyone else is "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, render_template
from flask_login import current_user
from sqlalchemy import func, select

from core.extensions import db
from core.models import User
from forum import bp, services
from forum.models import Comment, Post
from forum.views import forum_page, has_forum
from outcomes.services import features_for


@dataclass(frozen=True)
class Profile:
    user: User
    name: str
    initials: str
    posts: int
    comments: int
    #: suggestions the thread's author marked as helpful
    helpful: int
    #: earned badges (newest first), or None when they are not shown
    badges: list[Any] | None


def _shared(model: type[Post] | type[Comment]) -> Any:
    """What everyone can see of a person's writing: published, not deleted."""
    return (model.deleted_at.is_(None), model.hidden_at.is_(None), model.is_held.is_(False))


def activity_counts(user_id: int) -> tuple[int, int, int]:
    """(posts, comments, comments marked helpful) that everyone can see; two queries."""
    posts = db.session.scalar(select(func.count(Post.id)).where(
        Post.author_id == user_id, *_shared(Post))) or 0
    comments, helpful = db.session.execute(
        select(func.count(Comment.id), func.count(Comment.helpful_at))
        .where(Comment.author_id == user_id, *_shared(Comment))).one()
    return posts, comments or 0, helpful or 0


def shows_badges(owner: User, viewer: Any) -> bool:
    """The owner opted in, and both the owner's and the viewer's arms have gamification
    (a participant in an arm without it must not meet it through the forum)."""
    return bool(owner.show_badges and features_for(owner).get("gamification")
                and features_for(viewer).get("gamification"))


def earned_badges(owner: User) -> list[Any]:
    from modules.gamification import badge_status

    earned = [badge for badge in badge_status(owner.participant) if badge.earned]
    return sorted(earned, key=lambda badge: badge.earned_at, reverse=True)


def profile_of(owner: User, *, viewer: Any) -> Profile:
    name = services.display_name(owner)
    posts, comments, helpful = activity_counts(owner.id)
    return Profile(owner, name, services.initials(name), posts, comments, helpful,
                   earned_badges(owner) if shows_badges(owner, viewer) else None)


def _owner_or_404(user_id: int) -> User:
    owner = db.session.get(User, user_id)
    if (owner is None or owner.participant is None or not owner.is_enabled
            or not owner.display_name or not has_forum(owner)):
        abort(404)
    return owner


@bp.route("/people/<int:user_id>")
@forum_page
def profile(user_id: int):
    owner = _owner_or_404(user_id)
    return render_template("forum/profile.html", profile=profile_of(owner, viewer=current_user))
