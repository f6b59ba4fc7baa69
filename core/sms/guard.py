"""Start-up checks of the SMS settings (run when the ``sms`` blueprint is registered)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from core.sms.gateway import BACKENDS

LOOPBACK = ("127.", "localhost", "::1", "0.0.0.0")  # noqa: S104 - names, not a bind


def config_problems(config: dict[str, Any]) -> list[str]:
    backend = config.get("SMS_BACKEND", "console")
    if backend not in BACKENDS:
        return [f"SMS_BACKEND must be one of {', '.join(BACKENDS)} (it is {backend!r})"]
    if backend != "twilio":
        return []
    problems = []
    if not config.get("TWILIO_ACCOUNT_SID") or not config.get("TWILIO_AUTH_TOKEN"):
        problems.append("SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    if not (config.get("TWILIO_FROM") or config.get("TWILIO_MESSAGING_SERVICE_SID")):
        problems.append("SMS_BACKEND=twilio needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")
    if config.get("KINSHIP_ENV") == "production":
        url = urlsplit(config.get("PUBLIC_URL") or "")
        if url.scheme != "https" or not url.hostname or url.hostname.startswith(LOOPBACK):
            problems.append("SMS_BACKEND=twilio needs PUBLIC_URL set to the site's public "
                            "https:// address (Twilio calls the webhooks there, and "
                            "signatures are checked against it)")
    return problems


def check(app: Any) -> None:
    from core.security import UnsafeConfiguration

    problems = config_problems(app.config)
    if problems:
        raise UnsafeConfiguration("refusing to start: " + "; ".join(problems))
