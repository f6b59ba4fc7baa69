"""Tried as a new user would: on the seeded demo, the demo participant posts, another
participant reacts and comments, and the first is told in the app."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from core.events import ActivityEvent
from core.extensions import db
from core.notifications import Notification
from forum.demo import THREADS, forum_people, seed_demo_forum
from forum.models import Comment, Post, Reaction
from outcomes import demo
from tests.conftest import AuthActions


@pytest.fixture
def seeded(app):
    with app.app_context():
        assert demo.seed(12, rng=random.Random(7))  # the demo seeds the forum too
        assert db.session.scalar(select(func.count(Post.id))) == len(THREADS) + 1  # + welcome
        assert seed_demo_forum() == 0  # once only
        db.session.commit()
        people = [user.participant.study_code for user in forum_people()]
    assert people[0] == demo.DEMO_PARTICIPANT[0]
    return people


def test_the_demo_forum_is_warm_and_lively(app, client, seeded):
    with app.app_context():
        assert db.session.scalar(select(func.count(Comment.id))) >= 15
        assert db.session.scalar(select(func.count(Reaction.id))) >= 10
        assert db.session.scalar(select(func.count(Comment.id)).where(
            Comment.helpful_at.is_not(None))) == 2
        assert db.session.scalar(select(func.count(ActivityEvent.id)).where(
            ActivityEvent.kind == "post_written")) == len(THREADS)
    AuthActions(client, app).login(demo.DEMO_PARTICIPANT[0], demo.DEMO_PASSWORD)
    page = client.get("/forum/").get_data(as_text=True)
    assert "Small win" in page and "Kit (peer supporter)" in page
    assert "Talk it out" in page


def test_a_new_user_posts_another_reacts_and_comments_and_the_first_is_told(
        app, client, seeded):
    first = AuthActions(client, app)
    first.login(demo.DEMO_PARTICIPANT[0], demo.DEMO_PASSWORD)
    with app.app_context():
        before = db.session.scalar(select(func.count(Notification.id)))
    response = client.post("/forum/new", data={
        "kind": "post", "body": "First time posting here. Went to the library café today."})
    assert response.status_code == 302
    post_path = response.headers["Location"].split("kinship.test", 1)[-1]
    client.get("/notifications")  # read what the seed left, so only the new ones count
    client.post("/notifications/read-all")
    first.logout()

    other_client = app.test_client()
    other = AuthActions(other_client, app)
    assert other.login(seeded[2], demo.DEMO_PASSWORD).status_code == 302
    feed = other_client.get("/forum/").get_data(as_text=True)
    assert "First time posting here." in feed
    post_id = int(post_path.rsplit("/", 1)[1])
    assert other_client.post(f"/forum/posts/{post_id}/react",
                             data={"kind": "thinking_of_you"}).status_code == 302
    assert other_client.post(f"/forum/posts/{post_id}/comments",
                             data={"body": "Welcome! The library café is lovely."}
                             ).status_code == 302

    first.login(demo.DEMO_PARTICIPANT[0], demo.DEMO_PASSWORD)
    home = client.get("/forum/").get_data(as_text=True)
    assert 'class="nav-count">(2' in home
    notes = client.get("/notifications").get_data(as_text=True)
    with app.app_context():
        name = db.session.scalar(select(Post).where(Post.id == post_id)).author.display_name
        assert name == demo.DEMO_PARTICIPANT[1]
        assert db.session.scalar(select(func.count(Notification.id))) == before + 2
    assert "commented on your post." in notes and "reacted to your post" in notes
    thread = client.get(post_path).get_data(as_text=True)
    assert "Welcome! The library café is lovely." in thread
    assert '<span class="reaction-count">1</span>' in thread
