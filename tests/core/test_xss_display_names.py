"""Display names are typed by participants and shown to everyone: the XSS corpus
(``tests/xss_payloads.py``) typed on the account page, and (defence in depth) stored
straight into the database, never reaches any page as active markup.

Pages checked: the account page (a refused name is typed back into its field), the forum
feed, threads, profiles and notifications (names in "X replied to your post"), the
moderator caseload and participant page, and the researcher participants list and
participant page (where staff display names show).
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import pytest
from markupsafe import escape
from sqlalchemy import select

from core.extensions import db
from core.models import Participant, User
from core.names import display_key
from core.roles import Role
from tests.conftest import AuthActions
from tests.factories import make_participant, make_staff, make_study
from tests.xss_payloads import PAYLOADS, active_markup, assert_no_active_markup

PROFILE = {"timezone": "Europe/London", "wake_start": "09:00", "wake_end": "20:00"}


# --------------------------------------------------------------------------- the corpus


def test_corpus_is_large_and_covers_every_family():
    payloads = [p for p, _ in PAYLOADS]
    assert len(payloads) >= 40
    assert len(set(payloads)) == len(payloads)
    assert all(comment.strip() for _, comment in PAYLOADS)
    text = "\n".join(payloads).lower()
    for family in ("<script", "onerror=", "javascript:", "&#106;", "<svg", "<math", "<iframe",
                   "data:", "expression(", "style=", "&lt;", "](javascript:", "![x](",
                   "<javascript:", "[evil]:", "vbscript:", "<!--", "<noscript>"):
        assert family in text, family


@pytest.mark.parametrize("payload", [p for p, _ in PAYLOADS])
def test_checker_passes_escaped_text(payload):
    """Escaped, every payload is harmless text, in content and in attribute values."""
    escaped = html.escape(payload)
    assert_no_active_markup(f'<p>{escaped}</p><input value="{escaped}" title="{escaped}">')


@pytest.mark.parametrize("unsafe", [
    "<script>alert(1)</script>",
    "<p>hi <img src=x onerror=alert(1)></p>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="  JaVa&#x09;ScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<img src="data:image/svg+xml;base64,PHN2Zz4=">',
    '<form action="/logout" method="post"><button>x</button></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    "<iframe src=/></iframe>", "<object></object>", "<embed>", "<svg></svg>", "<math></math>",
    "<style>p{}</style>", "<link rel=stylesheet href=/x.css>", "<meta charset=utf-8>",
    "<base href=/>", '<p style="color:red">x</p>', "<iframe srcdoc=x></iframe>",
    '<div ONMOUSEOVER="alert(1)">x</div>', "<br onfocus=x/>",
    "<input value='Quiet' autofocus contenteditable x''>",
])
def test_checker_fails_on_active_markup(unsafe):
    """The checker can fail: each kind of active markup is caught."""
    with pytest.raises(AssertionError):
        assert_no_active_markup(f"<main>{unsafe}</main>")


def test_baseline_counts_only_what_the_payload_added():
    page = '<head><link rel=stylesheet href=/s.css></head><form action="/logout"></form>{}'
    baseline = page.format("<p>Quiet Harbour</p>")
    assert_no_active_markup(baseline, baseline=baseline)
    with pytest.raises(AssertionError):
        assert_no_active_markup(page.format('<form action="/logout"></form>'), baseline=baseline)
    with pytest.raises(AssertionError):
        assert_no_active_markup(page.format("<img src=x onerror=alert(1)>"), baseline=baseline)
    assert active_markup("<p>&lt;script&gt;</p>") == []


# --------------------------------------------------------------------------- the pages


@pytest.fixture
def cast(app):
    """A study, a peer moderator, a clinician, a researcher and participant T-0001 in the
    arm with the forum."""
    with app.app_context():
        make_study()
        peer = make_staff(Role.PEER_MODERATOR, name="Mod Robin")
        make_staff(Role.CLINICIAN)
        make_staff(Role.RESEARCHER)
        me = make_participant(code="T-0001", moderator=peer, arm="guided")
        return {"me": me.id, "me_user": me.user_id, "peer": peer.id}


def signed_in(app, identifier: str):
    client = app.test_client()
    response = AuthActions(client, app).login(identifier)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path not in ("/login", "/login/code")
    return client


def get_ok(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def test_display_names_typed_on_the_account_page(app, cast):
    """A refused name is typed back into its field as text; an accepted one (quote-based
    attribute injections pass the name rules) shows as text on every page."""
    me = signed_in(app, "T-0001")
    peer = signed_in(app, "peer_moderator@example.org")
    shown = {"/account": me, f"/forum/people/{cast['me_user']}": me,
             f"/moderation/participants/{cast['me']}": peer, "/moderation/": peer}
    baselines = {url: get_ok(client, url) for url, client in shown.items()}
    accepted = []
    for payload, what in PAYLOADS:
        response = me.post("/account", data={"display_name": payload, **PROFILE})
        page = response.get_data(as_text=True)
        if response.status_code == 302:
            accepted.append(payload)
            for url, client in shown.items():
                page = get_ok(client, url)
                assert_no_active_markup(page, baseline=baselines[url])
                assert str(escape(payload.strip())) in page, (what, url)
        else:
            assert response.status_code == 200, what
            assert_no_active_markup(page, baseline=baselines["/account"])
            assert str(escape(payload)) in page, what
    assert len(accepted) >= 2, "the corpus should include names that pass the name rules"
    with app.app_context():
        assert db.session.get(User, cast["me_user"]).display_name in accepted


def _seed_forum(app, cast: dict, count: int) -> dict:
    """``count`` participants, each writing a post and commenting on T-0001's post;
    staff (one moderator per name) shown on the researcher pages."""
    from forum import services as forum

    with app.app_context():
        me = db.session.get(User, cast["me_user"])
        mine = forum.create_post(me, kind="post", body="How is everyone today?").item
        people = []
        for n in range(count):
            moderator = make_staff(Role.PEER_MODERATOR, f"mod{n}@example.org",
                                   name=f"Moderator {n:02d}")
            person = make_participant(code=f"T-1{n:03d}", name=f"Person {n:03d}",
                                      moderator=moderator, arm="guided")
            user = person.user
            post = forum.create_post(user, kind="post", body=f"Hello from {n}").item
            forum.create_comment(user, mine, body="Thinking of you")
            forum.toggle_reaction(mine, actor=user, kind="me_too")
            people.append((person.id, user.id, post.id, moderator.id))
        db.session.commit()
        return {"mine": mine.id, "people": people}


def _rename(app, seeded: dict, names: list[str] | None) -> None:
    """Give everyone the payload names (straight into the database, past the name rules),
    or back safe ones when ``names`` is None. The texts of T-0001's notifications, written
    with the names of the time, follow."""
    from core.notifications import Notification

    with app.app_context():
        for n, (_, user_id, _, moderator_id) in enumerate(seeded["people"]):
            user, moderator = db.session.get(User, user_id), db.session.get(User, moderator_id)
            user.display_name = names[n] if names else f"Person {n:03d}"
            user.display_key = f"xss-{n}" if names else display_key(f"Person {n:03d}")
            moderator.display_name = names[n] if names else f"Moderator {n:02d}"
            moderator.display_key = f"xss-mod-{n}" if names else display_key(
                f"Moderator {n:02d}")
            for note in db.session.scalars(select(Notification).where(
                    Notification.actor_id == user_id, Notification.kind == "reply")):
                note.text = f"{user.display_name} commented on your post."
        db.session.commit()


def _pages(seeded: dict) -> dict[str, list[str]]:
    """Who looks at which pages."""
    people = seeded["people"]
    return {
        "T-0001": ["/forum/", f"/forum/posts/{seeded['mine']}", "/notifications",
                   "/notifications?page=2", "/notifications?page=3", "/notifications?page=4",
                   *(f"/forum/posts/{post_id}" for _, _, post_id, _ in people),
                   *(f"/forum/people/{user_id}" for _, user_id, _, _ in people)],
        "clinician@example.org": [
            "/moderation/?all=1",
            *(f"/moderation/participants/{pid}" for pid, _, _, _ in people)],
        "researcher@example.org": [
            "/research/participants",
            *(f"/research/participants/{pid}" for pid, _, _, _ in people)],
    }


def test_stored_display_names_never_become_markup_on_any_page(app, cast):
    """Every payload as a stored participant and staff display name: each page that shows
    names has no more active markup than with harmless names."""
    # the column holds 40 characters (PostgreSQL refuses more); cut payloads still probe
    names = [payload[:40] for payload, _ in PAYLOADS]
    seeded = _seed_forum(app, cast, len(names))
    clients = {who: signed_in(app, who) for who in _pages(seeded)}
    _rename(app, seeded, names)
    with_payloads = {(who, url): clients[who].get(url) for who, urls in _pages(seeded).items()
                     for url in urls}
    _rename(app, seeded, None)
    checked = 0
    for (who, url), response in with_payloads.items():
        if response.status_code == 302 and url.startswith("/notifications?page="):
            continue  # fewer pages than asked for
        assert response.status_code == 200, (who, url, response.status_code)
        page = response.get_data(as_text=True)
        assert_no_active_markup(page, baseline=get_ok(clients[who], url))
        checked += 1
    assert checked >= 3 * len(names)
    # the names did reach the pages, as text
    feed = with_payloads[("T-0001", f"/forum/posts/{seeded['mine']}")].get_data(as_text=True)
    assert html.escape(names[0]) in feed
    caseload = with_payloads[("clinician@example.org", "/moderation/?all=1")]
    assert html.escape(names[0]) in caseload.get_data(as_text=True)


def test_the_seeded_participants_are_who_the_pages_show(app, cast):
    """A guard for the test above: its people are in the forum arm with a moderator."""
    seeded = _seed_forum(app, cast, 2)
    with app.app_context():
        people = db.session.scalars(select(Participant).where(
            Participant.id.in_([p for p, _, _, _ in seeded["people"]]))).all()
        assert len(people) == 2 and all(p.arm_id and p.moderator_id for p in people)
