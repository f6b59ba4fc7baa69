"""Friendly error pages that never show a stack trace or a secret."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from core.extensions import db, login_manager

MESSAGES = {
    400: ("Something was wrong with that request",
          "Please go back and try again. If it keeps happening, tell the study team."),
    403: ("This page is not available to you",
          "Your account does not have access to this page. If you think it should, tell the "
          "study team."),
    404: ("We could not find that page",
          "The link may be old or mistyped. Try the home page instead."),
    405: ("That did not work", "Please go back and use the buttons on the page."),
    413: ("That was too large", "Please send something smaller."),
    429: ("Please slow down", "You have tried that many times. Wait a little and try again."),
    500: ("Sorry, something went wrong on our side",
          "It is not your fault and nothing you did was lost on purpose. Please try again in a "
          "minute. If it keeps happening, tell the study team."),
    503: ("Kinship is taking a short break",
          "We cannot reach our database just now. Please try again in a few minutes."),
}


#: how long a client is asked to wait before trying again while the database is away
RETRY_AFTER_SECONDS = 30


def _render(code: int, detail: str | None = None, template: str = "core/error.html"):
    title, message = MESSAGES.get(code, MESSAGES[500])
    return render_template(template, code=code, title=title, message=message,
                           detail=detail), code


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return _render(400, "The form expired or was sent from somewhere else. "
                            "Please reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        detail = exc.description if exc.code == 503 and isinstance(exc.description, str) else None
        return _render(exc.code, detail)

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError):
        db.session.rollback()
        # render as if signed out: loading the signed-in user needs the database too, and
        # failing again here would replace this page with the server's bare error
        login_manager._update_request_context_with_user()
        app.logger.error("database unavailable on %s: %s", request.endpoint,
                         type(exc.orig).__name__)
        page, code = _render(503, template="core/errors/503.html")
        return page, code, {"Retry-After": str(RETRY_AFTER_SECONDS)}

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error on %s", request.endpoint)
        return _render(500)
