"""The feed and a post's page cost the same number of SQL queries whatever the number
of posts, comments, replies, reactions and edits (for a participant and for a moderator,
who also sees held and hidden content and the edit history)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from core.models import User
from core.roles import Role
from forum.markup import render
from forum.models import Comment, Edit, Post, Reaction
from forum.services import REACTIONS
from tests.factories import make_staff
from tests.forum.forum_rows import NOW, member
from tests.modules.test_page_queries import statements_during

# what the page itself costs, not its cached copy (core.pagecache)
pytestmark = pytest.mark.usefixtures("uncached")


def world(posts: int, comments: int, readers: int) -> int:
    """``posts`` posts by rotating authors, each with ``comments`` comments (every other
    one with a reply), reactions of every kind from ``readers`` people, some held,
    hidden, deleted and edited. Returns the id of the first post (open to everyone)."""
    people = list(db.session.scalars(select(User).where(User.role == Role.PARTICIPANT)
                                     .order_by(User.id)))[:readers]
    first = 0
    for n in range(posts):
        at = NOW - timedelta(minutes=posts - n)
        post = Post(author_id=people[n % readers].id, kind="talk_it_out" if n % 3 else "post",
                    title="A question" if n % 3 else "", body=f"Post {n}",
                    body_html=render(f"Post *{n}*"), created_at=at, is_held=n % 7 == 1,
                    hidden_at=at if n % 11 == 2 else None, edited_at=at if n % 2 else None)
        db.session.add(post)
        db.session.flush()
        first = first or post.id
        if post.edited_at:
            db.session.add(Edit(post_id=post.id, editor_id=post.author_id, body="old",
                                body_html="<p>old</p>", written_at=at))
        for c in range(comments):
            comment = Comment(post_id=post.id, author_id=people[(n + c + 1) % readers].id,
                              body=f"C {c}", body_html=f"<p>C {c}</p>", created_at=at,
                              is_held=c % 5 == 4, deleted_at=at if c % 6 == 5 else None,
                              edited_at=at if c % 4 == 3 else None)
            db.session.add(comment)
            db.session.flush()
            if comment.edited_at:
                db.session.add(Edit(comment_id=comment.id, editor_id=comment.author_id,
                                    body="old", body_html="<p>old</p>", written_at=at))
            if c % 2:
                db.session.add(Comment(post_id=post.id, author_id=people[c % readers].id,
                                       parent_id=comment.id, body="R", body_html="<p>R</p>",
                                       created_at=at))
        for reader in people:
            for kind in list(REACTIONS)[: 1 + (reader.id + n) % len(REACTIONS)]:
                db.session.add(Reaction(post_id=post.id, user_id=reader.id, kind=kind))
    db.session.commit()
    return first


def counts(app, client, auth, who: str, post_id: int) -> tuple[int, int]:
    auth.login(who)
    with app.app_context():
        engine = db.engine
    feed = statements_during(engine, lambda: client.get("/forum/"))
    page = statements_during(engine, lambda: client.get(f"/forum/posts/{post_id}"))
    auth.logout()
    return len(feed), len(page)


@pytest.mark.parametrize("who", ["T-0001", "peer_moderator@example.org"])
def test_feed_and_post_pages_run_a_constant_number_of_queries(app, client, auth, who):
    clock.set_time(NOW)
    with app.app_context():
        make_staff(Role.PEER_MODERATOR)
        for index in range(6):
            member(index)
        small = world(posts=2, comments=1, readers=2)
    small_counts = counts(app, client, auth, who, small)
    with app.app_context():
        big = world(posts=45, comments=14, readers=6)
        assert db.session.scalar(select(db.func.count(Comment.id))) > 400
    big_counts = counts(app, client, auth, who, big)
    assert small_counts == big_counts, (small_counts, big_counts)
    assert big_counts[0] < 25 and big_counts[1] < 25
