"""The read side of the forum: the newsfeed and a post's thread, as the viewer may see
them. Read-only.

Each page costs a fixed number of queries whatever the number of posts, comments and
reactions: the rows with their authors in one joined query, then one grouped query each
for comment counts, reaction counts and the viewer's own reactions (and, for staff, one
for edit history). The feed pages by keyset on ``(created_at, id)``, newest first, so a
page never repeats or skips a post while others are writing.

Participants see what is public plus their own held or hidden writing; moderators see
everything, marked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import joinedload

from core.extensions import db
from core.models import User
from forum.models import POST_KINDS, Comment, Edit, Post, Reaction
from forum.services import is_staff_viewer

PAGE_SIZE = 20
#: a thread shows at most this many comments (replies included)
THREAD_MAX = 500


class BadCursor(ValueError):
    pass


def visible(model: type[Post] | type[Comment], viewer: Any) -> Any:
    """The SQL condition for rows ``viewer`` may see."""
    if is_staff_viewer(viewer):
        return true()
    return or_(and_(model.is_held.is_(False), model.hidden_at.is_(None)),
               model.author_id == viewer.id)


def _with_author(model: type[Post] | type[Comment]) -> Any:
    """Load the author and their participant row in the same query (the byline needs
    both)."""
    return joinedload(model.author).joinedload(User.participant)


def encode_cursor(post: Post) -> str:
    micros = int(post.created_at.timestamp() * 1_000_000)
    return f"{micros}-{post.id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        micros, post_id = (int(part) for part in cursor.split("-"))
        at = datetime.fromtimestamp(micros / 1_000_000, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadCursor(cursor) from exc
    return at, post_id


@dataclass
class PostCard:
    post: Post
    comments: int = 0
    reactions: dict[str, int] = field(default_factory=dict)
    mine: set[str] = field(default_factory=set)


@dataclass
class FeedPage:
    cards: list[PostCard]
    next_cursor: str | None


def feed(viewer: Any, *, cursor: str | None = None, kind: str | None = None,
         limit: int = PAGE_SIZE) -> FeedPage:
    """One page of the newsfeed for ``viewer``, newest first."""
    query = (select(Post).options(_with_author(Post))
             .where(Post.deleted_at.is_(None), visible(Post, viewer)))
    if kind in POST_KINDS:
        query = query.where(Post.kind == kind)
    if cursor:
        at, post_id = decode_cursor(cursor)
        query = query.where(or_(Post.created_at < at,
                                and_(Post.created_at == at, Post.id < post_id)))
    posts = list(db.session.scalars(
        query.order_by(Post.created_at.desc(), Post.id.desc()).limit(limit + 1)))
    more = len(posts) > limit
    posts = posts[:limit]
    cards = {post.id: PostCard(post) for post in posts}
    if cards:
        counts = db.session.execute(
            select(Comment.post_id, func.count(Comment.id))
            .where(Comment.post_id.in_(cards), Comment.deleted_at.is_(None),
                   visible(Comment, viewer))
            .group_by(Comment.post_id)).all()
        for post_id, count in counts:
            cards[post_id].comments = count
        _add_reactions(cards, viewer)
    return FeedPage(list(cards.values()), encode_cursor(posts[-1]) if more else None)


def _add_reactions(cards: dict[int, PostCard], viewer: Any) -> None:
    rows = db.session.execute(
        select(Reaction.post_id, Reaction.kind, func.count(Reaction.id))
        .where(Reaction.post_id.in_(cards)).group_by(Reaction.post_id, Reaction.kind)).all()
    for post_id, kind, count in rows:
        cards[post_id].reactions[kind] = count
    for post_id, kind in db.session.execute(
            select(Reaction.post_id, Reaction.kind)
            .where(Reaction.post_id.in_(cards), Reaction.user_id == viewer.id)).all():
        cards[post_id].mine.add(kind)


@dataclass
class CommentNode:
    comment: Comment
    replies: list[Comment] = field(default_factory=list)


@dataclass
class Thread:
    card: PostCard
    comments: list[CommentNode]
    #: ("post" | "comment", id) -> earlier versions, oldest first (staff only)
    edits: dict[tuple[str, int], list[Edit]] = field(default_factory=dict)

    @property
    def post(self) -> Post:
        return self.card.post


def load_post(post_id: int, viewer: Any) -> Post | None:
    """The post with its author, or None when it does not exist or ``viewer`` may not
    see it."""
    return db.session.scalar(select(Post).options(_with_author(Post))
                             .where(Post.id == post_id, visible(Post, viewer)))


def thread(post: Post, viewer: Any) -> Thread:
    """The post's comments and replies as ``viewer`` may see them. A reply whose
    comment the viewer may not see is left out with it."""
    comments = list(db.session.scalars(
        select(Comment).options(_with_author(Comment))
        .where(Comment.post_id == post.id, visible(Comment, viewer))
        .order_by(Comment.created_at, Comment.id).limit(THREAD_MAX)))
    nodes: dict[int, CommentNode] = {}
    replies: dict[int, list[Comment]] = defaultdict(list)
    for comment in comments:
        if comment.parent_id is None:
            nodes[comment.id] = CommentNode(comment)
        else:
            replies[comment.parent_id].append(comment)
    for parent_id, children in replies.items():
        if parent_id in nodes:
            nodes[parent_id].replies = children
    card = PostCard(post, comments=sum(1 for c in comments if c.deleted_at is None))
    _add_reactions({post.id: card}, viewer)
    result = Thread(card, list(nodes.values()))
    if is_staff_viewer(viewer):
        result.edits = _edits(post, comments)
    return result


def _edits(post: Post, comments: list[Comment]) -> dict[tuple[str, int], list[Edit]]:
    ids = [c.id for c in comments if c.edited_at is not None]
    condition = Edit.post_id == post.id
    if ids:
        condition = or_(condition, Edit.comment_id.in_(ids))
    result: dict[tuple[str, int], list[Edit]] = defaultdict(list)
    for edit in db.session.scalars(select(Edit).where(condition).order_by(Edit.id)):
        key = ("post", edit.post_id) if edit.post_id else ("comment", edit.comment_id)
        result[key].append(edit)  # type: ignore[index]
    return dict(result)
