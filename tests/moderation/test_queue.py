"""The review queue's services: grouping reports, order, who sees what, each action, the
version check, and what the moderation and audit logs keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock, screening
from core.audit import AuditEntry
from core.extensions import db
from core.notifications import Notification
from core.roles import Role
from forum import reports, services
from forum.models import Edit, Post, Report
from moderation import queue
from moderation.models import ModerationLog, QueueItem, RiskAlert
from tests.factories import make_participant, make_staff, make_study

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
PHONE_POST = "Lovely chat today. Ring me on 07700 900123 or mail sam.smith@example.com x"


@pytest.fixture
def ctx(app):
    clock.set_time(NOW)
    with app.app_context():
        yield


@pytest.fixture
def people(ctx):
    study = make_study()
    return {
        "author": make_participant(study, "T-0001", name="Quiet Harbour").user,
        "reader": make_participant(study, "T-0002", name="Bright Meadow").user,
        "reader2": make_participant(study, "T-0003", name="Calm River").user,
        "peer": make_staff(Role.PEER_MODERATOR, "peer@example.org", name="Kit"),
        "peer2": make_staff(Role.PEER_MODERATOR, "peer2@example.org", name="Lee"),
        "clinician": make_staff(Role.CLINICIAN, "clin@example.org", name="Dr Patel"),
    }


def write(author, body: str, *, minutes: int = 0) -> Post:
    clock.set_time(NOW + timedelta(minutes=minutes))
    post = services.create_post(author, kind="post", body=body).item
    db.session.commit()
    return post


def reported(people, body: str = "Stop posting here, nobody reads your posts.", *,
             reason: str = "unkind", minutes: int = 0) -> QueueItem:
    post = write(people["author"], body, minutes=minutes)
    reports.report(post, actor=people["reader"], reason=reason, note="Please look")
    db.session.commit()
    queue.sync_reports()
    db.session.commit()
    return db.session.scalar(select(QueueItem).where(QueueItem.content_id == post.id,
                                                     QueueItem.content_type == "forum_post"))


def log_actions(item: QueueItem) -> list[str]:
    return [row.action for row in queue.item_history(item)]


def audit_of(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# --------------------------------------------------------------------------- the queue


def test_reports_are_grouped_per_item_and_synced_once(people):
    """Two reports of one post make one report item; syncing again makes none."""
    post = write(people["author"], "Nobody wants you here, honestly.")
    reports.report(post, actor=people["reader"], reason="unkind")
    reports.report(post, actor=people["reader2"], reason="worried")
    db.session.commit()
    assert queue.sync_reports() == 1
    assert queue.sync_reports() == 0
    item = db.session.scalar(select(QueueItem))
    assert (item.source, item.content_id, item.category, item.severity) == (
        "report", post.id, "self_harm", 3)
    entry = queue.entry_for(item, people["peer"])
    assert len(entry.reports) == 2 and entry.categories == {"self_harm", "harassment"}
    assert log_actions(item) == ["item.reported"]


def test_report_of_flagged_content_joins_the_screening_item(people):
    """Reported content that screening already queued stays one entry with its reports."""
    post = write(people["author"], "add me on snapchat, anyone?")
    flagged = db.session.scalar(select(QueueItem))
    assert flagged.source == "screening" and flagged.category == "personal_info"
    reports.report(post, actor=people["reader"], reason="spam")
    db.session.commit()
    assert queue.sync_reports() == 0
    [entry] = queue.queue_for(people["peer"])
    assert entry.item.id == flagged.id and [r.reason for r in entry.reports] == ["spam"]


def test_queue_orders_by_severity_then_age(people):
    """High severity first; within a severity the oldest first."""
    spam_old = reported(people, "Look at this nice thing I found.", reason="spam", minutes=0)
    unkind_old = reported(people, "Stop posting, nobody cares.", reason="unkind", minutes=5)
    unkind_new = reported(people, "You are all so boring honestly.", reason="unkind",
                          minutes=10)
    worried = reported(people, "I can't do this much longer.", reason="worried", minutes=20)
    order = [e.item.id for e in queue.queue_for(people["peer"])]
    assert order == [worried.id, unkind_old.id, unkind_new.id, spam_old.id]


def test_peers_never_see_clinician_only_items(people):
    """Risk content is queued for clinicians only: peers neither list nor open it."""
    services.create_post(people["author"], kind="post", body="I want to kill myself tonight")
    db.session.commit()
    item = db.session.scalar(select(QueueItem))
    assert item.clinician_only
    assert queue.queue_for(people["peer"]) == []
    with pytest.raises(queue.PermissionDenied):
        queue.entry_for(item, people["peer"])
    assert [e.item.id for e in queue.queue_for(people["clinician"])] == [item.id]


def test_opt_outs_hide_categories_from_that_moderator_only(people):
    """A peer who opts out of harassment no longer sees it; another peer still does."""
    item = reported(people)
    queue.set_opt_outs(people["peer"], ["harassment"], actor=people["peer"])
    db.session.commit()
    assert queue.opt_outs(people["peer"]) == {"harassment"}
    assert queue.queue_for(people["peer"]) == []
    with pytest.raises(queue.PermissionDenied):
        queue.entry_for(item, people["peer"])
    assert [e.item.id for e in queue.queue_for(people["peer2"])] == [item.id]
    assert audit_of("moderation.opt_outs_changed")[0].detail == {"categories": ["harassment"]}


def test_clinicians_opt_outs_never_hide_risk(people):
    """A clinician who opts out of self-harm still sees high-severity and risk items."""
    worried = reported(people, "I can't do this much longer.", reason="worried")
    queue.set_opt_outs(people["clinician"], ["self_harm", "spam"], actor=people["clinician"])
    spam = reported(people, "Buy my lovely candles", reason="spam", minutes=5)
    db.session.commit()
    ids = [e.item.id for e in queue.queue_for(people["clinician"])]
    assert worried.id in ids and spam.id not in ids


def test_opt_outs_are_checked(people):
    """Unknown categories, someone else's settings and participants are refused."""
    with pytest.raises(queue.QueueError):
        queue.set_opt_outs(people["peer"], ["gossip"], actor=people["peer"])
    with pytest.raises(queue.PermissionDenied):
        queue.set_opt_outs(people["peer"], ["spam"], actor=people["peer2"])
    with pytest.raises(queue.PermissionDenied):
        queue.set_opt_outs(people["author"], ["spam"], actor=people["author"])
    with pytest.raises(queue.PermissionDenied):
        queue.queue_for(people["author"])


