"""The read side of the forum: the newsfeed and a post's thread, as the viewer may see
them. Read-only.

Each page costs a fixed number of queries whatever the number of posts, comments and
reactions. The feed: one, of plain rows rather than ORM objects (it only shows them):
each post with its author's byline columns, its comment count and its reactions, the
select built once per process. A thread: the post, its comments with their authors, the
reaction counts (and, for staff, one for edit history). The feed pages by keyset on
``(created_at, id)``, newest first, so a page never repeats or skips a post while others
are writing.

Participants see what is public plus their own held or hidden writing; moderators see
everything, marked.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, Row, Select, and_, bindparam, case, func, or_, select, true
from sqlalchemy.orm import joinedload

from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from forum.models import POST_KINDS, Comment, Edit, Post, Reaction
from forum.services import display_name, initials, is_staff_viewer

PAGE_SIZE = 20
#: a thread shows at most this many comments (replies included)
THREAD_MAX = 500


class BadCursor(ValueError):
    pass


def visible(model: type[Post] | type[Comment], viewer: Any) -> Any:
    """The SQL condition for rows ``viewer`` may see."""
    return _visibility(model, is_staff_viewer(viewer), viewer.id)


def _visibility(model: type[Post] | type[Comment], staff: bool, viewer_id: Any) -> Any:
    """Staff see every row; others what is public and their own (``viewer_id`` is the
    viewer's id or a bound parameter for it)."""
    if staff:
        return true()
    return or_(and_(model.is_held.is_(False), model.hidden_at.is_(None)),
               model.author_id == viewer_id)


def _with_author(model: type[Post] | type[Comment]) -> Any:
    """Load the author and their participant row in the same query (the byline needs
    both)."""
    return joinedload(model.author).joinedload(User.participant)


def encode_cursor(post: Post | Row[Any]) -> str:
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


@dataclass(frozen=True, slots=True)
class Author:
    """What a feed byline shows of a post's author."""

    id: int
    name: str
    initials: str
    is_staff: bool
    #: a participant, so the name links to their forum profile
    has_profile: bool


@dataclass(slots=True)
class FeedCard:
    """One post in the feed. ``post`` is a row with the columns the card shows: ``id``,
    ``kind``, ``title``, ``body_html``, ``created_at``, ``edited_at``, ``is_held``,
    ``hidden_at``."""

    post: Row[Any]
    author: Author
    comments: int
    reactions: dict[str, int] = field(default_factory=dict)
    mine: set[str] = field(default_factory=set)


@dataclass
class FeedPage:
    cards: list[FeedCard]
    next_cursor: str | None


def feed(viewer: Any, *, cursor: str | None = None, kind: str | None = None,
         limit: int = PAGE_SIZE) -> FeedPage:
    """One page of the newsfeed for ``viewer``, newest first. One query."""
    params: dict[str, Any] = {"viewer_id": viewer.id, "limit": limit + 1}
    if kind in POST_KINDS:
        params["kind"] = kind
    if cursor:
        params["at"], params["before_id"] = decode_cursor(cursor)
    query = _feed_query(is_staff_viewer(viewer), "kind" in params, "at" in params)
    rows = db.session.execute(query, params).all()
    more = len(rows) > limit
    rows = rows[:limit]
    cards = [FeedCard(row, _author(row), row.comments, *_read_reactions(row.reactions))
             for row in rows]
    return FeedPage(cards, encode_cursor(rows[-1]) if more else None)


@functools.cache
def _feed_query(staff: bool, by_kind: bool, paged: bool) -> Select[Any]:
    """The feed's select for one shape of request, built once per process: the values
    come as parameters (``viewer_id``, ``limit``, and ``kind`` or ``at`` and
    ``before_id`` when the shape has them). Each row: the post's shown columns, its
    author's byline columns, the count of comments the viewer may see and the post's
    reactions as ``_read_reactions`` reads them (both correlated subqueries, evaluated
    only for the page's rows, by index)."""
    viewer_id = bindparam("viewer_id")
    comments = (select(func.count(Comment.id))
                .where(Comment.post_id == Post.id, Comment.deleted_at.is_(None),
                       _visibility(Comment, staff, viewer_id))
                .correlate(Post).scalar_subquery())
    reactions = (select(func.aggregate_strings(
        Reaction.kind + case((Reaction.user_id == viewer_id, "*"), else_=""), ","))
                 .where(Reaction.post_id == Post.id).correlate(Post).scalar_subquery())
    query = (select(Post.id, Post.kind, Post.title, Post.body_html, Post.created_at,
                    Post.edited_at, Post.is_held, Post.hidden_at, Post.author_id,
                    User.display_name, User.role, Participant.id.label("participant_id"),
                    comments.label("comments"), reactions.label("reactions"))
             .join(User, User.id == Post.author_id)
             .outerjoin(Participant, Participant.user_id == User.id)
             .where(Post.deleted_at.is_(None), _visibility(Post, staff, viewer_id)))
    if by_kind:
        query = query.where(Post.kind == bindparam("kind"))
    if paged:
        at = bindparam("at")
        query = query.where(or_(Post.created_at < at, and_(Post.created_at == at,
                                                           Post.id < bindparam("before_id"))))
    # the limit is written into the SQL rather than sent as a parameter: PostgreSQL can
    # then keep one plan for the prepared statement instead of planning every request
    return (query.order_by(Post.created_at.desc(), Post.id.desc())
            .limit(bindparam("limit", type_=Integer, literal_execute=True)))


def _author(row: Row[Any]) -> Author:
    name = display_name(row)
    return Author(row.author_id, name, initials(name), row.role != Role.PARTICIPANT,
                  row.participant_id is not None)


def _read_reactions(marks: str | None) -> tuple[dict[str, int], set[str]]:
    """Reaction counts by kind and the viewer's own kinds, from the feed row's
    ``reactions``: every reaction on the post as its kind, starred when the viewer gave
    it ("me_too*,me_too,helpful"), or None when there are none."""
    counts: dict[str, int] = {}
    mine: set[str] = set()
    for mark in marks.split(",") if marks else ():
        kind = mark.rstrip("*")
        counts[kind] = counts.get(kind, 0) + 1
        if kind != mark:
            mine.add(kind)
    return counts, mine


def _add_reactions(card: PostCard, viewer: Any) -> None:
    """Fill the card's reaction counts and the viewer's own reactions. One query."""
    rows = db.session.execute(_reactions_query(),
                              {"viewer_id": viewer.id, "post_id": card.post.id})
    for kind, count, mine in rows:
        card.reactions[kind] = count
        if mine:
            card.mine.add(kind)


@functools.cache
def _reactions_query() -> Select[Any]:
    """Reaction counts by kind on the post ``post_id``, and whether ``viewer_id`` gave
    each; built once per process."""
    mine = case((Reaction.user_id == bindparam("viewer_id"), 1), else_=0)
    return (select(Reaction.kind, func.count(Reaction.id), func.max(mine))
            .where(Reaction.post_id == bindparam("post_id")).group_by(Reaction.kind))


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
    _add_reactions(card, viewer)
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
