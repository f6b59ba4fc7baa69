"""Forum profiles (``/forum/people/<user id>``) and the badge opt-in on the account page.

A profile shows the pseudonym, an initials avatar, the month they joined, what they have
shared, and badges only when the owner opted in; nothing that identifies or describes
them as a study participant. The same gate as the rest of the forum.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from forum import services as forum
from modules.models import Award
from outcomes.models import Arm, Study
from tests.conftest import PASSWORD
from tests.factories import make_participant, make_staff, make_study
from tests.sql_count import counting

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def people(app):
    """T-0001 (viewer, forum arm), T-0002 "Still Meadow" (the profile's owner, forum arm,
    joined January 2026), T-0003 (arm without the forum), T-0004 (forum arm without
    gamification), a peer moderator and a researcher."""
    clock.set_time(NOW)
    with app.app_context():
        study = make_study()
        db.session.add(Arm(study_id=study.id, code="social", name="Social", features={
            "modules": True, "gamification": False, "forum": True, "checkins": True,
            "sms": True}))
        db.session.commit()
        peer = make_staff(Role.PEER_MODERATOR, name="Mod Robin")
        make_staff(Role.RESEARCHER)
        viewer = make_participant(code="T-0001", arm="guided", moderator=peer)
        owner = make_participant(code="T-0002", name="Still Meadow", arm="guided")
        owner.user.created_at = datetime(2026, 1, 15, tzinfo=UTC)
        owner.phone, owner.site = "+447700900123", "Leeds"
        no_forum = make_participant(code="T-0003", name="Paper Boat", arm="self")
        no_game = make_participant(code="T-0004", name="Night Owl", arm="social")
        for person in (viewer, owner, no_forum, no_game):
            person.status = "active"
        db.session.commit()
        return {"viewer": viewer.user_id, "owner": owner.user_id, "owner_pid": owner.id,
                "no_forum": no_forum.user_id, "no_game": no_game.user_id}


def _login(auth, who: str) -> None:
    response = auth.login(who)
    assert response.status_code == 302 and "/login" not in response.headers["Location"]


def _award_badges(app, participant_id: int, *keys: str) -> None:
    with app.app_context():
        for n, key in enumerate(keys):
            db.session.add(Award(participant_id=participant_id, kind="badge", key=key,
                                 at=NOW - timedelta(days=10 - n)))
        db.session.commit()


def _opt_in(app, user_id: int, show: bool = True) -> None:
    with app.app_context():
        db.session.get(User, user_id).show_badges = show
        db.session.commit()


def _write(app, user_id: int, n_posts: int, n_comments: int, *, helpful: int = 0) -> None:
    """Posts and comments by ``user_id`` (comments on a talk-it-out thread of T-0001's,
    ``helpful`` of them marked helpful), plus one held, one hidden and one deleted post
    that must not count."""
    with app.app_context():
        author = db.session.get(User, user_id)
        viewer = db.session.scalar(select(User).join(Participant, Participant.user_id == User.id)
                                   .where(Participant.study_code == "T-0001"))
        author.created_at = NOW - timedelta(days=60)  # past the new-account rate limits
        thread = forum.create_post(viewer, kind="talk_it_out", title="Feeling stuck",
                                   body="Any ideas?").item
        for n in range(n_posts + 3):
            post = forum.create_post(author, kind="post", body=f"Post {n}").item
            if n == n_posts:
                post.is_held = True
            elif n == n_posts + 1:
                post.hidden_at = NOW
            elif n == n_posts + 2:
                post.deleted_at = NOW
        for n in range(n_comments):
            comment = forum.create_comment(author, thread, body=f"Idea {n}").item
            if n < helpful:
                comment.helpful_at = NOW
        db.session.commit()


def _stats(page: str) -> dict[str, str]:
    pairs = re.findall(r'stat-value">(\d+)</span><span class="stat-label">([^<]+)<', page)
    return {label: value for value, label in pairs}


def test_profile_shows_only_the_chosen_things(app, client, auth, people):
    _write(app, people["owner"], 2, 3, helpful=1)
    _login(auth, "T-0001")
    page = client.get(f"/forum/people/{people['owner']}").get_data(as_text=True)
    page = page.split('<main id="main"')[1].split("</main>")[0]
    assert "<h1>Still Meadow</h1>" in page
    assert 'aria-hidden="true">SM</span>' in page
    assert "In the forum since January 2026" in page
    assert _stats(page) == {"posts": "2", "comments": "3",
                            "suggestion that helped someone": "1"}
    for private in ("T-0002", "+447700900123", "900123", "Leeds", "guided", "Guided",
                    "active", "@example.org", "Badges"):
        assert private not in page, private


def test_badges_show_only_when_the_owner_opted_in(app, client, auth, people):
    _award_badges(app, people["owner_pid"], "first-step", "first-module")
    _login(auth, "T-0001")
    url = f"/forum/people/{people['owner']}"
    page = client.get(url).get_data(as_text=True)
    assert "Badges" not in page and "First step" not in page
    _opt_in(app, people["owner"])
    page = client.get(url).get_data(as_text=True)
    assert "<h2 id=\"badges-heading\">Badges</h2>" in page
    # newest first, only earned ones
    assert page.index("Module done") < page.index("First step")
    assert "Three days" not in page
    _opt_in(app, people["owner"], False)
    assert "First step" not in client.get(url).get_data(as_text=True)


def test_opted_in_without_badges_says_so(app, client, auth, people):
    _opt_in(app, people["owner"])
    _login(auth, "T-0001")
    page = client.get(f"/forum/people/{people['owner']}").get_data(as_text=True)
    assert "No badges yet." in page


def test_no_badges_for_a_viewer_whose_arm_has_no_gamification(app, client, auth, people):
    """A participant in an arm without points and badges does not meet them here."""
    _award_badges(app, people["owner_pid"], "first-step")
    _opt_in(app, people["owner"])
    _login(auth, "T-0004")
    page = client.get(f"/forum/people/{people['owner']}").get_data(as_text=True)
    assert "<h1>Still Meadow</h1>" in page and "First step" not in page


def test_participants_without_the_forum_get_403(app, client, auth, people):
    _login(auth, "T-0003")
    assert client.get(f"/forum/people/{people['owner']}").status_code == 403


def test_moderators_may_view_and_other_staff_may_not(app, client, auth, people):
    _award_badges(app, people["owner_pid"], "first-step")
    _opt_in(app, people["owner"])
    _login(auth, "peer_moderator@example.org")
    page = client.get(f"/forum/people/{people['owner']}").get_data(as_text=True)
    assert "<h1>Still Meadow</h1>" in page and "First step" in page
    auth.logout()
    _login(auth, "researcher@example.org")
    assert client.get(f"/forum/people/{people['owner']}").status_code == 403


def test_no_profile_outside_the_forum(app, client, auth, people):
    """Unknown ids, staff, the not-yet-set-up, disabled accounts and participants whose
    arm has no forum have no profile."""
    with app.app_context():
        invited = make_participant(code="T-0009", name=None, arm="guided")
        disabled = make_participant(code="T-0010", name="Slow River", arm="guided")
        disabled.user.is_enabled = False
        db.session.commit()
        peer_id = db.session.scalar(select(User.id).where(User.role == Role.PEER_MODERATOR))
        missing = [invited.user_id, disabled.user_id, peer_id, people["no_forum"], 999999]
    _login(auth, "T-0001")
    for user_id in missing:
        assert client.get(f"/forum/people/{user_id}").status_code == 404, user_id
    assert client.get("/forum/people/still-meadow").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(app, client, people):
    response = client.get(f"/forum/people/{people['owner']}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_profile_queries_do_not_grow(app, client, auth, people):
    """The same number of queries with nothing shared and with posts, comments and badges."""
    _opt_in(app, people["owner"])
    _login(auth, "T-0001")
    url = f"/forum/people/{people['owner']}"
    client.get(url)

    def count() -> int:
        with counting(app) as seen:
            assert client.get(url).status_code == 200
        return len(seen)

    few = count()
    _write(app, people["owner"], 6, 5, helpful=2)
    _award_badges(app, people["owner_pid"], "first-step", "first-module", "streak-3")
    assert count() == few


# --------------------------------------------------------------------------- the opt-in


def _checkbox(page: str) -> str:
    return re.search(r'<input[^>]*id="badges-show_badges"[^>]*>', page).group(0)


def test_participant_opts_in_and_out_on_the_account_page(app, client, auth, people):
    _login(auth, "T-0002")
    page = client.get("/account").get_data(as_text=True)
    assert '<label for="badges-show_badges">Show my badges on my forum profile</label>' in page
    assert _checkbox(page) == '<input aria-describedby="badges-show_badges-hint" ' \
        'id="badges-show_badges" name="badges-show_badges" type="checkbox" value="y">'
    response = client.post("/account/badges", data={"badges-show_badges": "y"})
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    with app.app_context():
        assert db.session.get(User, people["owner"]).show_badges is True
    page = client.get("/account").get_data(as_text=True)
    assert "Your badges now show on your forum profile." in page
    assert " checked " in _checkbox(page)
    client.post("/account/badges", data={})
    with app.app_context():
        assert db.session.get(User, people["owner"]).show_badges is False


def test_staff_have_no_badge_setting(app, client, auth, people):
    _login(auth, "peer_moderator@example.org")
    assert "badges-show_badges" not in client.get("/account").get_data(as_text=True)
    assert client.post("/account/badges", data={"badges-show_badges": "y"}).status_code == 403
    with app.app_context():
        staff = select(User.show_badges).where(User.role != Role.PARTICIPANT)
        assert not any(db.session.scalars(staff))


def test_badge_setting_needs_the_csrf_token(app, people):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    with app.app_context():
        assert db.session.scalar(select(Study)) is not None
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    signed = client.post("/login", data={"identifier": "T-0002", "password": PASSWORD,
                                         "csrf_token": token})
    assert signed.status_code == 302 and "/login" not in signed.headers["Location"]
    assert client.post("/account/badges", data={"badges-show_badges": "y"}).status_code == 400
    with app.app_context():
        assert db.session.get(User, people["owner"]).show_badges is False
