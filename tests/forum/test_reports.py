"""Reports of posts and comments: a fixed reason and an optional note, one open report
per person and item, stored for the moderators' queue (``forum.reports``)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core import clock
from core.audit import AuditEntry
from core.extensions import db
from core.models import User
from core.roles import Role
from forum import reports, services
from forum.models import Comment, Post, Report
from tests.factories import make_staff
from tests.forum.forum_rows import NOW, member, user_of, write_comment, write_post


@pytest.fixture
def items(app) -> dict[str, int]:
    clock.set_time(NOW)
    with app.app_context():
        member(0)
        member(1)
        member(2)
        make_staff(Role.PEER_MODERATOR)
        post = write_post(user_of("T-0001"), "Something someone may find unkind.")
        comment = write_comment(user_of("T-0002"), post, "A comment.")
        return {"post": post.id, "comment": comment.id}


def test_a_participant_reports_a_post_with_a_reason_and_a_note(app, client, auth, items):
    auth.login("T-0003")
    page = client.get(f"/forum/posts/{items['post']}/report").get_data(as_text=True)
    assert "It is unkind, hurtful or bullying" in page
    response = client.post(f"/forum/posts/{items['post']}/report",
                           data={"reason": "unkind", "note": "It upset me."})
    assert response.status_code == 302
    assert "A moderator will look at it soon." in client.get(
        response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        [row] = db.session.scalars(select(Report))
        assert (row.post_id, row.comment_id, row.reason, row.note, row.target) == (
            items["post"], None, "unkind", "It upset me.", f"post:{items['post']}")
        assert row.reporter_id == user_of("T-0003").id
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "forum.reported"))
        assert entry.detail == {"reason": "unkind"}  # never the note


def test_one_open_report_per_person_and_item(app, client, auth, items):
    auth.login("T-0003")
    url = f"/forum/comments/{items['comment']}/report"
    assert client.post(url, data={"reason": "spam"}).status_code == 302
    again = client.post(url, data={"reason": "other", "note": "Still there"})
    assert again.status_code == 200
    text = again.get_data(as_text=True)
    assert "You have already reported this." in text and "Still there" in text
    auth.logout()
    auth.login("T-0001")  # someone else may report the same comment
    assert client.post(url, data={"reason": "worried"}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count(Report.id))) == 2
        peer = db.session.scalar(select(User).where(User.role == Role.PEER_MODERATOR))
        first = db.session.scalar(select(Report).order_by(Report.id))
        assert reports.resolve(first, actor=peer, outcome="no_action") is True
        db.session.commit()
        # once resolved, the same person may report it again
        comment = db.session.get(Comment, items["comment"])
        reports.report(comment, actor=user_of("T-0003"), reason="spam")
        db.session.commit()
        assert db.session.scalar(select(func.count(Report.id))) == 3


def test_bad_reports_are_refused(app, client, auth, items):
    auth.login("T-0003")
    url = f"/forum/posts/{items['post']}/report"
    assert "Please choose a reason." in client.post(url, data={}).get_data(as_text=True)
    assert client.post(url, data={"reason": "made-up"}).status_code == 200
    long_note = client.post(url, data={"reason": "other", "note": "x" * 501})
    assert "500" in long_note.get_data(as_text=True)
    assert client.get("/forum/posts/999999/report").status_code == 404
    auth.logout()
    auth.login("T-0001")
    own = client.post(url, data={"reason": "spam"}).get_data(as_text=True)
    assert "This is your own writing" in own
    with app.app_context():
        assert db.session.scalar(select(func.count(Report.id))) == 0


def test_the_moderation_queue_lists_and_resolves_open_reports(app, items):
    """It lists open reports oldest first with their items, resolves one (once; a second
    resolve says False), resolves all of an item's reports after a hide, and refuses
    participants."""
    with app.app_context():
        post = db.session.get(Post, items["post"])
        comment = db.session.get(Comment, items["comment"])
        reports.report(post, actor=user_of("T-0002"), reason="unkind")
        clock.set_time(NOW.replace(minute=5))
        reports.report(post, actor=user_of("T-0003"), reason="worried", note="Please check")
        reports.report(comment, actor=user_of("T-0003"), reason="spam")
        db.session.commit()
        queue = reports.open_reports()
        assert [(r.item.id, r.reason) for r in queue] == [
            (post.id, "unkind"), (post.id, "worried"), (comment.id, "spam")]
        peer = db.session.scalar(select(User).where(User.role == Role.PEER_MODERATOR))
        with pytest.raises(services.PermissionDenied):
            reports.resolve(queue[2], actor=user_of("T-0001"), outcome="no_action")
        with pytest.raises(ValueError):
            reports.resolve(queue[2], actor=peer, outcome="shrug")
        assert reports.resolve(queue[2], actor=peer, outcome="no_action") is True
        assert reports.resolve(queue[2], actor=peer, outcome="hidden") is False
        services.hide(post, actor=peer)
        assert reports.resolve_for_item(post, actor=peer, outcome="hidden") == 2
        db.session.commit()
        assert reports.open_reports() == []
        assert {r.outcome for r in reports.reports_for(post)} == {"hidden"}
