"""``core.pagecache``: a repeated view of an unchanged page is served from memory, and any
write through the ORM that the page may show (the viewer's own, another participant's, a
moderator's, the scheduler's) makes it again at once. Only time-driven changes wait, and
never longer than ``PAGE_CACHE_SECONDS``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from core import clock
from core.extensions import db
from core.models import Participant, User
from core.pagecache import PageCache
from core.roles import Role
from forum import services as forum
from forum.models import Post
from moderation import messages
from modules import mood
from tests.factories import PASSWORD, make_consent, make_participant, make_staff, make_study
from tests.sql_count import counting


@pytest.fixture
def people(app) -> dict[str, Any]:
    with app.app_context():
        study = make_study()
        make_consent()
        clinician = make_staff(Role.CLINICIAN, "clin@example.org")
        me = make_participant(study, "T-0001", arm="guided", moderator=clinician)
        other = make_participant(study, "T-0002", name="Bright Lantern", arm="guided",
                                 moderator=clinician)
        db.session.commit()
        return {"me": me.id, "other": other.id, "clinician": clinician.id}


def visit(app, client, path: str) -> tuple[str, int]:
    """The page and how many statements it sent."""
    with counting(app) as sent:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True), len(sent)


def served_from_cache(app, client, path: str, *, statements: int = 1) -> str:
    """Ask twice; the second answer must be the cached copy (only the session's one
    statement, and the caseload's version), and the same page."""
    first, _ = visit(app, client, path)
    second, sent = visit(app, client, path)
    assert sent == statements, f"{path} was made again ({sent} statements)"
    assert second == first
    return second


def person(number: int) -> Participant:
    return db.session.get(Participant, number)


@pytest.mark.parametrize("path", ["/modules/today", "/forum/"])
def test_a_repeated_participant_page_is_served_from_memory(app, client, auth, people, path):
    auth.login("T-0001")
    served_from_cache(app, client, path)


def test_the_viewers_own_write_shows_at_once(app, client, auth, people):
    auth.login("T-0001")
    page = served_from_cache(app, client, "/modules/today")
    assert "Today you said" not in page
    response = client.post("/modules/mood", data={"score": "4", "note": "walked by the sea"})
    assert response.status_code == 302
    page, statements = visit(app, client, "/modules/today")
    assert "Today you said" in page and "walked by the sea" in page
    assert statements > 1
    # that view showed "Your mood is saved." and so was not kept; the next one is checked
    # against the moved version, not served from the copy made before the mood
    page = served_from_cache(app, client, "/modules/today")
    assert "walked by the sea" in page and "Your mood is saved." not in page


def test_a_write_elsewhere_shows_on_the_next_view(app, client, auth, people):
    """The mood is logged by another process (another session here, as a second worker
    or the scheduler would): the page is checked against the database, not the process."""
    auth.login("T-0001")
    served_from_cache(app, client, "/modules/today")
    with app.app_context():
        mood.log_mood(person(people["me"]), 2, "a grey day")
        db.session.commit()
    page, _ = visit(app, client, "/modules/today")
    assert "a grey day" in page


def test_a_moderator_message_shows_in_the_navigation_of_a_cached_page(app, client, auth,
                                                                        people):
    auth.login("T-0001")
    page = served_from_cache(app, client, "/modules/today")
    assert "unread" not in page.split("</nav>")[0]
    with app.app_context():
        messages.send(person(people["me"]), "How was the walk?",
                      actor=db.session.get(User, people["clinician"]))
        db.session.commit()
    page, _ = visit(app, client, "/modules/today")
    assert "unread" in page.split("</nav>")[0]


def test_another_participants_post_and_a_moderators_hiding_show_in_the_feed(
        app, client, auth, people):
    auth.login("T-0001")
    served_from_cache(app, client, "/forum/")
    with app.app_context():
        other = db.session.get(User, person(people["other"]).user_id)
        written = forum.create_post(other, kind="post", title="Sunday walk",
                                    body="Anyone for the park?")
        db.session.commit()
        post_id = written.item.id
    assert "Anyone for the park?" in visit(app, client, "/forum/")[0]
    served_from_cache(app, client, "/forum/")
    with app.app_context():
        forum.hide(db.session.get(Post, post_id), actor=db.session.get(User, people["clinician"]))
        db.session.commit()
    assert "Anyone for the park?" not in visit(app, client, "/forum/")[0]


def test_a_renamed_author_shows_in_the_feed(app, client, auth, people):
    with app.app_context():
        other = db.session.get(User, person(people["other"]).user_id)
        forum.create_post(other, kind="post", title="Hello", body="Hello all")
        db.session.commit()
    auth.login("T-0001")
    assert "Bright Lantern" in served_from_cache(app, client, "/forum/")
    with app.app_context():
        other = db.session.get(User, person(people["other"]).user_id)
        other.display_name = "Calm River"
        db.session.commit()
    page, _ = visit(app, client, "/forum/")
    assert "Calm River" in page and "Bright Lantern" not in page


def test_the_caseload_changes_with_its_people(app, client, auth, people):
    """A low mood, a new person and a person moved to another moderator: each shows on
    the clinician's next view of a cached caseload."""
    auth.login("clin@example.org")
    page = served_from_cache(app, client, "/moderation/", statements=2)
    assert "T-0001" in page and "T-0002" in page
    with app.app_context():
        mood.log_mood(person(people["other"]), 1, None)
        db.session.commit()
    changed, _ = visit(app, client, "/moderation/")
    assert changed != page
    served_from_cache(app, client, "/moderation/", statements=2)
    with app.app_context():
        peer = make_staff(Role.PEER_MODERATOR, "peer@example.org")
        person(people["other"]).moderator_id = peer.id
        make_participant(None, "T-0003", name="New Dawn",
                         moderator=db.session.get(User, people["clinician"]))
        db.session.commit()
    page, _ = visit(app, client, "/moderation/")
    assert "T-0003" in page and "T-0002" not in page


def test_sessions_do_not_share_pages(app, people):
    """Each session has its own copy (its own CSRF tokens); signing in again starts
    afresh."""
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        client.post("/login", data={"identifier": "T-0001", "password": PASSWORD})
    served_from_cache(app, first, "/forum/")
    _, statements = visit(app, second, "/forum/")
    assert statements > 1


def test_a_flashed_message_is_shown_once_and_never_kept(app, client, auth, people):
    auth.login("T-0001")
    client.post("/modules/mood", data={"score": "3", "note": ""})
    page, _ = visit(app, client, "/modules/today")  # shows "Your mood is saved."
    assert "Your mood is saved." in page
    page, statements = visit(app, client, "/modules/today")
    assert "Your mood is saved." not in page
    assert statements > 1, "the page with the message must not have been kept"


def test_a_form_with_errors_is_never_served_from_memory(app, client, auth, people):
    auth.login("T-0001")
    served_from_cache(app, client, "/modules/today")
    response = client.post("/modules/mood", data={"score": "9", "note": "kept text"})
    assert response.status_code == 200
    assert "kept text" in response.get_data(as_text=True)


def test_time_driven_changes_wait_at_most_the_time_limit(app, client, auth, people):
    """A write behind the ORM's back (a bare SQL statement) is not seen until the copy
    is older than ``PAGE_CACHE_SECONDS``; so is anything only time changes."""
    app.config["PAGE_CACHE_SECONDS"] = 30
    start = clock.utcnow()
    clock.set_time(start)
    auth.login("T-0001")
    served_from_cache(app, client, "/forum/")
    with app.app_context():
        other = db.session.get(User, person(people["other"]).user_id)
        forum.create_post(other, kind="post", title="", body="Behind the back")
        db.session.commit()
        with db.engine.begin() as bare:  # not through the session: core.changes cannot see it
            bare.execute(text("UPDATE change_counter SET value = value - 1 "
                              "WHERE name = 'forum'"))
    clock.set_time(start + timedelta(seconds=29))
    assert "Behind the back" not in visit(app, client, "/forum/")[0]
    clock.set_time(start + timedelta(seconds=31))
    assert "Behind the back" in visit(app, client, "/forum/")[0]


def test_no_cache_when_turned_off(app, client, auth, people):
    app.config["PAGE_CACHE_SECONDS"] = 0
    auth.login("T-0001")
    visit(app, client, "/forum/")
    _, statements = visit(app, client, "/forum/")
    assert statements > 1


def test_the_cache_keeps_to_its_size_least_recently_used_first_out():
    cache = PageCache(seconds=60, max_bytes=10)
    cache.put("a", "aaaa")
    cache.put("b", "bbbb")
    assert cache.get("a") == "aaaa"  # now b is the least recently used
    cache.put("c", "cccc")
    assert cache.get("b") is None and cache.get("a") == "aaaa" and cache.get("c") == "cccc"
    cache.put("huge", "x" * 11)
    assert cache.get("huge") is None and len(cache) == 2
    cache.put("a", "a")
    assert cache.get("a") == "a"


def test_a_participant_page_of_someone_not_allowed_is_refused_before_the_cache(
        app, client, auth, people):
    """Access is checked on every request: a withdrawn arm feature is refused at once."""
    auth.login("T-0001")
    served_from_cache(app, client, "/forum/")
    with app.app_context():
        me = person(people["me"])
        me.arm_id = None
        db.session.commit()
    response = client.get("/forum/")
    assert response.status_code in (302, 403)
