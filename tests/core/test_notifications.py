"""In-app notifications: notify and its dedupe, the unread count in the navigation,
the list page, opening (mark read, follow only same-site links), mark all read,
authorisation and the purge of old read notifications."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from core import clock, notifications
from core.extensions import db
from core.models import User
from core.notifications import Notification, NotificationError, notify, unread_count
from core.roles import Role
from outcomes.models import Study
from tests.conftest import AuthActions
from tests.factories import make_participant, make_staff
from tests.sql_count import counting

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _user(participant_code: str) -> User:
    return db.session.scalar(select(User).join(User.participant)
                             .where(User.participant.has(study_code=participant_code)))


@pytest.fixture
def people(app):
    """Two participants (T-0001 "Quiet Harbour", T-0002 "Still Meadow") and a moderator;
    returns their user ids."""
    with app.app_context():
        me = make_participant(code="T-0001")
        other = make_participant(code="T-0002", name="Still Meadow")
        third = make_participant(code="T-0003", name="Warm Lantern")
        mod = make_staff(Role.PEER_MODERATOR, name="Mod Robin")
        return {"me": me.user_id, "other": other.user_id, "third": third.user_id,
                "mod": mod.id}


def _rows(user_id: int) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user_id)
                                   .order_by(Notification.id)))


# --------------------------------------------------------------------------- notify


def test_notify_stores_plain_text_for_the_user(app, people):
    """It stores one unread notification with the kind, text, link and actor."""
    with app.app_context():
        me, other = db.session.get(User, people["me"]), db.session.get(User, people["other"])
        row = notify(me, kind="reply", text="Still Meadow replied to your post",
                     url="/forum/posts/7#comment-3", actor=other)
        db.session.commit()
        assert row is not None
        [stored] = _rows(me.id)
        assert (stored.kind, stored.text, stored.url, stored.actor_id, stored.count) == (
            "reply", "Still Meadow replied to your post", "/forum/posts/7#comment-3", other.id, 1)
        assert stored.read_at is None
        assert stored.label == notifications.KINDS["reply"]
        assert unread_count(me) == 1


def test_every_contract_kind_has_a_label(app):
    """It knows the kinds other packages call with, each with a plain-language label."""
    for kind in ("reply", "reaction", "helpful", "moderator_message", "assessment_due",
                 "system"):
        assert notifications.KINDS[kind].strip()
        assert "{count}" in notifications.SUMMARIES[kind]


def test_nobody_is_told_about_their_own_act(app, people):
    """It returns None and writes nothing when the actor is the user."""
    with app.app_context():
        me = db.session.get(User, people["me"])
        assert notify(me, kind="reaction", text="You reacted", actor=me,
                      dedupe_key="reaction:post:1") is None
        assert _rows(me.id) == []


def test_disabled_accounts_get_nothing(app, people):
    with app.app_context():
        me = db.session.get(User, people["me"])
        me.is_enabled = False
        assert notify(me, kind="system", text="Hello") is None
        assert _rows(me.id) == []


@pytest.mark.parametrize("bad", [
    {"kind": "no-such-kind", "text": "x"},
    {"kind": "system", "text": "   "},
    {"kind": "system", "text": "x", "url": "https://evil.example/"},
    {"kind": "system", "text": "x", "url": "//evil.example/path"},
    {"kind": "system", "text": "x", "url": "/\\evil.example"},
    {"kind": "system", "text": "x", "url": "javascript:alert(1)"},
    {"kind": "system", "text": "x", "url": "forum/posts/1"},
    {"kind": "system", "text": "x", "url": "/forum/\tposts"},
    {"kind": "system", "text": "x", "url": "/" + "a" * 600},
])
def test_notify_refuses_bad_input(app, people, bad):
    """It raises for an unknown kind, empty text or a link that is not a same-site path."""
    with app.app_context():
        me = db.session.get(User, people["me"])
        with pytest.raises(NotificationError):
            notify(me, **bad)
        assert _rows(me.id) == []


def test_long_text_is_cut_and_whitespace_folded(app, people):
    with app.app_context():
        me = db.session.get(User, people["me"])
        row = notify(me, kind="system", text="word\n\n  " * 200)
        assert len(row.text) == notifications.TEXT_MAX
        assert row.text.endswith("…") and "\n" not in row.text


# --------------------------------------------------------------------------- dedupe


def test_reactions_on_one_post_collapse_into_one_notification(app, people):
    """It updates one unread notification per post and counts distinct people."""
    clock.set_time(T0)
    with app.app_context():
        me = db.session.get(User, people["me"])
        other, third = db.session.get(User, people["other"]), db.session.get(User, people["third"])
        mod = db.session.get(User, people["mod"])
        first = notify(me, kind="reaction", text="Still Meadow reacted to your post",
                       url="/forum/posts/1", actor=other, dedupe_key="reaction:post:1")
        clock.advance(timedelta(hours=1))
        notify(me, kind="reaction", text="Warm Lantern reacted to your post",
               url="/forum/posts/1", actor=third, dedupe_key="reaction:post:1")
        # the same person reacting again (another reaction, or toggled) counts once
        notify(me, kind="reaction", text="Still Meadow reacted to your post",
               url="/forum/posts/1", actor=other, dedupe_key="reaction:post:1")
        clock.advance(timedelta(hours=1))
        again = notify(me, kind="reaction", text="Mod Robin reacted to your post",
                       url="/forum/posts/1", actor=mod, dedupe_key="reaction:post:1")
        db.session.commit()
        assert again.id == first.id
        [row] = _rows(me.id)
        assert row.count == 3
        assert row.text == "3 people reacted to your post"
        assert row.updated_at == T0 + timedelta(hours=2)
        assert row.created_at == T0
        assert unread_count(me) == 1


def test_other_posts_and_kinds_are_not_collapsed(app, people):
    clock.set_time(T0)
    with app.app_context():
        me, other = db.session.get(User, people["me"]), db.session.get(User, people["other"])
        notify(me, kind="reaction", text="a", actor=other, dedupe_key="reaction:post:1")
        notify(me, kind="reaction", text="b", actor=other, dedupe_key="reaction:post:2")
        notify(me, kind="reply", text="c", actor=other, dedupe_key="reaction:post:1")
        notify(me, kind="reply", text="d", actor=other)
        notify(me, kind="reply", text="e", actor=other)
        assert [r.text for r in _rows(me.id)] == ["a", "b", "c", "d", "e"]
        assert unread_count(me) == 5


def test_a_read_or_day_old_notification_starts_a_new_one(app, people):
    """Once read, or after a day, a new act gets its own notification."""
    clock.set_time(T0)
    with app.app_context():
        me, other = db.session.get(User, people["me"]), db.session.get(User, people["other"])
        third = db.session.get(User, people["third"])
        first = notify(me, kind="reaction", text="x", actor=other, dedupe_key="reaction:post:1")
        notifications.open_notification(first.id, user=me)
        second = notify(me, kind="reaction", text="y", actor=third, dedupe_key="reaction:post:1")
        assert second.id != first.id and second.count == 1 and second.text == "y"
        clock.advance(notifications.DEDUPE_WINDOW + timedelta(minutes=1))
        third_row = notify(me, kind="reaction", text="z", actor=other,
                           dedupe_key="reaction:post:1")
        assert third_row.id not in (first.id, second.id)
        assert len(_rows(me.id)) == 3


def test_custom_summary_and_actorless_repeats(app, people):
    """A caller's summary replaces the default; acts without an actor each count."""
    with app.app_context():
        me = db.session.get(User, people["me"])
        for _ in range(3):
            notify(me, kind="assessment_due", text="Your 3-month questionnaire is ready",
                   url="/outcomes/x", dedupe_key="due:3m",
                   summary="{count} reminders about your questionnaire")
        [row] = _rows(me.id)
        assert (row.count, row.text) == (3, "3 reminders about your questionnaire")