# --------------------------------------------------------------------------- actions


def test_approve_releases_held_content(people):
    """Approving a held post publishes it and closes the item; both logs record it."""
    post = write(people["author"], "I live at 12 Acacia Avenue if anyone wants to visit")
    assert post.is_held
    item = db.session.scalar(select(QueueItem))
    queue.approve(item, actor=people["peer"], version=item.version)
    db.session.commit()
    assert not db.session.get(Post, post.id).is_held
    assert item.status == "approved" and item.handled_by_id == people["peer"].id
    assert log_actions(item)[-1] == "item.approved"
    [entry] = audit_of("moderation.item.approved")
    assert entry.detail == {"content_type": "forum_post", "content_id": post.id,
                            "released": True, "reports_closed": 0}
    assert audit_of("forum.post.approved")
    assert queue.queue_for(people["peer"]) == []


def test_approve_keeps_reported_content_and_closes_its_reports(people):
    item = reported(people)
    reports.report(db.session.get(Post, item.content_id), actor=people["reader2"],
                   reason="spam")
    db.session.commit()
    queue.approve(item, actor=people["peer"], version=item.version)
    db.session.commit()
    assert [r.outcome for r in db.session.scalars(select(Report))] == ["approved"] * 2
    assert audit_of("moderation.item.approved")[0].detail["reports_closed"] == 2
    assert db.session.get(Post, item.content_id).is_public


def test_hide_is_soft_and_reversible(people):
    """Hiding keeps the post (hidden_at) and closes reports; unhiding shows it again."""
    item = reported(people)
    queue.hide(item, actor=people["peer"], version=item.version, reason="unkind")
    db.session.commit()
    post = db.session.get(Post, item.content_id)
    assert post.hidden_at is not None and not post.is_public
    assert item.status == "hidden" and db.session.scalar(select(Report)).outcome == "hidden"
    assert [e.item.id for e in queue.recently_handled(people["peer"])] == [item.id]
    queue.unhide(item, actor=people["peer2"], version=item.version)
    db.session.commit()
    assert db.session.get(Post, item.content_id).is_public and item.status == "approved"
    assert log_actions(item)[-2:] == ["item.hidden", "item.unhidden"]
    assert audit_of("moderation.item.hidden")[0].detail["reason"] == "unkind"
    assert audit_of("forum.post.hidden") and audit_of("forum.post.unhidden")


