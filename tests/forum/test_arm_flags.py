"""The arm flag: participants whose arm has no forum get 403 on every forum route and no
"Forum" navigation; researchers and admins never reach the forum; moderators do."""

from __future__ import annotations

import pytest
from flask import Flask, url_for

from core import clock
from core.extensions import db
from core.roles import Role
from forum.models import Comment
from tests.factories import make_staff
from tests.forum.forum_rows import NOW, member, user_of, write_comment, write_post


def forum_requests(app: Flask, values: dict[str, int]) -> list[tuple[str, str]]:
    """(method, path) of every route of the forum blueprint, for real objects."""
    requests = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith("forum."):
                path = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
                requests += [(method, path) for method in sorted(rule.methods - {"HEAD",
                                                                               "OPTIONS"})]
    return requests


@pytest.fixture
def values(app) -> dict[str, int]:
    clock.set_time(NOW)
    with app.app_context():
        guided = member(0)
        member(1, arm="self")
        post = write_post(guided.user)
        comment: Comment = write_comment(guided.user, post)
        return {"post_id": post.id, "comment_id": comment.id, "user_id": guided.user.id}


def nav(html: str) -> str:
    return html[html.index('<nav class="site-nav"'):html.index("</nav>")]


def test_every_forum_route_is_refused_to_an_arm_without_the_forum(app, client, auth, values):
    auth.login("T-0002")
    requests = forum_requests(app, values)
    assert len(requests) >= 12
    refused = {(method, path): client.open(path, method=method).status_code
               for method, path in requests}
    assert set(refused.values()) == {403}, refused
    assert ">Forum</a>" not in nav(client.get("/account").get_data(as_text=True))


def test_an_arm_with_the_forum_has_the_navigation_entry(app, client, auth, values):
    auth.login("T-0001")
    links = nav(client.get("/forum/").get_data(as_text=True))
    assert '<a href="/forum/" aria-current="page">Forum</a>' in links


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.ADMIN])
def test_researchers_and_admins_never_reach_the_forum(app, client, auth, values, role):
    with app.app_context():
        email = make_staff(role).email
    auth.login(email)
    for method, path in forum_requests(app, values):
        assert client.open(path, method=method).status_code == 403, (method, path)
    assert "/forum/" not in nav(client.get("/account").get_data(as_text=True))


@pytest.mark.parametrize("role", [Role.PEER_MODERATOR, Role.CLINICIAN])
def test_moderators_have_the_forum(app, client, auth, values, role):
    with app.app_context():
        email = make_staff(role).email
    auth.login(email)
    page = client.get("/forum/")
    assert page.status_code == 200 and ">Forum</a>" in nav(page.get_data(as_text=True))
    assert client.get(f"/forum/posts/{values['post_id']}").status_code == 200


def test_withdrawing_from_the_intervention_closes_the_forum(app, client, auth, values):
    """``features_for`` switches the forum off after an intervention withdrawal."""
    from outcomes import participants

    with app.app_context():
        participant = user_of("T-0001").participant
        participant.status = "active"
        admin = make_staff(Role.RESEARCHER, "r2@example.org")
        participants.withdraw(participant, "intervention", actor=admin,
                              reason="Wants to stop the programme.")
        db.session.commit()
    auth.login("T-0001")
    assert client.get("/forum/").status_code == 403
