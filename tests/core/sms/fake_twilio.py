"""A tiny Twilio stand-in for tests and the benchmark: a threaded HTTP server on
127.0.0.1 that speaks enough of the Messages API (create, fetch, list) for the real
``twilio`` client, counts every request, and can be told to answer the next creates
with an error code, a 429, a 500 or a timeout (after creating the message, as a slow
Twilio would)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core import clock

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "fake-twilio-auth-token"
FROM = "+15005550006"

#: scripted answers for the next create requests
OK, TOO_MANY, SERVER_ERROR, TIMEOUT = "ok", "429", "500", "timeout"


@dataclass
class FakeState:
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: Counter = field(default_factory=Counter)
    #: (To, Body) -> how many messages were created
    created: Counter = field(default_factory=Counter)
    script: list[str] = field(default_factory=list)
    #: seconds a TIMEOUT answer sleeps before answering
    slow_seconds: float = 2.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error(code: int, status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message, "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}"}


class Handler(BaseHTTPRequestHandler):
    server: FakeTwilioServer
    protocol_version = "HTTP/1.1"
    #: answer in one segment: with Nagle and delayed ACKs every answer waits 40 ms
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:  # quiet
        return

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)  # the client may have given up (a timeout test)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        path = urlsplit(self.path).path
        state = self.server.state
        with state.lock:
            state.requests[("POST", "create")] += 1
            answer = state.script.pop(0) if state.script else OK
        if not path.endswith("/Messages.json"):
            self._reply(*_error(20404, 404, "not found"))
            return
        if answer == TOO_MANY:
            self._reply(*_error(20429, 429, "Too Many Requests"))
            return
        if answer == SERVER_ERROR:
            self._reply(*_error(20500, 500, "Internal Server Error"))
            return
        if answer.isdigit():
            self._reply(*_error(int(answer), 400, "refused"))
            return
        message = self.server.create(form)
        if answer == TIMEOUT:
            time.sleep(state.slow_seconds)  # created, but the client gives up first
        self._reply(201, message)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        state = self.server.state
        if parts.path == "/_stats":  # for a stand-in in another process (the benchmark)
            with state.lock:
                self._reply(200, {"creates": self.server.creates(),
                                  "distinct": len(state.created),
                                  "most": max(state.created.values(), default=0)})
            return
        if parts.path.endswith("/Messages.json"):
            with state.lock:
                state.requests[("GET", "list")] += 1
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            found = [m for m in state.messages.values()
                     if not query.get("To") or m["to"] == query["To"]]
            found.sort(key=lambda m: m["_created"], reverse=True)
            self._reply(200, {"messages": found, "end": max(len(found) - 1, 0), "start": 0,
                              "page": 0, "page_size": 100, "first_page_uri": parts.path,
                              "next_page_uri": None, "previous_page_uri": None,
                              "uri": parts.path})
            return
        sid = parts.path.rsplit("/", 1)[-1].removesuffix(".json")
        with state.lock:
            state.requests[("GET", "fetch")] += 1
            message = state.messages.get(sid)
        if message is None:
            self._reply(*_error(20404, 404, "The requested resource was not found"))
        else:
            self._reply(200, message)


class FakeTwilioServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = FakeState()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients that time out on purpose are not errors here

    def create(self, form: dict[str, str]) -> dict[str, Any]:
        now = clock.utcnow()  # the tests' frozen time, like the app's
        sid = "SM" + uuid.uuid4().hex
        message = {
            "sid": sid, "account_sid": ACCOUNT_SID, "to": form.get("To"),
            "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body"), "status": "queued", "num_segments": "1",
            "direction": "outbound-api", "api_version": "2010-04-01", "price": None,
            "price_unit": "USD", "error_code": None, "error_message": None,
            "date_created": format_datetime(now, usegmt=True),
            "date_updated": format_datetime(now, usegmt=True), "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
            "_created": now.timestamp(), "_callback": form.get("StatusCallback"),
        }
        with self.state.lock:
            self.state.messages[sid] = message
            self.state.created[(form.get("To"), form.get("Body"))] += 1
        return message

    def creates(self) -> int:
        return self.state.requests[("POST", "create")]


def start() -> FakeTwilioServer:
    server = FakeTwilioServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def reset(server: FakeTwilioServer) -> None:
    with server.state.lock:
        server.state.messages.clear()
        server.state.requests.clear()
        server.state.created.clear()


if __name__ == "__main__":  # python -m tests.core.sms.fake_twilio: serve until killed
    import sys

    running = FakeTwilioServer()
    print(running.url, flush=True)
    sys.stdout.close()
    running.serve_forever()
