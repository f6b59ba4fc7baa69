"""Helpers for the sign-in tests: every guarded request, the session cookie, TOTP codes."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from flask import Flask, url_for
from werkzeug.routing import AnyConverter, IntegerConverter

from core.access import PUBLIC, roles_of
from core.clock import utcnow

#: the steps themselves: they run with ``gates=False`` and decide on their own
GATE_STEPS = {"core.logout", "core.mfa_verify", "core.mfa_setup", "core.reconsent"}


def guarded_requests(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every route that needs a signed-in user, except the gate steps.

    Arguments are filled with a placeholder (id 1, the first ``any()`` choice): the
    gates run before the view loads anything, so the record need not exist.
    """
    requests = []
    for rule in app.url_map.iter_rules():
        access = roles_of(app.view_functions[rule.endpoint])
        if access in (None, PUBLIC) or rule.endpoint in GATE_STEPS:
            continue
        values = {name: _placeholder(conv) for name, conv in rule._converters.items()}
        with app.test_request_context():
            path = url_for(rule.endpoint, **values, _external=False)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            requests.append((method, path))
    return requests


def _placeholder(converter: object) -> object:
    if isinstance(converter, IntegerConverter):
        return 1
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    return "x"


def session_cookie(client, app: Flask):
    """The browser's session cookie (a werkzeug ``Cookie``), or None."""
    return client.get_cookie(app.config["SESSION_COOKIE_NAME"], domain=app.config["SERVER_NAME"])


def put_session_cookie(client, app: Flask, value: str) -> None:
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], value, domain=app.config["SERVER_NAME"])


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).at(utcnow())


def wrong_code(secret: str) -> str:
    """A 6-digit code that no step around now accepts."""
    totp = pyotp.TOTP(secret)
    valid = {totp.at(utcnow() + timedelta(seconds=30 * k)) for k in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(1000) if f"{n:06d}" not in valid)


#: URL values for route parameters that the cross-cutting tests (role matrix, CSRF,
#: headers, crisis link) do not create objects for; a missing object answers 404 or a
#: redirect, which those tests accept for the roles that may use the route
DEFAULT_URL_VALUES: dict[str, object] = {
    "module_key": "no-such-module", "step_key": "no-such-step", "relative": "images/none.svg",
    "plan_id": 999999, "suggestion_id": 999999,
    "message_id": 999999,
    "notification_id": 999999,
    "alert_id": 999999, "rule_id": 999999, "entry_id": 999999,
    "item_id": 999999, "queue_action": "approve",
    "task_id": 999999, "template_id": 999999, "note_id": 999999,
    "checksum": "0" * 64, "figure": "none",
    "post_id": 999999, "comment_id": 999999,
    "response_id": 999999, "number": 1, "timepoint_key": "no-such-timepoint",
    "instrument_id": "no-such-instrument",
}


def url_values(rule, values: dict[str, object]) -> dict[str, object]:
    """The values for a rule's URL parameters; a new parameter needs one added here."""
    known = {**DEFAULT_URL_VALUES, **values}
    missing = sorted(rule.arguments - known.keys())
    assert not missing, f"{rule.rule}: add a value for {missing} to this test's URL values"
    return {name: known[name] for name in rule.arguments}
