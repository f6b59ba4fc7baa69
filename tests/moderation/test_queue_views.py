"""Review-queue pages: who reaches them, the list, the item page, actions through the
forms (with their version), the stale-version message, opt-outs, and the demo path of a
moderator hiding a reported post."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from core.roles import Role
from forum import reports, services
from forum.models import Post
from moderation import queue
from moderation.models import QueueItem
from tests.factories import make_participant, make_staff, make_study
from tests.pages import table_rows

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen_clock():
    clock.set_time(NOW)


def seed(app) -> dict[str, int]:
    """A guided-arm author and reader, a reported post, two peers, a clinician, an admin
    and a researcher. Returns ids."""
    with app.app_context():
        study = make_study()
        author = make_participant(study, "T-0001", name="Quiet Harbour", arm="guided").user
        reader = make_participant(study, "T-0002", name="Bright Meadow", arm="guided").user
        make_staff(Role.PEER_MODERATOR, "peer@example.org", name="Kit")
        make_staff(Role.PEER_MODERATOR, "peer2@example.org", name="Lee")
        make_staff(Role.CLINICIAN, "clin@example.org", name="Dr Patel")
        make_staff(Role.ADMIN, "admin@example.org")
        make_staff(Role.RESEARCHER, "research@example.org")
        post = services.create_post(author, kind="post",
                                    body="Stop posting here, nobody reads your posts.").item
        db.session.commit()
        return {"post": post.id, "author": author.id, "reader": reader.id}


def report_as_reader(app, post_id: int) -> None:
    with app.app_context():
        from core.models import User

        reader = db.session.scalar(select(User).where(User.display_name == "Bright Meadow"))
        reports.report(db.session.get(Post, post_id), actor=reader, reason="unkind",
                       note="This upset me")
        db.session.commit()


def item_id_of(app) -> int:
    with app.app_context():
        queue.sync_reports()
        db.session.commit()
        return db.session.scalar(select(QueueItem.id))


def version_of(page: str, action: str) -> str:
    found = re.search(rf'name="{action}-version" type="hidden" value="(\d+)"', page) or \
        re.search(rf'id="{action}-version" name="{action}-version" type="hidden" value="(\d+)"',
                  page)
    assert found, f"no {action} form on the page"
    return found.group(1)


@pytest.mark.parametrize("identifier", ["T-0001", "admin@example.org", "research@example.org"])
def test_only_moderators_reach_queue_pages(app, client, auth, identifier):
    """Participants, admins and researchers get 403 on every queue page and action."""
    ids = seed(app)
    report_as_reader(app, ids["post"])
    item_id = item_id_of(app)
    auth.login(identifier)
    assert client.get("/moderation/queue").status_code == 403
    assert client.get(f"/moderation/queue/{item_id}").status_code == 403
    assert client.post(f"/moderation/queue/{item_id}/hide",
                       data={"hide-version": "1", "hide-reason": "unkind"}).status_code == 403
    assert client.post("/moderation/queue/categories", data={}).status_code == 403
    with app.app_context():
        assert db.session.get(Post, ids["post"]).hidden_at is None


def test_demo_moderator_hides_a_reported_post(app, client, auth):
    """A participant reports a post in the forum; a peer moderator finds it at the top of
    the queue, sees why it was reported (not by whom), hides it; the reporter no longer
    sees it in the thread."""
    ids = seed(app)
    auth.login("T-0002")
    response = client.post(f"/forum/posts/{ids['post']}/report",
                           data={"reason": "unkind", "note": "This upset me"})
    assert response.status_code == 302
    auth.logout()

    auth.login("peer@example.org")
    page = client.get("/moderation/queue").get_data(as_text=True)
    assert "Review queue" in page
    rows = table_rows(page)
    assert rows[0][1:5] == ["Medium", "Harassment", "1 report", "Quiet Harbour"]
    link = re.search(r'href="(/moderation/queue/(\d+))"', page)
    item_page = client.get(link.group(1)).get_data(as_text=True)
    assert "nobody reads your posts" in item_page and "This upset me" in item_page
    assert "It is unkind, hurtful or bullying" in item_page
    assert "Bright Meadow" not in item_page  # reporters are not named to peers
    assert "Visible to participants" in item_page
    response = client.post(f"{link.group(1)}/hide", data={
        "hide-version": version_of(item_page, "hide"), "hide-reason": "unkind"},
        follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Hidden from participants" in page and "hidden by Kit" in page
    assert table_rows(client.get("/moderation/queue").get_data(as_text=True))[0] == [
        "Nothing is waiting for review."]
    auth.logout()

    auth.login("T-0002")
    thread = client.get(f"/forum/posts/{ids['post']}")
    assert thread.status_code == 404 or "nobody reads your posts" not in thread.get_data(
        as_text=True)


def test_clinicians_see_who_reported(app, client, auth):
    ids = seed(app)
    report_as_reader(app, ids["post"])
    item_id = item_id_of(app)
    auth.login("clin@example.org")
    page = client.get(f"/moderation/queue/{item_id}").get_data(as_text=True)
    assert "reported by Bright Meadow" in page


def test_stale_form_shows_who_handled_it_and_changes_nothing(app, client, auth):
    """Two moderators open the item; Kit hides it; Lee's approve (the old version) is
    refused with 'Already handled by Kit at ...' and the post stays hidden."""
    ids = seed(app)
    report_as_reader(app, ids["post"])
    item_id = item_id_of(app)
    url = f"/moderation/queue/{item_id}"
    auth.login("peer2@example.org")
    lee_version = version_of(client.get(url).get_data(as_text=True), "approve")
    auth.logout()
    auth.login("peer@example.org")
    clock.set_time(NOW + timedelta(minutes=4))
    kit_version = version_of(client.get(url).get_data(as_text=True), "hide")
    client.post(f"{url}/hide", data={"hide-version": kit_version, "hide-reason": "spam"})
    auth.logout()
    auth.login("peer2@example.org")
    page = client.post(f"{url}/approve", data={"approve-version": lee_version},
                       follow_redirects=True).get_data(as_text=True)
    assert "Already handled by Kit at 10:04 UTC" in page
    with app.app_context():
        item = db.session.get(QueueItem, item_id)
        assert item.status == "hidden" and db.session.get(Post, ids["post"]).hidden_at


def test_form_errors_are_shown_on_the_item_page(app, client, auth):
    """A hide without a reason, a redaction with nothing to remove: 400, nothing changes."""
    ids = seed(app)
    report_as_reader(app, ids["post"])
    item_id = item_id_of(app)
    auth.login("peer@example.org")
    response = client.post(f"/moderation/queue/{item_id}/hide", data={"hide-version": "1"})
    assert response.status_code == 400 and "Choose why." in response.get_data(as_text=True)
    response = client.post(f"/moderation/queue/{item_id}/redact",
                           data={"redact-version": "1"})
    assert response.status_code == 400
    assert "No phone number, e-mail or address" in response.get_data(as_text=True)
    response = client.post(f"/moderation/queue/{item_id}/suspend",
                           data={"suspend-version": "1", "suspend-days": "99",
                                 "suspend-reason": "spam"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(QueueItem, item_id).version == 1
        assert queue.suspended_until(db.session.get(Post, ids["post"]).author) is None


def test_warn_and_suspend_through_the_pages(app, client, auth):
    ids = seed(app)
    report_as_reader(app, ids["post"])
    item_id = item_id_of(app)
    url = f"/moderation/queue/{item_id}"
    auth.login("peer@example.org")
    client.post(f"{url}/warn", data={"warn-version": "1", "warn-reason": "unkind",
                                     "warn-message": "Please be kind to others here."})
    page = client.post(f"{url}/suspend", data={"suspend-version": "2", "suspend-days": "2",
                                               "suspend-reason": "unkind"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Posting suspended." in page and "Suspended until" in page
    assert "“Please be kind to others here.”" in page
    auth.logout()
    auth.login("T-0001")
    notes = client.get("/notifications").get_data(as_text=True)
    assert "Please be kind to others here." in notes and "paused your posting" in notes


def test_peer_escalation_hands_the_item_to_clinicians(app, client, auth):
    ids = seed(app)
    report_as_reader(app, ids["post"])
    item_id = item_id_of(app)
    auth.login("peer@example.org")
    response = client.post(f"/moderation/queue/{item_id}/escalate",
                           data={"escalate-version": "1"})
    assert response.headers["Location"].endswith("/moderation/queue")
    assert client.get(f"/moderation/queue/{item_id}").status_code == 403
    auth.logout()
    auth.login("clin@example.org")
    page = client.get(f"/moderation/queue/{item_id}").get_data(as_text=True)
    assert "(clinicians only)" in page and "/moderation/alerts/" in page


def test_opt_out_through_the_page(app, client, auth):
    ids = seed(app)
    report_as_reader(app, ids["post"])
    item_id_of(app)
    auth.login("peer@example.org")
    client.post("/moderation/queue/categories", data={"categories": ["harassment"]})
    page = client.get("/moderation/queue").get_data(as_text=True)
    assert "You have chosen not to see: Harassment." in page
    assert table_rows(page)[0] == ["Nothing is waiting for review."]


def test_queue_is_in_the_moderators_navigation(app, client, auth):
    seed(app)
    auth.login("peer@example.org")
    assert 'href="/moderation/queue"' in client.get("/moderation/").get_data(as_text=True)
    auth.logout()
    auth.login("admin@example.org")
    assert 'href="/moderation/queue"' not in client.get("/").get_data(as_text=True)
