"""New participants (account younger than a week) may post once every two minutes and
comment once every 30 seconds; the message says when, and the text stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.roles import Role
from forum import services
from forum.models import Comment, Post
from tests.factories import make_staff
from tests.forum.forum_rows import NOW, member, user_of, write_post


@pytest.fixture
def newcomer(app) -> int:
    clock.set_time(NOW)
    with app.app_context():
        member(0, new=True)
        member(1)
        return write_post(user_of("T-0002"), "Welcome!").id


def test_a_new_participant_waits_two_minutes_between_posts(app, client, auth, newcomer):
    auth.login("T-0001")
    assert client.post("/forum/new", data={"kind": "post", "body": "Hello all"}).status_code == 302
    clock.set_time(NOW + timedelta(seconds=61))
    refused = client.post("/forum/new", data={"kind": "post", "body": "Me again"})
    assert refused.status_code == 200
    text = refused.get_data(as_text=True)
    assert ("While your account is new you can write one post every 2 minutes. Please try "
            "again in 59 seconds; what you wrote is still here.") in text
    assert "Me again" in text
    clock.set_time(NOW + timedelta(minutes=2))
    assert client.post("/forum/new", data={"kind": "post", "body": "Me again"}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count(Post.id))) == 3


def test_a_new_participant_waits_30_seconds_between_comments(app, client, auth, newcomer):
    auth.login("T-0001")
    url = f"/forum/posts/{newcomer}/comments"
    assert client.post(url, data={"body": "Thank you"}).status_code == 302
    clock.set_time(NOW + timedelta(seconds=10))
    refused = client.post(url, data={"body": "And hello"})
    assert refused.status_code == 422
    assert "one comment every 30 seconds" in refused.get_data(as_text=True)
    assert "And hello" in refused.get_data(as_text=True)
    clock.set_time(NOW + timedelta(seconds=30))
    assert client.post(url, data={"body": "And hello"}).status_code == 302


def test_established_participants_and_moderators_are_not_limited(app, newcomer):
    with app.app_context():
        old = user_of("T-0002")
        peer = make_staff(Role.PEER_MODERATOR)
        peer.created_at = NOW
        post = db.session.get(Post, newcomer)
        for writer in (old, peer):
            for _ in range(3):
                services.create_comment(writer, post, body="Quick one")
            services.create_post(writer, kind="post", body="Another")
        db.session.commit()
        assert db.session.scalar(select(func.count(Comment.id))) == 6


def test_the_limits_are_configurable(app, newcomer):
    app.config.update(FORUM_NEW_ACCOUNT_DAYS=0)
    with app.app_context():
        newbie = user_of("T-0001")
        services.create_post(newbie, kind="post", body="One")
        services.create_post(newbie, kind="post", body="Two")
    app.config.update(FORUM_NEW_ACCOUNT_DAYS=7, FORUM_NEW_POST_SECONDS=600)
    clock.set_time(NOW + timedelta(minutes=5))
    with app.app_context():
        newbie = user_of("T-0001")
        services.create_post(newbie, kind="post", body="Three")
        clock.set_time(NOW + timedelta(minutes=9))
        with pytest.raises(services.ForumError, match="every 10 minutes"):
            services.create_post(newbie, kind="post", body="Four")
