"""The route x role matrix: every route declares who may use it, and the
declaration holds for anonymous visitors and for each signed-in role.

Expected results are derived from each route's declared policy
(``core.access.roles_of``), and a hard-coded table of critical expectations
keeps the matrix from passing vacuously if the policies themselves go wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from sqlalchemy import select

from core import create_app
from core.access import PUBLIC, roles_of
from core.audit import AuditEntry
from core.extensions import db
from core.models import User
from core.roles import ALL_ROLES, Role
from tests.core.routes import url_values
from tests.factories import make_participant, make_staff

ANONYMOUS = "anonymous"
ROLES = [ANONYMOUS, *(role.value for role in Role)]
#: a token no invite was ever issued for
MADE_UP_TOKEN = "made-up-token-0123456789"

#: (who, method, path, status): checked on top of the policy-derived matrix
CRITICAL = [
    (ANONYMOUS, "GET", "/help", 200),
    (ANONYMOUS, "GET", "/login", 200),
    (ANONYMOUS, "GET", f"/invite/{MADE_UP_TOKEN}", 404),
    (ANONYMOUS, "GET", "/admin/users", 302),
    (ANONYMOUS, "GET", "/moderation/", 302),
    (ANONYMOUS, "POST", "/logout", 302),
    (ANONYMOUS, "POST", "/sms/twilio/inbound", 403),
    ("participant", "GET", "/", 302),  # randomised: home is Today
    ("participant", "GET", "/modules/today", 200),
    ("participant", "GET", "/admin/users", 403),
    ("participant", "GET", "/admin/settings", 403),
    ("participant", "GET", "/research/", 403),
    ("participant", "GET", "/moderation/", 403),
    ("peer_moderator", "GET", "/admin/users", 403),
    ("peer_moderator", "GET", "/research/", 403),
    ("peer_moderator", "GET", "/moderation/", 200),
    ("clinician", "GET", "/moderation/", 200),
    ("clinician", "GET", "/admin/audit", 403),
    ("clinician", "GET", "/research/", 403),
    ("researcher", "GET", "/moderation/", 403),
    ("researcher", "GET", "/admin/users", 403),
    ("researcher", "GET", "/research/", 200),
    ("researcher", "GET", "/consent", 403),
    ("admin", "GET", "/admin/users", 200),
    ("admin", "GET", "/admin/audit", 200),
    ("admin", "GET", "/research/participants", 200),
    ("admin", "GET", "/moderation/", 403),
    ("admin", "GET", "/account/security/turn-off", 403),
]


# --- the declaration check -----------------------------------------------------

def is_declared(policy: object) -> bool:
    return policy == PUBLIC or (isinstance(policy, frozenset) and bool(policy)
                                and policy <= ALL_ROLES)


def undeclared_routes(app: Flask) -> list[str]:
    """Every route except ``static`` whose view has no valid access policy."""
    return sorted(f"{rule.rule} ({rule.endpoint})" for rule in app.url_map.iter_rules()
                  if rule.endpoint != "static"
                  and not is_declared(roles_of(app.view_functions[rule.endpoint])))


def fresh_app(app: Flask, **overrides: object) -> Flask:
    """Another app on the same test database, for changes the fixture must not see."""
    keys = ("TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "WTF_CSRF_ENABLED",
            "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "KINSHIP_DEMO", "SERVER_NAME", "PUBLIC_URL")
    return create_app({**{key: app.config[key] for key in keys}, **overrides})


def test_every_route_declares_who_may_use_it(app):
    """It finds an access policy on every route but ``static``."""
    assert undeclared_routes(app) == [], "routes without an access policy"
    assert len(list(app.url_map.iter_rules())) > 20


def test_undeclared_route_is_flagged(app):
    """It names a route that was added without a policy, or with a made-up one."""
    other = fresh_app(app)

    @other.route("/throwaway")
    def throwaway():
        return "no policy"

    def misdeclared():
        return "bad policy"

    misdeclared.access = "everyone"
    other.add_url_rule("/misdeclared", "misdeclared", misdeclared)
    try:
        assert undeclared_routes(other) == ["/misdeclared (misdeclared)",
                                            "/throwaway (throwaway)"]
        assert undeclared_routes(app) == []
    finally:
        with other.app_context():
            db.engine.dispose()


# --- the matrix ------------------------------------------------------------------

@dataclass
class Cast:
    """The people and objects the matrix needs, as ids (no instances across requests)."""

    participant_id: int
    other_participant_id: int
    target_user_id: int


def make_cast() -> Cast:
    """All five roles, signed in by the matrix; call inside an app context."""
    make_staff(Role.ADMIN)
    make_staff(Role.RESEARCHER)
    make_staff(Role.CLINICIAN)
    peer = make_staff(Role.PEER_MODERATOR)
    other_peer = make_staff(Role.PEER_MODERATOR, "peer2@example.org")
    target = make_staff(Role.RESEARCHER, "target@example.org")
    # randomised into the arm with every feature: the matrix is about roles, not arms
    mine = make_participant(code="T-0001", moderator=peer, arm="guided")
    theirs = make_participant(code="T-0002", name="Still Meadow", moderator=other_peer,
                              arm="guided")
    return Cast(mine.id, theirs.id, target.id)


IDENTIFIERS = {
    "participant": "T-0001",
    "peer_moderator": "peer_moderator@example.org",
    "clinician": "clinician@example.org",
    "researcher": "researcher@example.org",
    "admin": "admin@example.org",
}


def sign_in(auth, who: str) -> None:
    if who == ANONYMOUS:
        return
    response = auth.login(IDENTIFIERS[who])
    assert response.status_code == 302, f"{who} could not sign in"
    assert urlsplit(response.headers["Location"]).path not in ("/login", "/login/code")


@dataclass(frozen=True)
class Call:
    endpoint: str
    method: str
    path: str
    policy: frozenset[Role] | str
    #: a webhook authenticated by its sender's signature (Twilio), not by a session
    signed: bool = False


def calls(app: Flask, cast: Cast) -> list[Call]:
    """One request per route: GET where allowed, else POST; sign-out last."""
    values = {"participant_id": cast.participant_id, "user_id": cast.target_user_id,
              "token": MADE_UP_TOKEN, "action": "sign_out"}
    result = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            path = url_for(rule.endpoint, **url_values(rule, values))
            method = "GET" if "GET" in rule.methods else "POST"
            view = app.view_functions[rule.endpoint]
            result.append(Call(rule.endpoint, method, path, roles_of(view),
                               signed=getattr(view, "signed_by", None) is not None))
    return sorted(result, key=lambda c: (c.endpoint == "core.logout", c.path))



def _location(response) -> str:
    return urlsplit(response.headers.get("Location", "")).path


def problem(who: str, call: Call, response) -> str | None:
    """What is wrong with this answer under the route's declared policy, if anything."""
    status = response.status_code
    if call.signed:  # nobody here carries the sender's signature
        return None if status == 403 else "expected 403 (webhook without a signature)"
    if call.policy == PUBLIC:
        if who == ANONYMOUS:
            expected = 404 if call.endpoint == "core.invite" else 200
            return None if status == expected else f"expected {expected}"
        return None if status != 403 and status < 500 else "public route refused or failed"
    if who == ANONYMOUS:
        if status == 302 and _location(response) == "/login":
            return None
        return "expected a redirect to /login"
    if Role(who) not in call.policy:
        return None if status == 403 else "expected 403"
    if status == 403 or status >= 500:
        return "allowed role refused or failed"
    if status == 302 and _location(response) == "/login" and call.endpoint != "core.logout":
        return "allowed role was sent to sign in (session lost?)"
    return None


