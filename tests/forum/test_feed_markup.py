"""The feed writes its cards out inline (for speed) rather than with the byline,
state_marks and reaction_buttons macros the post page uses: both pages show a post with
the same byline, marks and reaction buttons. And the feed is one query at any size, with
the same cards (comment counts, reactions, the viewer's own reactions, paging by kind)
as reading the rows one by one would give."""

from __future__ import annotations

import functools
import re
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from core.models import User
from core.roles import Role
from forum import feed, services
from forum.markup import render
from forum.models import Comment, Post, Reaction
from tests.factories import make_staff
from tests.forum.forum_rows import NOW, member, user_of
from tests.forum.test_page_queries import world
from tests.modules.test_page_queries import statements_during

PEER = "peer_moderator@example.org"
BYLINE = re.compile(r'<p class="byline">.*?</p>', re.S)
MARK = re.compile(r'<p class="tag tag-(?:amber|red) forum-state">[^<]*</p>')
BUTTON = re.compile(r'<button type="submit" name="kind".*?</button>', re.S)


def _squash(html: str) -> str:
    return re.sub(r"\s+", " ", html).strip()


def _pieces(html: str) -> tuple[list[str], list[str], list[str]]:
    return ([_squash(m) for m in BYLINE.findall(html)], MARK.findall(html),
            [_squash(m) for m in BUTTON.findall(html)])


@pytest.fixture
def posts(app) -> list[int]:
    """T-0001's held and edited post and hidden talk-it-out question, a post by a
    moderator without a display name, and T-0002's post with reactions (one of them
    T-0001's)."""
    clock.set_time(NOW)
    with app.app_context():
        first, second = member(0).user, member(1).user
        staff = make_staff(Role.PEER_MODERATOR)
        at = NOW - timedelta(hours=1)
        rows = [
            Post(author_id=first.id, body="held", body_html=render("A *held* post"),
                 created_at=at, edited_at=at, is_held=True),
            Post(author_id=first.id, kind="talk_it_out", title="How do I <start>?",
                 body="hidden", body_html=render("Hidden"), created_at=at, hidden_at=at),
            Post(author_id=staff.id, body="staff", body_html=render("Welcome"), created_at=at),
            Post(author_id=second.id, body="open", body_html=render("Open"), created_at=at),
        ]
        db.session.add_all(rows)
        db.session.flush()
        db.session.add_all([Reaction(post_id=rows[3].id, user_id=first.id, kind="me_too"),
                            Reaction(post_id=rows[3].id, user_id=second.id, kind="me_too"),
                            Reaction(post_id=rows[3].id, user_id=second.id, kind="helpful")])
        db.session.commit()
        return [post.id for post in rows]


@pytest.mark.parametrize("who", ["T-0001", PEER])
def test_a_feed_card_shows_a_post_as_its_page_does(app, client, auth, posts, who):
    auth.login(who)
    page = client.get("/forum/").get_data(as_text=True)
    cards = dict(re.findall(r'<li class="card stack forum-post" id="post-(\d+)">(.*?)</li>',
                            page, re.S))
    assert sorted(int(post_id) for post_id in cards) == sorted(posts)
    for post_id in posts:
        thread = client.get(f"/forum/posts/{post_id}").get_data(as_text=True)
        article = re.search(r'<article class="card stack forum-post".*?</article>', thread,
                            re.S).group(0)
        assert _pieces(cards[str(post_id)]) == _pieces(article), post_id
    held, hidden, by_staff, reacted = (cards[str(post_id)] for post_id in posts)
    assert "Waiting for a moderator" in held and "(edited)" in held
    assert "Hidden by a moderator" in hidden and "How do I &lt;start&gt;?" in hidden
    assert '<span class="author">Peer moderator</span>' in by_staff
    assert '<span class="tag tag-blue">Moderator</span>' in by_staff
    assert re.search(r'<a class="author" href="/forum/people/\d+">Still Meadow</a>', reacted)
    assert _squash(reacted).count('<span class="reaction-count">') == 2
    assert ('value="me_too" class="reaction reaction-on" aria-pressed="true"' in reacted) \
        == (who == "T-0001")


def test_a_participant_does_not_see_others_held_or_hidden_posts_in_the_feed(
        app, client, auth, posts):
    auth.login("T-0002")
    page = client.get("/forum/").get_data(as_text=True)
    shown = {int(post_id) for post_id in re.findall(r'id="post-(\d+)"', page)}
    assert shown == set(posts[2:])


def _expected(viewer: User, kind: str | None) -> list[tuple[int, int, dict, set]]:
    """The feed as reading every row one by one gives it: (post id, comments,
    reaction counts, the viewer's reactions), newest first."""
    rows = db.session.scalars(select(Post).where(Post.deleted_at.is_(None))
                              .order_by(Post.created_at.desc(), Post.id.desc()))
    result = []
    for post in rows:
        if not services.can_see(post, viewer) or kind not in (None, post.kind):
            continue
        comments = db.session.scalars(select(Comment).where(Comment.post_id == post.id))
        count = sum(1 for c in comments if c.deleted_at is None and services.can_see(c, viewer))
        reactions = list(db.session.scalars(select(Reaction).where(Reaction.post_id == post.id)))
        result.append((post.id, count, dict(Counter(r.kind for r in reactions)),
                       {r.kind for r in reactions if r.user_id == viewer.id}))
    return result


def _walk(viewer: User, kind: str | None) -> tuple[list[tuple[int, int, dict, set]], set[int]]:
    """Every page of the feed, and the number of statements each page took."""
    cards, costs = [], set()
    pages: list[feed.FeedPage] = []

    def read(cursor: str | None) -> None:
        pages.append(feed.feed(viewer, cursor=cursor, kind=kind, limit=7))

    cursor = None
    while True:
        costs.add(len(statements_during(db.engine, functools.partial(read, cursor))))
        cards += [(c.post.id, c.comments, c.reactions, c.mine) for c in pages[-1].cards]
        cursor = pages[-1].next_cursor
        if cursor is None:
            return cards, costs


@pytest.mark.parametrize("who", ["T-0002", PEER])
def test_the_feed_is_one_query_with_the_counts_rows_one_by_one_give(app, who):
    clock.set_time(NOW)
    with app.app_context():
        make_staff(Role.PEER_MODERATOR)
        for index in range(6):
            member(index)
        first = world(posts=30, comments=6, readers=6)
        viewer = (db.session.scalar(select(User).where(User.email == PEER)) if who == PEER
                  else user_of(who))
        if who == PEER:  # the readers' reactions are all participants'
            db.session.add(Reaction(post_id=first, user_id=viewer.id, kind="helpful"))
            db.session.commit()
            db.session.refresh(viewer)  # so reading viewer.id is not counted below
        for kind in (None, "post", "talk_it_out"):
            cards, costs = _walk(viewer, kind)
            assert cards == _expected(viewer, kind), kind
            assert costs == {1}
            if kind is None:
                assert len(cards) > 7  # more than one page
                assert any(mine for *_, mine in cards) and any(n for _, n, *_ in cards)
