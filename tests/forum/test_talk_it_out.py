"""Talk-it-out threads: a participant describes a problem, peers suggest ways forward,
and the author marks the suggestions that helped."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import clock
from core.events import ActivityEvent
from core.extensions import db
from core.notifications import Notification
from forum import services
from forum.models import Comment
from tests.forum.forum_rows import NOW, member, user_of, write_comment, write_post


@pytest.fixture
def thread(app) -> dict[str, int]:
    """T-0001 asks for help; T-0002 suggests something; T-0003 is another reader."""
    clock.set_time(NOW)
    with app.app_context():
        asker, helper, _ = member(0).user, member(1).user, member(2)
        post = write_post(asker, "I haven't spoken to anyone in days.", kind="talk_it_out",
                          title="How do I start a conversation with a neighbour?")
        suggestion = write_comment(helper, post, "Ask about their garden; people love that.")
        return {"post": post.id, "suggestion": suggestion.id}


def test_a_talk_it_out_thread_needs_its_question(app, client, auth, thread):
    auth.login("T-0002")
    response = client.post("/forum/new", data={"kind": "talk_it_out", "title": "",
                                               "body": "I feel stuck."})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Please write something first." in page and "I feel stuck." in page
    page = client.get(f"/forum/posts/{thread['post']}").get_data(as_text=True)
    assert "How do I start a conversation with a neighbour?" in page
    assert "Ways forward (1)" in page
    assert "This helped me" not in page  # only the thread's author marks


def test_the_author_marks_a_suggestion_that_helped_and_can_undo_it(app, client, auth, thread):
    """It marks the suggestion, records helpful_marked (asker) and helpful_received
    (helper), tells the helper, shows "Helped" and unmarks on a second press."""
    auth.login("T-0001")
    page = client.get(f"/forum/posts/{thread['post']}").get_data(as_text=True)
    assert "This helped me" in page
    response = client.post(f"/forum/comments/{thread['suggestion']}/helpful")
    assert response.status_code == 302
    with app.app_context():
        comment = db.session.get(Comment, thread["suggestion"])
        assert comment.helpful_at == NOW
        rows = db.session.execute(select(ActivityEvent.kind, ActivityEvent.participant_id)
                                  .where(ActivityEvent.kind.like("helpful_%"))).all()
        asker, helper = user_of("T-0001"), user_of("T-0002")
        assert sorted(rows) == [("helpful_marked", asker.participant.id),
                                ("helpful_received", helper.participant.id)]
        note = db.session.scalar(select(Notification).where(Notification.kind == "helpful"))
        assert note.user_id == helper.id
        assert note.text == "Quiet Harbour said your suggestion helped them."
    page = client.get(f"/forum/posts/{thread['post']}").get_data(as_text=True)
    assert "Helped Quiet Harbour" in page
    client.post(f"/forum/comments/{thread['suggestion']}/helpful")
    with app.app_context():
        assert db.session.get(Comment, thread["suggestion"]).helpful_at is None


def test_nobody_else_marks_what_helped(app, client, auth, thread):
    for code in ("T-0002", "T-0003"):
        auth.login(code)
        assert client.post(f"/forum/comments/{thread['suggestion']}/helpful").status_code == 403
        auth.logout()
    with app.app_context():
        assert db.session.get(Comment, thread["suggestion"]).helpful_at is None


def test_only_suggestions_in_a_talk_it_out_thread_can_be_marked(app, thread):
    with app.app_context():
        asker = user_of("T-0001")
        post = write_post(asker, "Just sharing my day.")
        comment = write_comment(user_of("T-0002"), post)
        with pytest.raises(services.ForumError, match="talk-it-out"):
            services.toggle_helpful(comment, actor=asker)
        mine = write_comment(asker, db.session.get(Comment, thread["suggestion"]).post, "Thanks")
        services.soft_delete(mine, actor=asker)
        with pytest.raises(services.ForumError):
            services.toggle_helpful(mine, actor=asker)