@pytest.mark.parametrize("who", ROLES)
def test_route_matrix_follows_declared_policies(app, client, auth, who):
    """It answers each role on each route as the route's policy says, and
    meets the hard-coded critical expectations."""
    with app.app_context():
        cast = make_cast()
    sign_in(auth, who)
    failures, seen = [], {}
    for call in calls(app, cast):
        response = client.open(call.path, method=call.method)
        seen[(call.method, call.path)] = response.status_code
        wrong = problem(who, call, response)
        if wrong:
            failures.append(f"{call.method} {call.path}: {wrong}, got {response.status_code}")
    for role, method, path, status in CRITICAL:
        if role != who:
            continue
        assert (method, path) in seen, f"critical route {method} {path} is not in url_map"
        if seen[(method, path)] != status:
            failures.append(f"critical {method} {path}: expected {status}, "
                            f"got {seen[(method, path)]}")
    assert failures == [], f"{who}:\n" + "\n".join(failures)


def test_critical_table_covers_every_role():
    """It keeps at least one hard-coded expectation for anonymous and each role."""
    assert {row[0] for row in CRITICAL} == set(ROLES)


# --- object level ----------------------------------------------------------------

def _viewed(participant_id: int) -> list[AuditEntry]:
    return db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "participant.viewed",
                                 AuditEntry.target_type == "participant",
                                 AuditEntry.target_id == participant_id)).all()


def test_peer_moderator_cannot_view_participant_of_another_caseload(app, client, auth):
    """It refuses a peer moderator someone else's participant, writes no
    "viewed" entry, and still shows their own participant."""
    with app.app_context():
        cast = make_cast()
    sign_in(auth, "peer_moderator")
    response = client.get(f"/moderation/participants/{cast.other_participant_id}")
    assert response.status_code == 403
    assert client.get(f"/moderation/participants/{cast.participant_id}").status_code == 200
    with app.app_context():
        assert _viewed(cast.other_participant_id) == []
        assert len(_viewed(cast.participant_id)) == 1


def test_clinician_views_any_participant_and_the_view_is_audited(app, client, auth):
    """It lets a clinician open a participant on any caseload and records
    "participant.viewed" with the clinician as actor."""
    with app.app_context():
        cast = make_cast()
        clinician_id = db.session.scalar(select(User.id).where(User.role == Role.CLINICIAN))
    sign_in(auth, "clinician")
    response = client.get(f"/moderation/participants/{cast.other_participant_id}")
    assert response.status_code == 200
    assert b"T-0002" in response.data
    with app.app_context():
        entries = _viewed(cast.other_participant_id)
        assert [e.actor_id for e in entries] == [clinician_id]


def test_missing_participant_is_404_for_a_clinician(app, client, auth):
    """It answers 404, not 500, for a participant id that does not exist."""
    with app.app_context():
        make_cast()
    sign_in(auth, "clinician")
    assert client.get("/moderation/participants/999999").status_code == 404
