"""Posting, commenting, replying and reacting, through the pages and the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import clock
from core.events import ActivityEvent
from core.extensions import db
from core.notifications import Notification
from forum import services
from forum.models import Comment, Post, Reaction
from modules.models import Award
from tests.forum.forum_rows import NOW, member, user_of, write_comment, write_post


@pytest.fixture
def two(app):
    """Two established participants in the arm with the forum; the clock at NOW."""
    clock.set_time(NOW)
    with app.app_context():
        member(0)
        member(1)


def events(kind: str) -> list[ActivityEvent]:
    return list(db.session.scalars(select(ActivityEvent).where(ActivityEvent.kind == kind)))


def test_a_post_written_on_the_page_is_stored_rendered_and_shown_in_the_feed(
        app, client, auth, two):
    """It stores the Markdown and its HTML rendered once, shows the HTML in the feed, and
    records a post_written event and the post's points."""
    auth.login("T-0001")
    assert client.get("/forum/new").status_code == 200
    response = client.post("/forum/new", data={
        "kind": "post", "body": "Went for a *short* walk.\nSaw a **heron**.\n\n- tea\n- toast"})
    assert response.status_code == 302
    with app.app_context():
        post = db.session.scalar(select(Post))
        assert post.body.startswith("Went for a *short* walk.")
        assert post.body_html == ("<p>Went for a <em>short</em> walk.<br>\nSaw a "
                                  "<strong>heron</strong>.</p>\n<ul>\n<li>tea</li>\n"
                                  "<li>toast</li>\n</ul>")
        assert response.headers["Location"].endswith(f"/forum/posts/{post.id}")
        [event] = events("post_written")
        assert event.detail == {"post_id": post.id, "post_kind": "post"}
        assert db.session.scalar(select(Award.points).where(Award.key == f"post_written:{post.id}")
                                 ) == 10
    feed = client.get("/forum/").get_data(as_text=True)
    assert "Went for a <em>short</em> walk." in feed
    assert "Quiet Harbour" in feed and ">QH</span>" in feed


def test_the_feed_is_newest_first_and_pages_by_cursor(app, client, auth, two):
    """It lists 45 posts 20 at a time, newest first, with no repeat or gap, including
    posts written in the same microsecond."""
    with app.app_context():
        author = user_of("T-0002")
        for n in range(45):
            write_post(author, f"Post number {n}.", at=NOW - timedelta(minutes=45 - n // 2))
    clock.set_time(NOW)
    auth.login("T-0001")
    seen, url = [], "/forum/"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += [int(part.split(".")[0]) for part in html.split("Post number ")[1:]]
        url = None
        if 'aria-label="More posts"' in html:
            url = html.split('aria-label="More posts">')[1].split('href="')[1].split('"')[0]
            url = url.replace("&amp;", "&")
    assert seen == list(range(44, -1, -1))


def test_a_made_up_cursor_is_a_bad_request(app, client, auth, two):
    auth.login("T-0001")
    assert client.get("/forum/?cursor=not-a-cursor").status_code == 400
    assert client.get("/forum/?cursor=99999999999999999999999-1").status_code == 400


def test_comments_and_one_level_of_replies(app, client, auth, two):
    """It posts a comment and a reply to it; a reply to a reply is refused; the page
    shows the reply under its comment."""
    with app.app_context():
        post = write_post(user_of("T-0001"))
        post_id = post.id
    auth.login("T-0002")
    response = client.post(f"/forum/posts/{post_id}/comments", data={"body": "Lovely!"})
    assert response.status_code == 302
    with app.app_context():
        first = db.session.scalar(select(Comment))
        first_id = first.id
        assert response.headers["Location"].endswith(f"/forum/posts/{post_id}#comment-{first_id}")
    response = client.post(f"/forum/posts/{post_id}/comments",
                           data={"body": "And *thank you*.", "parent_id": str(first_id)})
    assert response.status_code == 302
    with app.app_context():
        reply = db.session.scalar(select(Comment).where(Comment.parent_id == first_id))
        assert reply.body_html == "<p>And <em>thank you</em>.</p>"
        reply_id = reply.id
        assert len(events("comment_written")) == 2
    refused = client.post(f"/forum/posts/{post_id}/comments",
                          data={"body": "Deeper?", "parent_id": str(reply_id)})
    assert refused.status_code == 422
    assert "You can reply to a comment on this post only." in refused.get_data(as_text=True)
    assert "Deeper?" in refused.get_data(as_text=True)
    page = client.get(f"/forum/posts/{post_id}").get_data(as_text=True)
    assert page.index(f'id="comment-{first_id}"') < page.index(f'id="comment-{reply_id}"')
    assert 'class="forum-replies"' in page


def test_an_empty_comment_is_refused_and_a_comment_on_another_posts_comment_is_404(
        app, client, auth, two):
    with app.app_context():
        one = write_post(user_of("T-0001"))
        other = write_post(user_of("T-0001"), "Another.")
        theirs = write_comment(user_of("T-0002"), other)
        ids = one.id, theirs.id
    auth.login("T-0002")
    empty = client.post(f"/forum/posts/{ids[0]}/comments", data={"body": "   "})
    assert empty.status_code == 422
    assert "Please write something first." in empty.get_data(as_text=True)
    wrong = client.post(f"/forum/posts/{ids[0]}/comments",
                        data={"body": "Hi", "parent_id": str(ids[1])})
    assert wrong.status_code == 404
    assert client.post(f"/forum/posts/{ids[0]}/comments",
                       data={"body": "Hi", "parent_id": "x"}).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count(Comment.id))) == 1


