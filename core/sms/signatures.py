"""Twilio request signatures (``X-Twilio-Signature``), checked against the configured
``PUBLIC_URL`` rather than the URL this process sees, so they hold behind a proxy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Request, current_app
from twilio.request_validator import RequestValidator

HEADER = "X-Twilio-Signature"


def public_url(path: str, query: str = "") -> str:
    url = current_app.config["PUBLIC_URL"].rstrip("/") + path
    return f"{url}?{query}" if query else url


def auth_token() -> str:
    return current_app.config.get("TWILIO_AUTH_TOKEN") or ""


def sign(url: str, params: Mapping[str, Any]) -> str:
    """The signature Twilio would send for a POST of ``params`` to ``url``."""
    return RequestValidator(auth_token()).compute_signature(url, dict(params))


def is_valid(request: Request) -> bool:
    signature = request.headers.get(HEADER, "")
    token = auth_token()
    if not signature or not token:
        return False
    url = public_url(request.path, request.query_string.decode("latin-1"))
    return RequestValidator(token).validate(url, request.form, signature)