def test_unread_count_is_per_user(app, people):
    with app.app_context():
        me, other = db.session.get(User, people["me"]), db.session.get(User, people["other"])
        notify(me, kind="system", text="one")
        notify(me, kind="system", text="two")
        notify(other, kind="system", text="theirs")
        mine = _rows(me.id)
        notifications.open_notification(mine[0].id, user=me)
        assert unread_count(me) == 1
        assert unread_count(other) == 1
        assert notifications.mark_all_read(me) == 1
        assert unread_count(me) == 0 and unread_count(other) == 1


def test_register_kind_adds_a_kind(app, people):
    with app.app_context():
        me = db.session.get(User, people["me"])
        notifications.register_kind("test_kind", "A test kind")
        try:
            assert notify(me, kind="test_kind", text="x").label == "A test kind"
        finally:
            notifications.KINDS.pop("test_kind")
            notifications.SUMMARIES.pop("test_kind")


# --------------------------------------------------------------------------- pages


def _notify(app, user_id: int, **kwargs) -> int:
    with app.app_context():
        row = notify(db.session.get(User, user_id), **kwargs)
        db.session.commit()
        return row.id


def test_navigation_shows_the_unread_count(app, client, auth, people):
    """It shows "Notifications (2 unread)" to its owner, and no count when none are unread."""
    auth.login("T-0001")
    page = client.get("/account").get_data(as_text=True)
    assert re.search(r">Notifications</a>", page)
    _notify(app, people["me"], kind="system", text="one")
    _notify(app, people["me"], kind="reply", text="two")
    _notify(app, people["other"], kind="reply", text="not mine")
    page = client.get("/account").get_data(as_text=True)
    assert ('Notifications <span class="nav-count">(2<span class="visually-hidden"> '
            'unread</span>)</span>') in page