def test_hide_needs_a_known_reason(people):
    item = reported(people)
    with pytest.raises(queue.QueueError) as caught:
        queue.hide(item, actor=people["peer"], version=item.version, reason="because")
    assert caught.value.field == "reason" and item.status == "open"


def test_redact_replaces_personal_details_and_keeps_the_earlier_version(people):
    """Phone numbers and e-mail become [removed] in text and HTML; the old version is an
    edit-history entry; the item stays open for approve or hide."""
    post = write(people["author"], "Lovely chat today, see you all next week")
    post.body = PHONE_POST  # as if it had slipped past screening (e.g. rules changed)
    post.body_html = f"<p>{PHONE_POST}</p>"
    reports.report(post, actor=people["reader"], reason="personal_info")
    db.session.commit()
    queue.sync_reports()
    item = db.session.scalar(select(QueueItem))
    version = item.version
    assert queue.redact(item, actor=people["peer"], version=version) == 2
    db.session.commit()
    post = db.session.get(Post, post.id)
    assert post.body == "Lovely chat today. Ring me on [removed] or mail [removed] x"
    assert "07700" not in post.body_html and "[removed]" in post.body_html
    edit = db.session.scalar(select(Edit))
    assert edit.body == PHONE_POST and edit.editor_id == people["peer"].id
    assert item.status == "open" and item.version > version
    assert audit_of("moderation.item.redacted")[0].detail["passages"] == 2
    assert "07700" not in str(audit_of("moderation.item.redacted")[0].detail)


def test_redact_refuses_when_nothing_is_found(people):
    """Nothing to remove: refused, nothing changes, no edit entry."""
    item = reported(people)
    version = item.version
    with pytest.raises(queue.QueueError):
        queue.redact(item, actor=people["peer"], version=version)
    assert item.version == version and db.session.scalar(select(Edit)) is None


def test_warn_sends_the_author_a_moderator_message(people):
    """The author gets an in-app message linking to the post; the log keeps the words,
    the audit log only the reason code."""
    item = reported(people)
    queue.warn(item, actor=people["peer"], version=item.version, reason="unkind",
               message="Please keep it kind here; everyone is finding their way.")
    db.session.commit()
    note = db.session.scalar(select(Notification).where(
        Notification.user_id == people["author"].id,
        Notification.kind == "moderator_message"))
    assert note.text.startswith("Please keep it kind")
    assert note.url == f"/forum/posts/{item.content_id}"
    step = queue.item_history(item)[-1]
    assert step.action == "item.warned" and step.note.startswith("Please keep")
    [entry] = audit_of("moderation.item.warned")
    assert "Please" not in str(entry.detail) and entry.detail["reason"] == "unkind"
    assert item.status == "open"


@pytest.mark.parametrize("message", ["   ", "x" * (queue.WARN_MAX + 1)])
def test_warn_refuses_empty_or_long_messages(people, message):
    item = reported(people)
    with pytest.raises(queue.QueueError) as caught:
        queue.warn(item, actor=people["peer"], version=item.version, reason="unkind",
                   message=message)
    assert caught.value.field == "message"


def test_suspend_stops_posting_until_it_ends(people):
    """A suspension is stored per participant, refuses writing while it lasts and ends by
    itself; the author is told."""
    item = reported(people)
    until = queue.suspend(item, actor=people["peer"], version=item.version, days=3,
                          reason="unkind")
    db.session.commit()
    author = people["author"]
    assert queue.suspended_until(author) == until == clock.utcnow() + timedelta(days=3)
    with pytest.raises(services.ForumError, match="paused your posting"):
        queue.refuse_if_suspended(author)
    queue.refuse_if_suspended(people["reader"])  # others are not affected
    assert db.session.scalar(select(Notification).where(
        Notification.user_id == author.id, Notification.kind == "moderator_message"))
    assert audit_of("moderation.item.suspended")[0].detail["days"] == 3
    clock.set_time(until + timedelta(seconds=1))
    assert queue.suspended_until(author) is None
    queue.refuse_if_suspended(author)


