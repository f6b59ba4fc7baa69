"""Every payload of the shared XSS corpus (``tests/xss_payloads.py``), typed as a post, a
talk-it-out question, a comment, a reply and a display name, reaches the feed and the
post page only as harmless text: no script, frame, plugin, SVG, ``on*`` attribute or
``javascript:``/``data:`` URL beyond what the same page has with harmless words."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from forum.models import Comment, Post
from tests.forum.forum_rows import NOW, member, user_of
from tests.xss_payloads import PAYLOADS, assert_no_active_markup

HARMLESS = "Just a quiet afternoon"
IDS = re.compile(r"/forum/(posts|comments)/\d+")


def test_the_corpus_is_big_enough():
    assert len(PAYLOADS) >= 40


@pytest.fixture
def people(app):
    clock.set_time(NOW)
    with app.app_context():
        member(0)
        member(1)


def _write(client, app, text: str) -> int:
    """T-0001 writes a talk-it-out thread with ``text`` as question and body (removing
    the previous one, so the feed always holds one); T-0002 comments and T-0001 replies."""
    with app.app_context():
        for post in db.session.scalars(select(Post).where(Post.deleted_at.is_(None))):
            post.deleted_at = NOW
        db.session.commit()
    client.post("/logout")
    client.post("/login", data={"identifier": "T-0001",
                                "password": "correct horse battery staple"})
    response = client.post("/forum/new", data={"kind": "talk_it_out", "title": text[:120],
                                               "body": text})
    assert response.status_code == 302, text
    post_id = int(response.headers["Location"].rsplit("/", 1)[1])
    client.post("/logout")
    client.post("/login", data={"identifier": "T-0002",
                                "password": "correct horse battery staple"})
    assert client.post(f"/forum/posts/{post_id}/comments",
                       data={"body": text}).status_code == 302
    with app.app_context():
        comment_id = db.session.scalar(select(Comment.id).where(Comment.post_id == post_id))
    client.post("/logout")
    client.post("/login", data={"identifier": "T-0001",
                                "password": "correct horse battery staple"})
    assert client.post(f"/forum/posts/{post_id}/comments",
                       data={"body": text, "parent_id": str(comment_id)}).status_code == 302
    return post_id


def _pages(client, post_id: int) -> tuple[str, str]:
    """The feed and the post page, with ids in our own form actions made alike so the
    baseline's forms match."""
    return tuple(IDS.sub(r"/forum/\1/N", client.get(url).get_data(as_text=True))
                 for url in ("/forum/", f"/forum/posts/{post_id}"))  # type: ignore[return-value]


def test_no_payload_becomes_active_markup_in_posts_and_comments(app, client, people):
    baseline = _pages(client, _write(client, app, HARMLESS))
    assert HARMLESS in baseline[1]
    failures = []
    for payload, what in PAYLOADS:
        pages = _pages(client, _write(client, app, payload))
        for page, base in zip(pages, baseline, strict=True):
            try:
                assert_no_active_markup(page, baseline=base)
            except AssertionError as exc:
                failures.append(f"{what}: {exc}")
    assert failures == []


def test_no_payload_becomes_active_markup_as_a_display_name(app, client, auth, people):
    """Display names go through the pseudonym rules when chosen; here they are stored
    as-is, to show the pages escape them whatever they hold."""
    post_id = _write(client, app, HARMLESS)
    auth.logout()
    auth.login("T-0001")
    baseline = _pages(client, post_id)
    failures = []
    for payload, what in PAYLOADS:
        with app.app_context():
            user = user_of("T-0002")
            user.display_name = payload[:40]
            db.session.commit()
        for page, base in zip(_pages(client, post_id), baseline, strict=True):
            try:
                assert_no_active_markup(page, baseline=base)
            except AssertionError as exc:
                failures.append(f"{what}: {exc}")
    assert failures == []
