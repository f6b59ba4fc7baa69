"""Hidden content (a moderator's hide) and what each person sees: participants other
than the author never see hidden or held writing; its author and staff see it marked."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import clock
from core.audit import AuditEntry
from core.extensions import db
from core.models import User
from core.roles import Role
from forum import feed, services
from forum.models import Comment, Post
from tests.factories import make_staff
from tests.forum.forum_rows import (
    NOW,
    member,
    thread_texts,
    user_of,
    write_comment,
    write_post,
)


@pytest.fixture
def hidden(app) -> dict[str, int]:
    """T-0001's post and T-0002's comment on another post, both hidden by a peer
    moderator; a visible post and comment beside them."""
    clock.set_time(NOW)
    with app.app_context():
        first, second = member(0).user, member(1).user
        member(2)
        peer = make_staff(Role.PEER_MODERATOR)
        make_staff(Role.CLINICIAN)
        hidden_post = write_post(first, "A post the moderator hid.")
        open_post = write_post(first, "An open post.")
        hidden_comment = write_comment(second, open_post, "A comment the moderator hid.")
        reply = write_comment(first, open_post, "A reply under the hidden comment.",
                              parent=hidden_comment)
        write_comment(second, open_post, "A visible comment.")
        assert services.hide(hidden_post, actor=peer, reason="report") is True
        assert services.hide(hidden_comment, actor=peer) is True
        db.session.commit()
        return {"hidden_post": hidden_post.id, "open_post": open_post.id,
                "hidden_comment": hidden_comment.id, "reply": reply.id}


def test_other_participants_never_see_hidden_content(app, client, auth, hidden):
    auth.login("T-0003")
    feed_page = client.get("/forum/").get_data(as_text=True)
    assert "A post the moderator hid." not in feed_page and "An open post." in feed_page
    assert client.get(f"/forum/posts/{hidden['hidden_post']}").status_code == 404
    page = client.get(f"/forum/posts/{hidden['open_post']}").get_data(as_text=True)
    assert "A comment the moderator hid." not in page
    assert "A reply under the hidden comment." not in page  # goes with its comment
    assert "A visible comment." in page
    assert client.get(f"/forum/comments/{hidden['hidden_comment']}/report").status_code == 404


def test_the_author_sees_their_hidden_writing_marked(app, client, auth, hidden):
    auth.login("T-0001")
    assert "Hidden by a moderator" in client.get("/forum/").get_data(as_text=True)
    page = client.get(f"/forum/posts/{hidden['hidden_post']}").get_data(as_text=True)
    assert "A post the moderator hid." in page and "Hidden by a moderator" in page
    auth.logout()
    auth.login("T-0002")
    page = client.get(f"/forum/posts/{hidden['open_post']}").get_data(as_text=True)
    assert "A comment the moderator hid." in page and "Hidden by a moderator" in page


@pytest.mark.parametrize("staff", ["peer_moderator@example.org", "clinician@example.org"])
def test_moderators_see_hidden_content_marked(app, client, auth, hidden, staff):
    auth.login(staff)
    assert "A post the moderator hid." in client.get("/forum/").get_data(as_text=True)
    page = client.get(f"/forum/posts/{hidden['open_post']}").get_data(as_text=True)
    assert "A comment the moderator hid." in page and "Hidden by a moderator" in page
    assert "A reply under the hidden comment." in page


def test_unhide_shows_it_again_and_both_acts_are_audited(app, hidden):
    with app.app_context():
        peer = db.session.scalar(select(User).where(User.role == Role.PEER_MODERATOR))
        reader = user_of("T-0003")
        post = db.session.get(Post, hidden["hidden_post"])
        assert feed.load_post(post.id, reader) is None
        assert services.unhide(post, actor=peer) is True
        assert services.unhide(post, actor=peer) is False
        db.session.commit()
        assert feed.load_post(post.id, reader) is not None
        actions = list(db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("forum.%")).order_by(AuditEntry.seq)))
        assert actions == ["forum.post.hidden", "forum.comment.hidden", "forum.post.unhidden"]
        comment = db.session.get(Comment, hidden["hidden_comment"])
        assert "A comment the moderator hid." not in thread_texts(comment.post, reader)


def test_only_moderators_hide_unhide_or_approve(app, hidden):
    with app.app_context():
        post = db.session.get(Post, hidden["open_post"])
        for role in (Role.RESEARCHER, Role.ADMIN):
            other = make_staff(role)
            for act in (services.hide, services.unhide, services.approve):
                with pytest.raises(services.PermissionDenied):
                    act(post, actor=other)
        with pytest.raises(services.PermissionDenied):
            services.hide(post, actor=user_of("T-0001"))
        assert db.session.get(Post, hidden["open_post"]).hidden_at is None


def test_a_participant_cannot_comment_on_or_react_to_hidden_content(app, hidden):
    with app.app_context():
        post = db.session.get(Post, hidden["hidden_post"])
        reader = user_of("T-0003")
        with pytest.raises(services.ForumError):
            services.create_comment(reader, post, body="Hello")
        with pytest.raises(services.ForumError):
            services.toggle_reaction(post, actor=reader, kind="me_too")