def test_forum_refuses_posts_while_suspended(people):
    item = reported(people)
    queue.suspend(item, actor=people["peer"], version=item.version, days=1, reason="spam")
    db.session.commit()
    with pytest.raises(services.ForumError, match="paused"):
        write(people["author"], "Hello again everyone", minutes=30)


@pytest.mark.parametrize("days", [0, 31])
def test_suspend_days_are_bounded(people, days):
    item = reported(people)
    with pytest.raises(queue.QueueError) as caught:
        queue.suspend(item, actor=people["peer"], version=item.version, days=days,
                      reason="spam")
    assert caught.value.field == "days" and queue.suspended_until(people["author"]) is None


def test_escalate_opens_a_risk_alert_and_hands_the_item_to_clinicians(people):
    """Escalating opens a risk alert (clinicians notified) and makes the item
    clinician-only: the peer no longer sees it, the clinician does."""
    item = reported(people, "I can't do this much longer.", reason="worried")
    alert = queue.escalate(item, actor=people["peer"], version=item.version)
    db.session.commit()
    assert db.session.scalar(select(RiskAlert)).id == alert.id and alert.item_id == item.id
    assert item.clinician_only and item.status == "open"
    assert queue.queue_for(people["peer"]) == []
    assert [e.item.id for e in queue.queue_for(people["clinician"])] == [item.id]
    assert db.session.scalar(select(Notification).where(
        Notification.user_id == people["clinician"].id, Notification.kind == "risk_alert"))
    assert "alert.opened" in log_actions(item) and log_actions(item)[-1] == "item.escalated"
    assert audit_of("moderation.item.escalated")[0].detail["alert_id"] == alert.id
    with pytest.raises(queue.QueueError):
        queue.escalate(item, actor=people["clinician"], version=item.version)


def test_participants_and_admins_cannot_act(people):
    item = reported(people)
    for outsider in (people["author"], make_staff(Role.ADMIN, "admin@example.org")):
        with pytest.raises(queue.PermissionDenied):
            queue.approve(item, actor=outsider, version=item.version)
    assert item.status == "open"


def test_stale_version_is_refused_naming_who_acted(people):
    """A moderator acting on what they saw before someone else acted changes nothing and
    learns who handled it and when."""
    item = reported(people)
    seen = item.version
    clock.set_time(NOW + timedelta(minutes=7))
    queue.hide(item, actor=people["peer"], version=seen, reason="unkind")
    db.session.commit()
    with pytest.raises(queue.AlreadyHandled) as caught:
        queue.approve(item, actor=people["peer2"], version=seen)
    db.session.rollback()
    assert "Already handled by Kit at 10:07 UTC" in str(caught.value)
    assert item.status == "hidden" and db.session.get(Post, item.content_id).hidden_at
    assert [r.action for r in db.session.scalars(select(ModerationLog).where(
        ModerationLog.actor_id == people["peer2"].id))] == []


def test_every_action_bumps_the_version(people):
    """Even actions that leave the item open (warn) make older forms stale."""
    item = reported(people)
    seen = item.version
    queue.warn(item, actor=people["peer"], version=seen, reason="unkind", message="Be kind")
    db.session.commit()
    with pytest.raises(queue.AlreadyHandled):
        queue.hide(item, actor=people["peer2"], version=seen, reason="unkind")


def test_private_reflection_items_can_only_be_reviewed_or_escalated(people):
    """A flagged journal reflection: clinicians mark it reviewed; forum actions refused."""
    verdict = screening.screen("I want to kill myself", channel="reflection",
                               author=people["author"])
    screening.screened(verdict, channel="reflection", content_id=5, author=people["author"])
    db.session.commit()
    item = db.session.scalar(select(QueueItem).where(QueueItem.channel == "reflection"))
    with pytest.raises(queue.QueueError):
        queue.hide(item, actor=people["clinician"], version=item.version, reason="safety")
    queue.approve(item, actor=people["clinician"], version=item.version)
    db.session.commit()
    assert item.status == "approved"