def _notification_queries(statements: list[str]) -> list[str]:
    return [s for s in statements if re.search(r"\bnotification\b", s)]


def test_one_query_for_the_count_whatever_the_number(app, client, auth, people):
    """A page asks for the unread count once, with the same number of queries for 0 or
    30 notifications; signed-out pages do not ask at all."""
    auth.login("T-0001")
    client.get("/account")
    with counting(app) as before:
        assert client.get("/account").status_code == 200
    for n in range(30):
        _notify(app, people["me"], kind="system", text=f"n{n}")
    with counting(app) as after:
        page = client.get("/account").get_data(as_text=True)
    assert "(30<span" in page
    assert len(before) == len(after)
    assert len(_notification_queries(after)) == 1
    auth.logout()
    with counting(app) as anonymous:
        assert client.get("/login").status_code == 200
        assert client.get("/help").status_code == 200
    assert _notification_queries(anonymous) == []


def test_list_page_shows_only_own_notifications_newest_first(app, client, auth, people):
    clock.set_time(T0)
    _notify(app, people["me"], kind="reply", text="older <b>news</b>", url="/forum/")
    clock.advance(timedelta(minutes=5))
    _notify(app, people["me"], kind="moderator_message", text="newer news")
    _notify(app, people["other"], kind="system", text="someone else's secret")
    auth.login("T-0001")
    page = client.get("/notifications").get_data(as_text=True)
    assert page.index("newer news") < page.index("older &lt;b&gt;news&lt;/b&gt;")
    assert "<b>news" not in page
    assert "someone else" not in page
    assert notifications.KINDS["moderator_message"] in page
    assert page.count(">New</span>") == 2
    assert "You have 2 unread notifications." in page
    assert "Mark all as read" in page


def test_empty_list_page(app, client, auth, people):
    auth.login("T-0001")
    page = client.get("/notifications").get_data(as_text=True)
    assert "You are all caught up." in page and "Nothing here yet" in page
    assert "Mark all as read" not in page


