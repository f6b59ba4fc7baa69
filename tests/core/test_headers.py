"""Security headers, the session cookie, pages that CSP can serve as they are,
and error pages that give nothing away."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from flask import Flask, url_for

from core import create_app
from core.extensions import db
from core.roles import Role
from tests.conftest import AuthActions
from tests.core.routes import url_values
from tests.factories import make_participant, make_staff

HTTPS = "https://kinship.test"
IDENTIFIERS = {
    Role.PARTICIPANT: "T-0001",
    Role.PEER_MODERATOR: "peer_moderator@example.org",
    Role.CLINICIAN: "clinician@example.org",
    Role.RESEARCHER: "researcher@example.org",
    Role.ADMIN: "admin@example.org",
}


def fresh_app(app: Flask, **overrides: object) -> Flask:
    """Another app on the same test database; environment-derived settings are its own."""
    keys = ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "WTF_CSRF_ENABLED", "ARGON2_TIME_COST",
            "ARGON2_MEMORY_COST", "KINSHIP_DEMO", "SERVER_NAME", "PUBLIC_URL")
    return create_app({"TESTING": True, **{key: app.config[key] for key in keys}, **overrides})


def dispose(other: Flask) -> None:
    with other.app_context():
        db.engine.dispose()


@pytest.fixture
def cast(app) -> dict[str, int]:
    with app.app_context():
        make_staff(Role.ADMIN)
        make_staff(Role.RESEARCHER)
        make_staff(Role.CLINICIAN)
        peer = make_staff(Role.PEER_MODERATOR)
        participant = make_participant(code="T-0001", moderator=peer)
        return {"participant_id": participant.id, "user_id": peer.id}


def assert_security_headers(response) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Referrer-Policy")
    assert headers.get("X-Frame-Options") == "DENY"


def assert_csp_safe(path: str, html: bytes) -> None:
    """It holds nothing that ``default-src 'self'`` would block."""
    text = html.decode()
    assert "<script" not in text.lower(), f"{path} has a script element"
    assert not re.search(r"\sstyle\s*=", text, re.IGNORECASE), f"{path} has a style attribute"
    assert not re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE), f"{path} has an event handler"
    assert not re.search(r"<(link|img|iframe)[^>]+(src|href)=\"(https?:)?//", text), (
        f"{path} loads something from another site")


def test_public_page_has_security_headers(app, client, cast):
    """It sends the headers on a page for anonymous visitors, without no-store."""
    response = client.get("/login")
    assert response.status_code == 200
    assert_security_headers(response)
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert_csp_safe("/login", response.data)


def test_signed_in_page_has_security_headers_and_no_store(app, client, auth, cast):
    """It sends the headers, and Cache-Control: no-store, on a signed-in page."""
    auth.login("T-0001")
    response = client.get("/account")
    assert response.status_code == 200
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert_csp_safe("/account", response.data)


@pytest.mark.parametrize("signed_in", [False, True])
def test_not_found_page_has_security_headers(app, client, auth, cast, signed_in):
    """It sends the headers with the friendly 404 page."""
    if signed_in:
        auth.login("T-0001")
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert_security_headers(response)
    assert b"We could not find that page" in response.data
    assert ("no-store" in response.headers.get("Cache-Control", "")) is signed_in
    assert_csp_safe("/no-such-page", response.data)


def test_static_file_has_security_headers_and_may_be_cached(app, client, auth, cast):
    """It sends the headers on a static file, which stays cacheable when signed in."""
    auth.login("T-0001")
    response = client.get("/static/css/kinship.css")
    assert response.status_code == 200
    assert_security_headers(response)
    assert "no-store" not in response.headers.get("Cache-Control", "")
    response.close()


def test_no_hsts_over_plain_http_by_default(app, client):
    """It leaves HSTS off on plain HTTP when KINSHIP_HTTPS is not set."""
    assert app.config["KINSHIP_HTTPS"] is False
    assert "Strict-Transport-Security" not in client.get("/help").headers


def test_hsts_when_the_request_is_https(app, client):
    """It sends HSTS on an HTTPS request."""
    response = client.get("/help", base_url=HTTPS)
    assert "max-age=" in response.headers["Strict-Transport-Security"]


def test_hsts_when_https_is_configured(app, monkeypatch):
    """It sends HSTS on every answer once KINSHIP_HTTPS is set (TLS ends at the proxy)."""
    monkeypatch.setenv("KINSHIP_HTTPS", "1")
    other = fresh_app(app)
    try:
        response = other.test_client().get("/help")
        assert "max-age=" in response.headers["Strict-Transport-Security"]
    finally:
        dispose(other)


def _session_cookie(response, name: str) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def _attributes(cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


def test_session_cookie_is_httponly_and_lax(app, client, cast):
    """It sets the session cookie HttpOnly and SameSite=Lax, not Secure on plain HTTP."""
    response = client.post("/login", data={"identifier": "T-0001",
                                           "password": "correct horse battery staple"})
    assert response.status_code == 302
    cookie = _session_cookie(response, "kinship")
    assert {"httponly", "samesite", "path"} <= _attributes(cookie)
    assert "SameSite=Lax" in cookie
    assert "secure" not in _attributes(cookie)


def test_session_cookie_ends_with_the_session_and_is_not_resent(app, client, cast):
    """The cookie expires when the session row must end at the latest
    (SESSION_ABSOLUTE_HOURS), and a page that changes nothing in the session sends
    no new cookie: the row, checked on every request, keeps the idle timeout."""
    before = datetime.now(UTC)
    response = client.post("/login", data={"identifier": "T-0001",
                                           "password": "correct horse battery staple"})
    cookie = _session_cookie(response, "kinship")
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    lifetime = timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"])
    assert before + lifetime - timedelta(seconds=5) <= expires
    assert expires <= datetime.now(UTC) + lifetime + timedelta(seconds=5)
    client.get("/help")  # shows (and so removes) the sign-in's flashed message
    for path in ("/help", "/account", "/help"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert not [c for c in page.headers.getlist("Set-Cookie") if c.startswith("kinship=")]
    assert b"Sign out" in client.get("/account").data


def test_session_cookie_is_secure_host_cookie_with_https(app, cast, monkeypatch):
    """It names the cookie __Host-kinship and marks it Secure, with Path=/
    and no Domain, when KINSHIP_HTTPS is set."""
    monkeypatch.setenv("KINSHIP_HTTPS", "1")
    other = fresh_app(app)
    try:
        assert other.config["SESSION_COOKIE_SECURE"] is True
        client = other.test_client()
        response = client.post("/login", base_url=HTTPS, data={
            "identifier": "T-0001", "password": "correct horse battery staple"})
        assert response.status_code == 302
        cookie = _session_cookie(response, "__Host-kinship")
        attributes = _attributes(cookie)
        assert {"secure", "httponly", "samesite"} <= attributes
        assert "SameSite=Lax" in cookie
        assert "Path=/;" in cookie + ";"
        assert "domain" not in attributes
        assert client.get("/", base_url=HTTPS).status_code == 200
    finally:
        dispose(other)



def _get_pages(app: Flask, values: dict[str, object]) -> list[str]:
    with app.test_request_context():
        return sorted(url_for(rule.endpoint, **url_values(rule, values))
                      for rule in app.url_map.iter_rules()
                      if "GET" in rule.methods and rule.endpoint != "static")


@pytest.mark.parametrize("role", list(Role))
def test_pages_have_no_inline_script_or_style(app, cast, role):
    """It serves every page a role can reach (and the refusals it cannot)
    without scripts or style attributes, which the CSP would block."""
    client = app.test_client()
    AuthActions(client, app).login(IDENTIFIERS[role])
    values = {**cast, "token": "made-up-token-0123456789"}
    checked = 0
    for path in _get_pages(app, values):
        response = client.get(path, follow_redirects=True)
        if response.mimetype == "text/html":
            assert_csp_safe(path, response.data)
            checked += 1
    assert checked >= 10


def test_setup_pages_have_no_inline_script_or_style(app, client, auth, cast):
    """It serves the two-step set-up page (inline SVG QR code) and a real
    invite page without scripts or style attributes."""
    from core import accounts
    from core.models import User
    from outcomes.services import current_study

    auth.login("peer_moderator@example.org")
    response = client.get("/account/two-step")
    assert response.status_code == 200
    assert b"<svg" in response.data
    assert_csp_safe("/account/two-step", response.data)
    auth.logout()
    with app.app_context():
        researcher = db.session.scalar(db.select(User).where(User.role == Role.RESEARCHER))
        issued = accounts.enrol_participant(current_study(), actor=researcher)
        db.session.commit()
        token = issued.token
    response = client.get(f"/invite/{token}")
    assert response.status_code == 200
    assert_csp_safe("/invite/<token>", response.data)


@pytest.mark.parametrize("path", ["/account", "/help"])
def test_database_down_page_renders_for_a_signed_in_visitor(app, client, auth, cast, path):
    """It shows the friendly 503 page, with the headers, to someone whose
    session cookie cannot be checked because the database is unreachable."""
    auth.login("T-0001")
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"], domain="kinship.test")
    other = fresh_app(app, TESTING=False, PROPAGATE_EXCEPTIONS=False,
                      SQLALCHEMY_DATABASE_URI="postgresql://kinship:x@127.0.0.1:9/unreachable")
    try:
        down = other.test_client()
        down.set_cookie(other.config["SESSION_COOKIE_NAME"], cookie.value, domain="kinship.test")
        response = down.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 503
        assert "Kinship is taking a short break" in body
        assert "Traceback" not in body and "127.0.0.1" not in body
        assert_security_headers(response)
    finally:
        dispose(other)
    after = down.get_cookie(other.config["SESSION_COOKIE_NAME"], domain="kinship.test")
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], after.value, domain="kinship.test")
    assert client.get("/account").status_code == 200, "the outage signed the visitor out"


def test_server_error_page_is_friendly_and_reveals_nothing(app):
    """It answers an unexpected exception with the friendly 500 page: no
    traceback, no exception text, no secret key, headers still set."""
    other = fresh_app(app, TESTING=False, PROPAGATE_EXCEPTIONS=False)
    secret = other.config["SECRET_KEY"]

    @other.route("/boom")
    def boom():
        raise RuntimeError(f"kaboom with {secret}")

    try:
        response = other.test_client().get("/boom")
        body = response.get_data(as_text=True)
        assert response.status_code == 500
        assert "Sorry, something went wrong on our side" in body
        assert "Traceback" not in body
        assert "kaboom" not in body
        assert secret not in body
        assert_security_headers(response)
        assert_csp_safe("/boom", response.data)
    finally:
        dispose(other)
