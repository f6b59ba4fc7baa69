"""Factories for the forum tests (call inside an app context; they commit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core import clock
from core.extensions import db
from core.models import Participant, User
from forum import services
from forum.models import Comment, Post
from tests.factories import make_participant

#: a fixed "now"; participants made by ``member`` are older than the new-account window
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
NAMES = ["Quiet Harbour", "Still Meadow", "Paper Boat", "Night Owl", "Blue Kettle",
         "Moss Walker", "Slow River", "Sea Glass"]


def member(index: int = 0, *, arm: str | None = "guided", new: bool = False,
           name: str | None = None) -> Participant:
    """Participant T-000<index+1>, in the arm with the forum; an established account
    (created 30 days before NOW) unless ``new``."""
    participant = make_participant(code=f"T-{index + 1:04d}", name=name or NAMES[index],
                                   arm=arm)
    participant.user.created_at = NOW - (timedelta(hours=1) if new else timedelta(days=30))
    db.session.commit()
    return participant


def user_of(code: str) -> User:
    return db.session.scalar(db.select(User).join(Participant, Participant.user_id == User.id)
                             .where(Participant.study_code == code))


def write_post(author: User, body: str = "Had a cup of tea with my neighbour today.", *,
               kind: str = "post", title: str = "", at: datetime | None = None) -> Post:
    if at is not None:
        clock.set_time(at)
    post = services.create_post(author, kind=kind, title=title, body=body).item
    db.session.commit()
    return post  # type: ignore[return-value]


def write_comment(author: User, post: Post, body: str = "That sounds lovely.", *,
                  parent: Comment | None = None, at: datetime | None = None) -> Comment:
    if at is not None:
        clock.set_time(at)
    comment = services.create_comment(author, post, body=body, parent=parent).item
    db.session.commit()
    return comment  # type: ignore[return-value]


def thread_texts(post: Post, viewer: User) -> str:
    """Every comment and reply body of ``post`` that ``viewer`` is shown, joined."""
    from forum.feed import thread

    nodes = thread(post, viewer).comments
    return "\n".join(c.body for node in nodes for c in [node.comment, *node.replies])
