"""Security headers and cookie flags on every response: each route (GET where allowed,
else POST) for anonymous visitors and each role, the refusals among them, and the 404,
405 and 500 pages; error pages (400, 403, 404, 405, 500, 503) show no stack trace, SQL,
file path or secret, for anonymous visitors and for each role."""

from __future__ import annotations

import pytest
from flask import Flask, url_for
from sqlalchemy import text

from core.extensions import db
from tests.core.routes import url_values
from tests.core.test_headers import assert_csp_safe, assert_security_headers, dispose, fresh_app
from tests.security.cast import make_cast, sign_in

WHO = ["anonymous", "participant", "peer_moderator", "clinician", "researcher", "admin"]
SECRET_TEXT = "kaboom-secret-0f9e"


def _client(app: Flask, who: str):
    return app.test_client() if who == "anonymous" else sign_in(app, who)


def _calls(app: Flask, values: dict) -> list[tuple[str, str, str]]:
    result = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint in ("static", "core.logout"):
                continue
            method = "GET" if "GET" in rule.methods else "POST"
            result.append((rule.endpoint, method, url_for(rule.endpoint,
                                                          **url_values(rule, values))))
    return sorted(result)


def cookie_problems(response) -> list[str]:
    """Every Set-Cookie without HttpOnly or SameSite=Lax/Strict."""
    problems = []
    for cookie in response.headers.getlist("Set-Cookie"):
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        if "httponly" not in attributes:
            problems.append(f"not HttpOnly: {cookie[:40]}")
        if not attributes & {"samesite=lax", "samesite=strict"}:
            problems.append(f"no SameSite: {cookie[:40]}")
    return problems


@pytest.mark.parametrize("who", WHO)
def test_every_route_sends_the_headers_and_safe_cookies(app, who):
    with app.app_context():
        cast = make_cast()
    client = _client(app, who)
    failures = []
    calls = _calls(app, {**cast.b_values, "token": "made-up-token-0123456789",
                         "action": "sign_out"})
    for _endpoint, method, path in calls:
        response = client.open(path, method=method)
        try:
            assert_security_headers(response)
        except AssertionError:
            failures.append(f"{method} {path}: headers missing {dict(response.headers)}")
        failures += [f"{method} {path}: {p}" for p in cookie_problems(response)]
        if who != "anonymous" and response.headers.get("Cache-Control") != "no-store":
            failures.append(f"{method} {path}: signed-in answer without no-store")
        if response.status_code >= 500:
            failures.append(f"{method} {path}: {response.status_code}")
    assert len(calls) > 50
    assert failures == [], f"{who}:\n" + "\n".join(failures)


def assert_reveals_nothing(app: Flask, body: str, *extra: str) -> None:
    secrets = [app.config["SECRET_KEY"], app.config["SQLALCHEMY_DATABASE_URI"],
               app.root_path, "Traceback", 'File "', "sqlalchemy", "SELECT ", "werkzeug",
               "psycopg", "sqlite3", *extra]
    shown = [s for s in secrets if s and s.lower() in body.lower()]
    assert shown == [], f"error page shows {shown}"


@pytest.mark.parametrize("who", WHO)
def test_error_pages_reveal_nothing(app, who):
    """404, 405, 403 and the CSRF 400: friendly, with headers, nothing internal."""
    with app.app_context():
        make_cast()
    client = _client(app, who)
    pages = [("GET", "/no-such-page", 404), ("GET", "/logout", 405),
             ("PUT", "/login", 405), ("GET", "/admin/audit", 403 if who != "admin" else 200)]
    if who == "anonymous":
        pages[-1] = ("GET", "/admin/audit", 302)
    for method, path, status in pages:
        response = client.open(path, method=method)
        assert response.status_code == status, (path, response.status_code)
        assert_security_headers(response)
        if status >= 400:
            body = response.get_data(as_text=True)
            assert_reveals_nothing(app, body)
            assert_csp_safe(path, response.data)
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/login", data={"identifier": "x", "password": "y"})
    assert response.status_code == 400
    assert b"The form expired" in response.data
    assert_reveals_nothing(app, response.get_data(as_text=True))
    assert_security_headers(response)


def _broken(kind: str):
    def view(**kwargs):
        if kind == "sql":  # a real failing statement, with its text in the exception
            db.session.execute(text(f"SELECT password_hash, '{SECRET_TEXT}' FROM no_such_tbl"))
        raise RuntimeError(f"{SECRET_TEXT} at /etc/kinship/secret.key")
    return view


@pytest.mark.parametrize("kind", ["exception", "sql"])
@pytest.mark.parametrize("who", WHO)
def test_a_failing_real_view_shows_the_friendly_page(app, who, kind):
    """A real route (the help page, and the signed-in home page) whose view raises: a
    friendly 500 (or 503 for a database error) with headers, and no exception text,
    SQL, path or secret, for anonymous visitors and each role."""
    with app.app_context():
        make_cast()
    other = fresh_app(app, TESTING=False, PROPAGATE_EXCEPTIONS=False)
    try:
        client = _client(other, who)
        for endpoint in ("core.crisis", "core.home"):
            access = getattr(other.view_functions[endpoint], "access", None)
            broken = _broken(kind)
            broken.access = access
            other.view_functions[endpoint] = broken
        for path in ("/help", "/") if who != "anonymous" else ("/help",):
            response = client.get(path)
            body = response.get_data(as_text=True)
            assert response.status_code in (500, 503), (path, response.status_code)
            assert "Sorry, something went wrong" in body or "short break" in body
            assert_reveals_nothing(other, body, SECRET_TEXT, "no_such_tbl", "/etc/kinship")
            assert_security_headers(response)
            assert_csp_safe(path, response.data)
            assert not cookie_problems(response)
    finally:
        dispose(other)