def test_opening_marks_read_and_follows_a_same_site_link(app, client, auth, people):
    nid = _notify(app, people["me"], kind="reply", text="reply", url="/forum/posts/3?x=1#c2")
    auth.login("T-0001")
    assert client.get(f"/notifications/{nid}/open").status_code == 405
    response = client.post(f"/notifications/{nid}/open")
    assert response.status_code == 302
    assert response.headers["Location"] == "/forum/posts/3?x=1#c2"
    with app.app_context():
        assert db.session.get(Notification, nid).read_at is not None
        assert unread_count(db.session.get(User, people["me"])) == 0


@pytest.mark.parametrize("stored", ["https://evil.example/", "//evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", None])
def test_opening_never_leaves_the_site(app, client, auth, people, stored):
    """A link that is not a same-site path (written around notify) lands on the list."""
    nid = _notify(app, people["me"], kind="system", text="x")
    with app.app_context():
        db.session.get(Notification, nid).url = stored
        db.session.commit()
    auth.login("T-0001")
    response = client.post(f"/notifications/{nid}/open")
    assert response.status_code == 302
    assert response.headers["Location"] == "/notifications"
    with app.app_context():
        assert db.session.get(Notification, nid).read_at is not None


def test_nobody_opens_another_persons_notification(app, client, auth, people):
    """Another participant's notification is 404 for me, and stays unread."""
    theirs = _notify(app, people["other"], kind="reply", text="theirs", url="/forum/")
    auth.login("T-0001")
    assert client.post(f"/notifications/{theirs}/open").status_code == 404
    assert client.post("/notifications/999999/open").status_code == 404
    with app.app_context():
        assert db.session.get(Notification, theirs).read_at is None


def test_staff_receive_and_read_their_own(app, client, auth, people):
    """A moderator gets alerts too (e.g. a participant texted STOP)."""
    nid = _notify(app, people["mod"], kind="alert", text="T-0001 stopped text messages",
                  url="/moderation/participants/1")
    _notify(app, people["me"], kind="system", text="participant only")
    auth.login("peer_moderator@example.org")
    page = client.get("/notifications").get_data(as_text=True)
    assert "T-0001 stopped text messages" in page and "participant only" not in page
    assert client.post(f"/notifications/{nid}/open").headers["Location"] == (
        "/moderation/participants/1")


