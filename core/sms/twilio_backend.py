"""The Twilio backend: the real ``twilio`` client with an explicit timeout, our own retry
on 429 and on connections that never opened, and no phone number or body in any log.

``twilio`` has no default HTTP timeout, and its ``max_retries`` never retries 429 or
5xx, so both are done here. What a failure means for the dispatcher:

- 429, or a connection that could not be opened: the message was certainly not created;
  retried with exponential backoff, then handed back as ``RETRY`` (the row waits);
- another 4xx (e.g. 21610 "replied STOP", 21211 "not a valid number"): ``REJECTED``;
- 5xx, a read timeout, a broken connection or an unreadable answer: the message may
  exist, so ``UNKNOWN`` (reconciliation looks for it; it is never resent blindly).

``TWILIO_API_BASE`` points the client at a local stand-in (tests, the benchmark): every
request to ``https://api.twilio.com`` goes there instead.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from core.sms.gateway import (
    ACCEPTED,
    REJECTED,
    RETRY,
    UNKNOWN,
    LookupFailed,
    RemoteMessage,
    SendResult,
)

log = logging.getLogger("kinship.sms.twilio")

TWILIO_API = "https://api.twilio.com"


class RedactQueries(logging.Filter):
    """Strip query strings (``?To=%2B44...``) from urllib3's debug lines about requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(arg.split("?", 1)[0] if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


_redact = RedactQueries()


def quiet_urllib3() -> None:
    """Install the filter once on the logger that names every request URL."""
    pool_log = logging.getLogger("urllib3.connectionpool")
    if _redact not in pool_log.filters:
        pool_log.addFilter(_redact)


class QuietHttpClient(TwilioHttpClient):
    """``TwilioHttpClient`` that logs only the method and path (twilio's own logs carry
    query strings such as ``To=+44...``) and can send requests to a stand-in host."""

    def __init__(self, *, timeout: float, api_base: str | None = None) -> None:
        super().__init__(timeout=timeout, logger=log)
        quiet_urllib3()
        self.api_base = api_base.rstrip("/") if api_base else None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.api_base and url.startswith(TWILIO_API):
            url = self.api_base + url[len(TWILIO_API):]
        return super().request(method, url, *args, **kwargs)

    def log_request(self, kwargs: dict[str, Any]) -> None:
        log.debug("twilio request %s %s", kwargs["method"], urlsplit(kwargs["url"]).path)

    def log_response(self, status_code: int, response: Any) -> None:
        log.debug("twilio response %s", status_code)


def _never_connected(exc: requests.RequestException) -> bool:
    """Whether the request certainly never reached Twilio (safe to send again)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        # urllib3 wraps "connection refused"/DNS failures as NewConnectionError
        return type(reason).__name__ in ("NewConnectionError", "NameResolutionError")
    return False


class TwilioGateway:
    def __init__(self, *, account_sid: str, auth_token: str, sender: str, timeout: float,
                 api_base: str | None = None, max_attempts: int = 4,
                 backoff_seconds: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.http = QuietHttpClient(timeout=timeout, api_base=api_base)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        #: a messaging service sid (MG...) or a phone number in E.164
        self.sender = sender
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TwilioGateway:
        sender = config.get("TWILIO_MESSAGING_SERVICE_SID") or config.get("TWILIO_FROM") or ""
        return cls(account_sid=config.get("TWILIO_ACCOUNT_SID") or "",
                   auth_token=config.get("TWILIO_AUTH_TOKEN") or "", sender=sender,
                   timeout=float(config.get("SMS_TIMEOUT_SECONDS", 10)),
                   api_base=config.get("TWILIO_API_BASE") or None,
                   max_attempts=int(config.get("SMS_RETRY_ATTEMPTS", 4)),
                   backoff_seconds=float(config.get("SMS_RETRY_BACKOFF_SECONDS", 1.0)))

    # --- sending ---------------------------------------------------------------------

    def send(self, *, to: str, body: str, status_callback: str | None) -> SendResult:
        params: dict[str, Any] = {"to": to, "body": body}
        if status_callback:
            params["status_callback"] = status_callback
        if self.sender.startswith("MG"):
            params["messaging_service_sid"] = self.sender
        else:
            params["from_"] = self.sender
        for attempt in range(1, self.max_attempts + 1):
            result = self._send_once(params)
            if result.outcome != RETRY or attempt == self.max_attempts:
                return result
            self._back_off(attempt)
        raise AssertionError("unreachable")

    def _send_once(self, params: dict[str, Any]) -> SendResult:
        try:
            message = self.client.messages.create(**params)
        except TwilioException as exc:
            return self._refusal(exc)
        except requests.RequestException as exc:
            if _never_connected(exc):
                log.warning("twilio: could not connect (%s)", type(exc).__name__)
                return SendResult(RETRY)
            log.warning("twilio: no answer (%s): outcome unknown", type(exc).__name__)
            return SendResult(UNKNOWN)
        except ValueError:  # a 2xx whose body is not the JSON we expect
            log.warning("twilio: unreadable answer: outcome unknown")
            return SendResult(UNKNOWN)
        return SendResult(ACCEPTED, sid=message.sid, status=_word(message.status))

    @staticmethod
    def _refusal(exc: TwilioException) -> SendResult:
        status = getattr(exc, "status", None)
        code = getattr(exc, "code", None)
        code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
        if status == 429:
            log.warning("twilio: 429 too many requests (code %s)", code)
            return SendResult(RETRY, error_code=code)
        if isinstance(status, int) and 400 <= status < 500:
            log.warning("twilio: refused with %s (code %s)", status, code)
            return SendResult(REJECTED, error_code=code)
        log.warning("twilio: server error %s (code %s): outcome unknown", status, code)
        return SendResult(UNKNOWN, error_code=code)

    def _back_off(self, attempt: int) -> None:
        delay = self.backoff_seconds * (2 ** (attempt - 1))
        self.sleep(delay * random.uniform(0.8, 1.2))

    # --- looking messages up (reconciliation) -------------------------------------------

    def fetch(self, sid: str) -> RemoteMessage | None:
        try:
            return _remote(self.client.messages(sid).fetch())
        except TwilioException as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise LookupFailed(f"twilio status {getattr(exc, 'status', None)}") from exc
        except (requests.RequestException, ValueError) as exc:
            raise LookupFailed(type(exc).__name__) from exc

    def find(self, *, to: str, body: str, created_after: datetime) -> list[RemoteMessage]:
        # one page of the newest messages to that number (DateSent filters would hide
        # still-queued ones, and following pages is not needed this soon after the send)
        try:
            found = list(self.client.messages.page(to=to, page_size=100))
        except (TwilioException, requests.RequestException, ValueError) as exc:
            raise LookupFailed(type(exc).__name__) from exc
        earliest = created_after - timedelta(minutes=1)  # clocks differ a little
        return [remote for remote in map(_remote, found)
                if remote.body == body and (remote.created_at is None
                                            or remote.created_at >= earliest)]


def _word(status: Any) -> str:
    return str(getattr(status, "value", status) or "")


def _remote(message: Any) -> RemoteMessage:
    code = message.error_code
    return RemoteMessage(sid=message.sid, status=_word(message.status), to=message.to or "",
                         body=message.body or "", created_at=message.date_created,
                         error_code=int(code) if code not in (None, "") else None)
