"""The screening hook on posts and comments: published, flagged, held (visible only to
its author, "waiting for a moderator", and to staff), blocked (a kind message, the text
kept in the form), and high risk (held, crisis resources at once)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from core import clock, screening
from core.extensions import db
from core.models import User
from core.notifications import Notification
from core.roles import Role
from forum import services
from forum.models import Comment, Edit, Post
from tests.factories import make_staff
from tests.forum.forum_rows import (
    NOW,
    member,
    thread_texts,
    user_of,
    write_comment,
    write_post,
)

BLOCK_MESSAGE = "Let's keep phone numbers out of the forum. Could you take it out?"


@dataclass
class Screening:
    """A test screener (the words HOLD, BLOCK, FLAG and RISK decide) and what it was told."""

    recorded: list[tuple[str, str, int, int]] = field(default_factory=list)

    def judge(self, text: str, channel: str, author: Any) -> screening.Verdict:
        if "BLOCK" in text:
            return screening.Verdict("block", message=BLOCK_MESSAGE, category="personal_info")
        if "RISK" in text:
            return screening.Verdict("hold", category="self_harm", severity=3, is_risk=True)
        if "HOLD" in text:
            return screening.Verdict("hold", category="harassment", severity=2)
        if "FLAG" in text:
            return screening.Verdict("flag", category="spam", severity=1)
        return screening.PUBLISH

    def record(self, verdict: screening.Verdict, channel: str, content_id: int,
               author: Any) -> None:
        self.recorded.append((verdict.action, channel, content_id, author.id))


@pytest.fixture
def screen(app) -> Iterator[Screening]:
    """Registers the test screener and recorder in place of any other (moderation's, when
    it is imported); puts back whatever was there before."""
    saved_screener, saved_recorders = screening._screener, list(screening._recorders)
    state = Screening()
    screening.register_screener(state.judge)
    screening._recorders[:] = [state.record]  # only ours while the test runs
    clock.set_time(NOW)
    with app.app_context():
        member(0)
        member(1)
        make_staff(Role.PEER_MODERATOR)
        make_staff(Role.CLINICIAN)
    yield state
    screening._screener = saved_screener
    screening._recorders[:] = saved_recorders


def test_a_held_post_is_shown_only_to_its_author_and_to_staff(app, client, auth, screen):
    auth.login("T-0001")
    response = client.post("/forum/new", data={"kind": "post", "body": "HOLD this please"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "A moderator will read this before others can see it." in page
    assert "Waiting for a moderator" in page and "HOLD this please" in page
    assert "HOLD this please" in client.get("/forum/").get_data(as_text=True)
    with app.app_context():
        post = db.session.scalar(select(Post))
        assert post.is_held
        assert screen.recorded == [("hold", "forum_post", post.id, post.author_id)]
        post_id = post.id
    auth.logout()

    auth.login("T-0002")
    assert "HOLD this please" not in client.get("/forum/").get_data(as_text=True)
    assert client.get(f"/forum/posts/{post_id}").status_code == 404
    assert client.post(f"/forum/posts/{post_id}/react", data={"kind": "me_too"}).status_code == 404
    assert client.post(f"/forum/posts/{post_id}/comments", data={"body": "hi"}).status_code == 404
    assert client.get(f"/forum/posts/{post_id}/report").status_code == 404
    auth.logout()

    for staff in ("peer_moderator@example.org", "clinician@example.org"):
        auth.login(staff)
        feed = client.get("/forum/").get_data(as_text=True)
        assert "HOLD this please" in feed and "Waiting for a moderator" in feed
        assert client.get(f"/forum/posts/{post_id}").status_code == 200
        auth.logout()


def test_a_held_comment_notifies_nobody_until_a_moderator_approves_it(app, screen):
    with app.app_context():
        author, commenter = user_of("T-0001"), user_of("T-0002")
        post = write_post(author)
        held = services.create_comment(commenter, post, body="HOLD: a sharp reply")
        db.session.commit()
        assert held.held and held.item.is_held
        assert db.session.scalar(select(func.count(Notification.id))) == 0
        assert "HOLD: a sharp reply" not in thread_texts(post, author)
        assert "HOLD: a sharp reply" in thread_texts(post, commenter)
        peer = db.session.scalar(select(User).where(User.role == Role.PEER_MODERATOR))
        with pytest.raises(services.PermissionDenied):
            services.approve(held.item, actor=commenter)
        assert services.approve(held.item, actor=peer) is True
        assert services.approve(held.item, actor=peer) is False
        db.session.commit()
        assert "HOLD: a sharp reply" in thread_texts(post, author)
        [note] = db.session.scalars(select(Notification))
        assert (note.user_id, note.kind) == (author.id, "reply")


@pytest.mark.parametrize("where", ["post", "comment", "reply", "edit"])
def test_blocked_text_is_refused_kindly_and_stays_in_the_form(app, client, auth, screen, where):
    """It stores nothing, shows the screener's kind message next to the text box, and
    keeps every word that was typed."""
    typed = "Call me on BLOCK 07700 900123 any time"
    with app.app_context():
        post = write_post(user_of("T-0001"))
        comment = write_comment(user_of("T-0002"), post)
        ids = {"post": post.id, "comment": comment.id, "first": post.author_id,
               "second": comment.author_id}
    auth.login("T-0001")
    url, data = {
        "post": ("/forum/new", {"kind": "post", "body": typed}),
        "comment": (f"/forum/posts/{ids['post']}/comments", {"body": typed}),
        "reply": (f"/forum/posts/{ids['post']}/comments",
                  {"body": typed, "parent_id": str(ids["comment"])}),
        "edit": (f"/forum/posts/{ids['post']}/edit", {"body": typed}),
    }[where]
    response = client.post(url, data=data)
    assert response.status_code in (200, 422)
    page = response.get_data(as_text=True)
    assert "Let&#39;s keep phone numbers out of the forum." in page
    assert typed in page
    assert 'aria-invalid="true"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count(Post.id))) == 1
        assert db.session.scalar(select(func.count(Comment.id))) == 1
        assert db.session.scalar(select(func.count(Edit.id))) == 0
        assert db.session.get(Post, ids["post"]).body == "Had a cup of tea with my neighbour today."
    assert screen.recorded == [("publish", "forum_post", ids["post"], ids["first"]),
                               ("publish", "forum_comment", ids["comment"], ids["second"])]


def test_flagged_content_is_published_and_reported(app, client, auth, screen):
    auth.login("T-0001")
    client.post("/forum/new", data={"kind": "post", "body": "FLAG buy my stuff"})
    auth.logout()
    auth.login("T-0002")
    assert "FLAG buy my stuff" in client.get("/forum/").get_data(as_text=True)
    assert [row[0] for row in screen.recorded] == ["flag"]


def test_high_risk_text_is_held_and_the_author_sees_crisis_resources(app, client, auth, screen):
    auth.login("T-0002")
    response = client.post("/forum/new", data={"kind": "post", "body": "RISK words"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/help")
    crisis = client.get("/help").get_data(as_text=True)
    assert "A clinician from the study team may read it and get in touch." in crisis
    with app.app_context():
        assert db.session.scalar(select(Post)).is_held


def test_editing_published_text_into_held_text_holds_it(app, client, auth, screen):
    with app.app_context():
        post_id = write_post(user_of("T-0001")).id
    auth.login("T-0001")
    client.post(f"/forum/posts/{post_id}/edit", data={"body": "Now with HOLD words"})
    with app.app_context():
        assert db.session.get(Post, post_id).is_held
    auth.logout()
    auth.login("T-0002")
    assert client.get(f"/forum/posts/{post_id}").status_code == 404