def test_reactions_toggle_one_of_each_kind_per_person(app, client, auth, two):
    """It adds a reaction, takes it back on the second press, allows different kinds at
    once, and refuses a made-up kind."""
    with app.app_context():
        post_id = write_post(user_of("T-0001")).id
    auth.login("T-0002")
    react = f"/forum/posts/{post_id}/react"
    assert client.post(react, data={"kind": "me_too"}).status_code == 302
    assert client.post(react, data={"kind": "thinking_of_you"}).status_code == 302
    with app.app_context():
        kinds = sorted(db.session.scalars(select(Reaction.kind)))
        assert kinds == ["me_too", "thinking_of_you"]
    page = client.get(f"/forum/posts/{post_id}").get_data(as_text=True)
    assert 'value="me_too" class="reaction reaction-on" aria-pressed="true"' in page
    assert client.post(react, data={"kind": "me_too"}).status_code == 302
    with app.app_context():
        assert list(db.session.scalars(select(Reaction.kind))) == ["thinking_of_you"]
        # points once per post and kind, even after taking it back and giving it again
        assert len(events("reaction_given")) == 2
    assert client.post(react, data={"kind": "me_too"}).status_code == 302
    assert client.post(react, data={"kind": "hearts"}).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count(Reaction.id))) == 2
        assert db.session.scalar(select(func.count(Award.id)).where(
            Award.key.like("reaction_given:%"))) == 2


def test_reactions_in_the_feed_return_to_the_feed(app, client, auth, two):
    with app.app_context():
        post_id = write_post(user_of("T-0001")).id
    auth.login("T-0002")
    response = client.post(f"/forum/posts/{post_id}/react",
                           data={"kind": "proud_of_you", "back": "feed"})
    assert response.headers["Location"].endswith(f"/forum/#post-{post_id}")
    assert '<span class="reaction-count">1</span>' in client.get("/forum/").get_data(
        as_text=True)


def test_the_author_is_told_of_comments_replies_and_reactions(app, two):
    """It notifies the post's author of a comment and a reaction (several reactions
    collapse into one), the comment's author of a reply, and nobody of their own acts."""
    with app.app_context():
        first, second = user_of("T-0001"), user_of("T-0002")
        third = member(2).user
        post = write_post(first)
        comment = write_comment(second, post)
        write_comment(first, post, "Thank you!", parent=comment)
        services.toggle_reaction(post, actor=second, kind="me_too")
        services.toggle_reaction(post, actor=third, kind="me_too")
        services.toggle_reaction(post, actor=first, kind="me_too")
        db.session.commit()
        rows = {(n.user_id, n.kind): n for n in db.session.scalars(select(Notification))}
        assert set(rows) == {(first.id, "reply"), (first.id, "reaction"), (second.id, "reply")}
        assert rows[(first.id, "reply")].text == "Still Meadow commented on your post."
        assert rows[(second.id, "reply")].text == "Quiet Harbour replied to your comment."
        assert rows[(first.id, "reaction")].count == 2
        assert rows[(first.id, "reply")].url == f"/forum/posts/{post.id}#comment-{comment.id}"


def test_staff_without_a_display_name_appear_under_their_role(app, client, auth, two):
    from core.roles import Role
    from tests.factories import make_staff

    with app.app_context():
        peer = make_staff(Role.PEER_MODERATOR)
        write_post(peer, "Welcome, everyone. I'm one of the moderators.")
    auth.login("T-0001")
    feed = client.get("/forum/").get_data(as_text=True)
    assert "Peer moderator" in feed and "peer_moderator@example.org" not in feed
    assert "Moderator</span>" in feed