def test_mark_all_read(app, client, auth, people):
    for n in range(3):
        _notify(app, people["me"], kind="system", text=f"n{n}")
    theirs = _notify(app, people["other"], kind="system", text="theirs")
    auth.login("T-0001")
    response = client.post("/notifications/read-all", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "All your notifications are marked as read." in page
    assert "You are all caught up." in page
    with app.app_context():
        assert unread_count(db.session.get(User, people["me"])) == 0
        assert db.session.get(Notification, theirs).read_at is None


def test_pages_of_twenty(app, client, auth, people):
    clock.set_time(T0)
    with app.app_context():
        me = db.session.get(User, people["me"])
        for n in range(25):
            clock.advance(timedelta(minutes=1))
            notify(me, kind="system", text=f"note number {n:02d}")
        db.session.commit()
    auth.login("T-0001")
    first = client.get("/notifications").get_data(as_text=True)
    assert "note number 24" in first and "note number 05" in first
    assert "note number 04" not in first
    assert 'href="/notifications?page=2"' in first and "Newer" not in first
    second = client.get("/notifications?page=2").get_data(as_text=True)
    assert "note number 04" in second and "note number 00" in second
    assert "note number 05" not in second and "Older" not in second
    assert client.get("/notifications?page=junk").status_code == 200
    assert client.get("/notifications?page=9").headers["Location"] == "/notifications"


def test_signed_out_visitors_are_sent_to_sign_in(app, client, people):
    nid = _notify(app, people["me"], kind="system", text="x")
    assert client.get("/notifications").status_code == 302
    assert client.post(f"/notifications/{nid}/open").status_code == 302
    with app.app_context():
        assert db.session.get(Notification, nid).read_at is None


# --------------------------------------------------------------------------- purge


def test_the_purge_job_deletes_old_read_notifications(app, runner, people):
    """Read more than 180 days ago: gone. Read recently, or unread however old: kept."""
    clock.set_time(T0)
    with app.app_context():
        me = db.session.get(User, people["me"])
        old_read = notify(me, kind="system", text="old read")
        old_unread = notify(me, kind="system", text="old unread")
        recent = notify(me, kind="system", text="recent read")
        notifications.open_notification(old_read.id, user=me)
        db.session.commit()
        ids = old_read.id, old_unread.id, recent.id
    clock.set_time(T0 + timedelta(days=170))
    with app.app_context():
        notifications.open_notification(ids[2], user=db.session.get(User, people["me"]))
        db.session.commit()
    clock.set_time(T0 + timedelta(days=notifications.KEEP_READ_DAYS + 1))
    result = runner.invoke(args=["scheduler", "run-job", "core.notifications_purge"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"notifications": 1}
    with app.app_context():
        left = set(db.session.scalars(select(Notification.id)))
        assert left == {ids[1], ids[2]}
        assert db.session.scalar(select(func.count(Notification.id))) == 2


# --------------------------------------------------------------------------- as people use it


def test_a_reply_and_reactions_in_the_forum_reach_the_author(app, people):
    """Tried as people would: T-0001 posts, two others react and one comments; T-0001 sees
    "Notifications (2 unread)", reads them and opening one lands on the post."""
    with app.app_context():
        study = db.session.scalar(select(Study))
        guided = next(arm for arm in study.arms if arm.code == "guided")
        for user_id in (people["me"], people["other"], people["third"]):
            user = db.session.get(User, user_id)
            user.participant.arm_id = guided.id
            user.created_at = T0 - timedelta(days=30)  # past the new-account rate limits
        db.session.commit()
    clients = {}
    for code in ("T-0001", "T-0002", "T-0003"):
        clients[code] = app.test_client()
        assert _sign_in(app, clients[code], code)
    me = clients["T-0001"]
    response = me.post("/forum/new", data={"kind": "post", "body": "I went for a walk today."})
    assert response.status_code == 302
    post_path = urlsplit(response.headers["Location"]).path
    for code in ("T-0002", "T-0003"):
        assert clients[code].post(f"{post_path}/react", data={"kind": "me_too"}).status_code \
            == 302
    assert clients["T-0002"].post(f"{post_path}/comments",
                                  data={"body": "Well done, that is lovely."}).status_code == 302
    page = me.get("/notifications").get_data(as_text=True)
    assert "(2<span class=\"visually-hidden\"> unread</span>)" in page
    assert "2 people reacted to your post" in page
    assert "Still Meadow commented on your post." in page
    ids = re.findall(r'action="/notifications/(\d+)/open"', page)
    assert len(ids) == 2
    response = me.post(f"/notifications/{ids[0]}/open")
    assert urlsplit(response.headers["Location"]).path == post_path
    page = me.get("/notifications").get_data(as_text=True)
    assert "(1<span class=\"visually-hidden\"> unread</span>)" in page


def _sign_in(app, client, code: str) -> bool:
    response = AuthActions(client, app).login(code)
    return response.status_code == 302 and "/login" not in response.headers["Location"]


def test_no_payload_in_a_notification_becomes_markup(app, client, auth, people):
    """Texts are plain: every payload of the XSS corpus shows as text on the list."""
    from tests.xss_payloads import PAYLOADS, assert_no_active_markup

    with app.app_context():
        me = db.session.get(User, people["me"])
        ids = [notify(me, kind="reply", text=payload, url="/forum/").id for payload, _ in PAYLOADS]
        db.session.commit()
    auth.login("T-0001")
    pages = range(1, len(ids) // notifications.PER_PAGE + 2)
    shown = {n: client.get(f"/notifications?page={n}").get_data(as_text=True) for n in pages}
    with app.app_context():
        for n, nid in enumerate(ids):
            db.session.get(Notification, nid).text = f"harmless {n}"
        db.session.commit()
    for n in pages:
        assert_no_active_markup(shown[n], baseline=client.get(f"/notifications?page={n}")
                                .get_data(as_text=True))
    assert str(escape(PAYLOADS[-1][0])) in shown[1]
