"""CSRF protection: every POST route refuses a request without a token, with a
friendly page and no change, and accepts one with the token from its page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from sqlalchemy import func, select

from core.access import PUBLIC, roles_of
from core.extensions import db
from core.models import User, UserSession
from core.roles import Role
from tests.conftest import AuthActions
from tests.core.routes import url_values
from tests.factories import make_participant, make_staff

TOKEN = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
#: who posts to a route, in order of preference, among the roles its policy allows
PREFERENCE = (Role.ADMIN, Role.PARTICIPANT, Role.PEER_MODERATOR, Role.RESEARCHER, Role.CLINICIAN)
IDENTIFIERS = {
    Role.PARTICIPANT: "T-0001",
    Role.PEER_MODERATOR: "peer_moderator@example.org",
    Role.CLINICIAN: "clinician@example.org",
    Role.RESEARCHER: "researcher@example.org",
    Role.ADMIN: "admin@example.org",
}
#: form data that would change something if the token were not checked
DATA = {
    "core.admin_user_new": {"email": "new.person@example.org", "role": "researcher",
                            "password": "tangerine orbit lantern"},
    "core.admin_user": {"role": "clinician"},
    "core.admin_settings": {"site_name": "Forged", "crisis_intro": "Forged",
                            "crisis_resources": "Forged | 123 | |", "study_contact": "Forged"},
    "core.admin_consent": {"version": "9.9", "text": "Forged consent text. " * 5},
    "core.account": {"display_name": "Forged Name", "timezone": "Europe/London",
                     "wake_start": "08:00", "wake_end": "21:00"},
    "core.reconsent": {"decline": "I do not agree", "consent_version_id": "1"},
    "core.login": {"identifier": "T-0001", "password": "correct horse battery staple"},
}


def poster(policy: frozenset[Role] | str) -> Role:
    allowed = set(Role) if policy == PUBLIC else policy
    return next(role for role in PREFERENCE if role in allowed)



def post_routes(app: Flask, values: dict[str, object]) -> list[tuple[str, str]]:
    """(endpoint, path) of every route that accepts POST."""
    with app.test_request_context():
        return sorted(
            (rule.endpoint, url_for(rule.endpoint, **url_values(rule, values)))
            for rule in app.url_map.iter_rules() if "POST" in rule.methods
            # webhooks carry their sender's signature instead (tests/core/sms)
            and not getattr(app.view_functions[rule.endpoint], "signed_by", None))


def snapshot() -> dict[str, object]:
    """Row counts of every table, plus facts a refused POST must not touch."""
    counts = {table.name: db.session.scalar(select(func.count()).select_from(table))
              for table in db.metadata.sorted_tables}
    return {**counts,
            "revoked sessions": db.session.scalar(select(func.count(UserSession.id))
                                                  .where(UserSession.revoked_at.is_not(None))),
            "users": sorted((u.id, str(u.role), u.is_enabled, u.display_name)
                            for u in db.session.scalars(select(User)))}


@pytest.fixture
def cast(app) -> dict[str, object]:
    with app.app_context():
        make_staff(Role.ADMIN)
        make_staff(Role.RESEARCHER)
        make_staff(Role.CLINICIAN)
        peer = make_staff(Role.PEER_MODERATOR)
        target = make_staff(Role.PEER_MODERATOR, "target@example.org")
        participant = make_participant(code="T-0001", moderator=peer)
        return {"participant_id": participant.id, "user_id": target.id,
                "token": "made-up-token-0123456789", "action": "disable"}


def _is_csrf_refusal(response) -> bool:
    return response.status_code == 400 and b"The form expired" in response.data


def test_post_without_token_is_refused_for_every_route(app, cast):
    """It answers 400 with the friendly "form expired" page to a signed-in
    user of an allowed role and to anonymous, and changes nothing."""
    clients = {}
    for role in Role:
        clients[role] = app.test_client()
        response = AuthActions(clients[role], app).login(IDENTIFIERS[role])
        assert response.status_code == 302, f"{role} could not sign in"
    anonymous = app.test_client()
    app.config["WTF_CSRF_ENABLED"] = True
    with app.app_context():
        before = snapshot()

    routes = post_routes(app, cast)
    assert len(routes) >= 10
    failures = []
    for endpoint, path in routes:
        role = poster(roles_of(app.view_functions[endpoint]))
        for who, client in ((role, clients[role]), ("anonymous", anonymous)):
            response = client.post(path, data=DATA.get(endpoint, {}))
            if not _is_csrf_refusal(response):
                failures.append(f"POST {path} as {who}: {response.status_code}")
    assert failures == []

    with app.app_context():
        assert snapshot() == before
    for role, client in clients.items():
        response = client.get("/account")
        assert response.status_code == 200, f"{role} was signed out by a POST without a token"
    assert urlsplit(anonymous.get("/account").headers["Location"]).path == "/login"


def test_logout_without_token_keeps_the_user_signed_in(app, client, auth, cast):
    """It does not sign out on a forged POST /logout."""
    auth.login("T-0001")
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/logout")
    assert _is_csrf_refusal(response)
    assert client.get("/").status_code == 200


def test_new_user_without_token_creates_no_user(app, client, auth, cast):
    """It creates no account from a forged POST /admin/users/new, and does with the token."""
    auth.login("admin@example.org")
    app.config["WTF_CSRF_ENABLED"] = True
    data = DATA["core.admin_user_new"]
    assert _is_csrf_refusal(client.post("/admin/users/new", data=data))
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == data["email"])) is None

    token = TOKEN.search(client.get("/admin/users/new").data).group(1).decode()
    response = client.post("/admin/users/new", data={**data, "csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == data["email"])) is not None


def test_login_with_token_from_the_page_succeeds(app, client, cast):
    """It signs in when the form carries the token scraped from the login page."""
    app.config["WTF_CSRF_ENABLED"] = True
    page = client.get("/login")
    token = TOKEN.search(page.data).group(1).decode()
    response = client.post("/login", data={**DATA["core.login"], "csrf_token": token})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/"
    assert client.get("/").status_code == 200


def test_login_with_a_wrong_token_is_refused(app, client, cast):
    """It refuses a token that was not issued to this browser."""
    app.config["WTF_CSRF_ENABLED"] = True
    client.get("/login")
    response = client.post("/login", data={**DATA["core.login"], "csrf_token": "forged"})
    assert _is_csrf_refusal(response)
    assert urlsplit(client.get("/").headers["Location"]).path == "/login"


def test_sign_out_form_on_signed_in_pages_carries_a_working_token(app, client, auth, cast):
    """It signs out with the token from the sign-out form in the page header."""
    auth.login("T-0001")
    app.config["WTF_CSRF_ENABLED"] = True
    token = TOKEN.search(client.get("/").data).group(1).decode()
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert urlsplit(client.get("/").headers["Location"]).path == "/login"
