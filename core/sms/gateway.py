"""The gateway interface: what the dispatcher needs from an SMS provider.

Two backends implement it: ``core.sms.twilio_backend`` (the real ``twilio`` client) and
``core.sms.console_backend`` (the embedded default: nothing leaves the machine; texts
show on the developer SMS inbox page). ``SMS_BACKEND`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from flask import Flask, current_app

#: a send's outcome
ACCEPTED = "accepted"   # the provider created the message (sid known)
REJECTED = "rejected"   # the provider refused it for good (4xx, e.g. 21610): nothing was sent
RETRY = "retry"         # certainly not created (429 or no connection after retries): try later
UNKNOWN = "unknown"     # may or may not exist (5xx, timeout): reconcile, never resend blindly


@dataclass(frozen=True)
class SendResult:
    outcome: str
    sid: str | None = None
    #: the provider's status word (Twilio's "queued", "accepted", ...)
    status: str | None = None
    error_code: int | None = None


@dataclass(frozen=True)
class RemoteMessage:
    """A message as the provider knows it (for reconciliation)."""

    sid: str
    status: str
    to: str
    body: str
    created_at: datetime | None
    error_code: int | None = None


class LookupFailed(Exception):
    """The provider could not be asked (network, 5xx): try again at the next run."""


class Gateway(Protocol):
    def send(self, *, to: str, body: str, status_callback: str | None) -> SendResult: ...

    def fetch(self, sid: str) -> RemoteMessage | None: ...

    def find(self, *, to: str, body: str, created_after: datetime) -> list[RemoteMessage]:
        """Messages to ``to`` with ``body`` created at or after ``created_after``."""
        ...


BACKENDS = ("console", "twilio")


def get_gateway(app: Flask | None = None) -> Gateway:
    """The configured backend, built once per app and kept in ``app.extensions``."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    gateway = app.extensions.get("kinship_sms_gateway")
    if gateway is None:
        gateway = build_gateway(app.config)
        app.extensions["kinship_sms_gateway"] = gateway
    return gateway


def build_gateway(config: dict) -> Gateway:
    backend = config.get("SMS_BACKEND", "console")
    if backend == "twilio":
        from core.sms.twilio_backend import TwilioGateway

        return TwilioGateway.from_config(config)
    if backend == "console":
        from core.sms.console_backend import ConsoleGateway

        return ConsoleGateway()
    raise ValueError(f"SMS_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}")
