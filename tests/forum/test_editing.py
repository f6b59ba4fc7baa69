"""Editing within the window with history that staff see, soft delete, and nobody
editing or deleting anyone else's writing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from core.roles import Role
from forum import services
from forum.models import Comment, Edit, Post
from tests.factories import make_staff
from tests.forum.forum_rows import NOW, member, user_of, write_comment, write_post


@pytest.fixture
def written(app) -> dict[str, int]:
    """T-0001's post with T-0002's comment, written at NOW; a peer moderator."""
    clock.set_time(NOW)
    with app.app_context():
        member(0)
        member(1)
        make_staff(Role.PEER_MODERATOR)
        post = write_post(user_of("T-0001"), "First *version*.")
        comment = write_comment(user_of("T-0002"), post, "A first comment.")
        return {"post": post.id, "comment": comment.id}


def test_the_author_edits_within_the_window_and_the_old_version_is_kept(
        app, client, auth, written):
    clock.set_time(NOW + timedelta(minutes=29))
    auth.login("T-0001")
    form = client.get(f"/forum/posts/{written['post']}/edit").get_data(as_text=True)
    assert "First *version*." in form
    response = client.post(f"/forum/posts/{written['post']}/edit",
                           data={"body": "Second **version**."})
    assert response.status_code == 302
    with app.app_context():
        post = db.session.get(Post, written["post"])
        assert post.body_html == "<p>Second <strong>version</strong>.</p>"
        assert post.edited_at == NOW + timedelta(minutes=29)
        [edit] = db.session.scalars(select(Edit))
        assert (edit.post_id, edit.body, edit.written_at) == (post.id, "First *version*.", NOW)
    page = client.get(f"/forum/posts/{written['post']}").get_data(as_text=True)
    assert "(edited)" in page and "Earlier versions" not in page


def test_staff_see_the_edit_history_and_other_participants_do_not(app, client, auth, written):
    clock.set_time(NOW + timedelta(minutes=5))
    with app.app_context():
        comment = db.session.get(Comment, written["comment"])
        services.edit_comment(comment, actor=user_of("T-0002"), body="A kinder comment.")
        db.session.commit()
    auth.login("T-0001")
    page = client.get(f"/forum/posts/{written['post']}").get_data(as_text=True)
    assert "A kinder comment." in page and "A first comment." not in page
    auth.logout()
    auth.login("peer_moderator@example.org")
    page = client.get(f"/forum/posts/{written['post']}").get_data(as_text=True)
    assert "Earlier versions (1), seen by staff only" in page
    assert "A first comment." in page and "A kinder comment." in page


def test_editing_after_the_window_is_refused_and_keeps_the_text(app, client, auth, written):
    clock.set_time(NOW + timedelta(minutes=30))
    auth.login("T-0001")
    page = client.get(f"/forum/posts/{written['post']}/edit").get_data(as_text=True)
    assert "The time for changing this has passed." in page
    response = client.post(f"/forum/posts/{written['post']}/edit", data={"body": "Too late."})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "30 minutes after posting it" in text and "Too late." in text
    with app.app_context():
        assert db.session.get(Post, written["post"]).body == "First *version*."
        assert db.session.scalar(select(Edit)) is None
    post_page = client.get(f"/forum/posts/{written['post']}").get_data(as_text=True)
    assert f"/forum/posts/{written['post']}/edit" not in post_page


def test_the_window_is_configurable(app, written):
    app.config["FORUM_EDIT_MINUTES"] = 60
    clock.set_time(NOW + timedelta(minutes=45))
    with app.app_context():
        post = db.session.get(Post, written["post"])
        services.edit_post(post, actor=user_of("T-0001"), body="Later, still fine.")
        db.session.commit()
        assert db.session.get(Post, written["post"]).body == "Later, still fine."


@pytest.mark.parametrize("who", ["T-0002", "peer_moderator@example.org"])
def test_nobody_edits_or_deletes_anothers_post_or_comment(app, client, auth, written, who):
    """It answers 403 to every edit and delete of someone else's writing (moderators
    included: they hide, they do not rewrite) and changes nothing."""
    with app.app_context():
        own = write_comment(user_of("T-0001"), db.session.get(Post, written["post"]), "Mine.")
        targets = {"T-0002": (written["post"], own.id),
                   "peer_moderator@example.org": (written["post"], written["comment"])}[who]
    auth.login(who)
    post_id, comment_id = targets
    assert client.get(f"/forum/posts/{post_id}/edit").status_code == 403
    assert client.post(f"/forum/posts/{post_id}/edit", data={"body": "Forged"}).status_code == 403
    assert client.post(f"/forum/posts/{post_id}/delete").status_code == 403
    assert client.get(f"/forum/comments/{comment_id}/edit").status_code == 403
    assert client.post(f"/forum/comments/{comment_id}/edit",
                       data={"body": "Forged"}).status_code == 403
    assert client.post(f"/forum/comments/{comment_id}/delete").status_code == 403
    with app.app_context():
        assert db.session.get(Post, post_id).body == "First *version*."
        assert db.session.get(Post, post_id).deleted_at is None
        assert db.session.get(Comment, comment_id).deleted_at is None
        assert db.session.scalar(select(Edit)) is None
        with pytest.raises(services.PermissionDenied):
            services.edit_post(db.session.get(Post, post_id), actor=user_of("T-0002"),
                               body="Forged")
        with pytest.raises(services.PermissionDenied):
            stranger = user_of("T-0002") if who == "T-0002" else user_of("T-0001")
            services.soft_delete(db.session.get(Comment, comment_id), actor=stranger)


def test_a_deleted_comment_leaves_a_placeholder(app, client, auth, written):
    auth.login("T-0002")
    response = client.post(f"/forum/comments/{written['comment']}/delete")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Comment, written["comment"]).deleted_at == NOW
    auth.logout()
    auth.login("T-0001")
    page = client.get(f"/forum/posts/{written['post']}").get_data(as_text=True)
    assert "This comment was deleted by its author." in page
    assert "A first comment." not in page
    assert "Comments (1)" not in page  # deleted comments are not counted


def test_a_deleted_post_leaves_the_feed_and_its_page_shows_a_placeholder(
        app, client, auth, written):
    auth.login("T-0001")
    assert client.post(f"/forum/posts/{written['post']}/delete").status_code == 302
    assert "First <em>version</em>." not in client.get("/forum/").get_data(as_text=True)
    page = client.get(f"/forum/posts/{written['post']}").get_data(as_text=True)
    assert "This post was deleted by its author." in page and "First" not in page
    assert "A first comment." in page  # others' comments stay
    refused = client.post(f"/forum/posts/{written['post']}/comments", data={"body": "Hello?"})
    assert refused.status_code == 422
    assert client.get(f"/forum/posts/{written['post']}/edit").get_data(
        as_text=True).count("The time for changing this has passed.") == 1
