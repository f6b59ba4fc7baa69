"""Security headers on every response and the production start-up guard."""

from __future__ import annotations

from flask import Flask, Response, abort, request
from flask_login import current_user

from core.config import DEFAULT_SECRET_KEY, is_sqlite

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class UnsafeConfiguration(RuntimeError):
    """Raised at start-up when production settings are unsafe."""


def check_production_config(app: Flask) -> None:
    """Refuse to start in production with settings that would leak data."""
    if app.config["KINSHIP_ENV"] != "production" or app.testing:
        return
    problems = []
    if app.debug or app.config.get("DEBUG"):
        problems.append("debug mode is on (unset FLASK_DEBUG)")
    secret = app.config.get("SECRET_KEY") or ""
    if secret == DEFAULT_SECRET_KEY or len(secret) < 32:
        problems.append("SECRET_KEY is missing, the default, or shorter than 32 characters")
    if is_sqlite(app.config["SQLALCHEMY_DATABASE_URI"]) and not app.config["KINSHIP_ALLOW_SQLITE"]:
        problems.append("the database is SQLite; set DATABASE_URL to PostgreSQL, or "
                        "KINSHIP_ALLOW_SQLITE=1 to accept SQLite on purpose")
    if app.config["KINSHIP_DEMO"]:
        problems.append("demo mode is on (unset KINSHIP_DEMO)")
    if problems:
        raise UnsafeConfiguration("refusing to start in production: " + "; ".join(problems))


def refuse_nul_bytes() -> None:
    """A NUL byte is never part of what anyone types, and PostgreSQL refuses to store it:
    answer 400 before any view sees it (rather than a 500 when it reaches the database)."""
    values = [*request.args.values(), *request.form.values()] if request.method != "GET" \
        else list(request.args.values())
    if any("\x00" in value for value in values):
        abort(400)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure or _https_configured():
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    if current_user and current_user.is_authenticated and request.endpoint != "static":
        headers["Cache-Control"] = "no-store"
    return response


def _https_configured() -> bool:
    from flask import current_app

    return bool(current_app.config.get("KINSHIP_HTTPS"))
