"""The forum's tables: posts, comments (one level of replies), reactions, edit history
and reports.

Text is kept twice: the Markdown source as typed (for editing) and the sanitised HTML
rendered once when it was written (what pages show). Nothing is ever deleted: the author's
delete sets ``deleted_at`` (threads show a placeholder), a moderator's hide sets
``hidden_at``, and screening may hold an item (``is_held``) until a moderator approves it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.extensions import db
from core.models import User

POST_KINDS = ("post", "talk_it_out")


class _Writing:
    """What posts and comments share: author, text, and the states that hide it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the Markdown as the author typed it
    body: Mapped[str] = mapped_column(Text)
    #: sanitised HTML, rendered once when the text was written
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[datetime | None]
    #: the author deleted it (soft): threads show a placeholder
    deleted_at: Mapped[datetime | None]
    #: a moderator hid it: only its author and staff see it, marked
    hidden_at: Mapped[datetime | None]
    #: screening held it until a moderator approves it ("waiting for a moderator")
    is_held: Mapped[bool] = mapped_column(default=False)

    @property
    def is_public(self) -> bool:
        """Whether every participant may see it."""
        return not self.is_held and self.hidden_at is None


class Post(_Writing, db.Model):
    __tablename__ = "forum_post"
    __table_args__ = (Index("ix_forum_post_created_at_id", "created_at", "id"),)

    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    #: "post" (sharing) or "talk_it_out" (a problem peers suggest ways forward on)
    kind: Mapped[str] = mapped_column(String(20), default="post")
    #: the question of a talk-it-out thread; empty for ordinary posts
    title: Mapped[str] = mapped_column(String(120), default="")
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    author: Mapped[User] = relationship(foreign_keys=[author_id])

    @property
    def is_talk_it_out(self) -> bool:
        return self.kind == "talk_it_out"


class Comment(_Writing, db.Model):
    __tablename__ = "forum_comment"
    __table_args__ = (Index("ix_forum_comment_post_id_created_at", "post_id", "created_at"),)

    post_id: Mapped[int] = mapped_column(ForeignKey("forum_post.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    #: the top-level comment this replies to (one level only), or None
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("forum_comment.id"), index=True)
    #: the post's author marked this suggestion as one that helped (talk-it-out threads)
    helpful_at: Mapped[datetime | None]
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    author: Mapped[User] = relationship(foreign_keys=[author_id])
    post: Mapped[Post] = relationship(foreign_keys=[post_id])


class Reaction(db.Model):
    """One supportive reaction of one kind by one person on a post (toggled)."""

    __tablename__ = "forum_reaction"
    __table_args__ = (UniqueConstraint("post_id", "user_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("forum_post.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Edit(db.Model):
    """A previous version of a post or comment, kept when its author edits it (staff see
    the history)."""

    __tablename__ = "forum_edit"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("forum_post.id"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("forum_comment.id"), index=True)
    editor_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    #: the version before this edit
    title: Mapped[str] = mapped_column(String(120), default="")
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    #: when the replaced version had been written (or last edited)
    written_at: Mapped[datetime]
    edited_at: Mapped[datetime] = mapped_column(default=utcnow)


class Report(db.Model):
    """A participant's report of a post or comment, for the moderators' review queue.

    ``target`` is "post:<id>" or "comment:<id>": one open report per reporter and item
    (a partial unique index on both backends)."""

    __tablename__ = "forum_report"
    __table_args__ = (
        Index("uq_forum_report_open", "reporter_id", "target", unique=True,
              sqlite_where=db.text("resolved_at IS NULL"),
              postgresql_where=db.text("resolved_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("forum_post.id"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("forum_comment.id"), index=True)
    target: Mapped[str] = mapped_column(String(40))
    #: one of ``forum.reports.REASONS``
    reason: Mapped[str] = mapped_column(String(30))
    #: the reporter's optional words for the moderator
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: what the moderator did, e.g. "hidden", "no_action"
    outcome: Mapped[str | None] = mapped_column(String(30))

    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id])
    post: Mapped[Post | None] = relationship(foreign_keys=[post_id])
    comment: Mapped[Comment | None] = relationship(foreign_keys=[comment_id])

    @property
    def item(self) -> Post | Comment:
        return self.post if self.post is not None else self.comment  # type: ignore[return-value]
