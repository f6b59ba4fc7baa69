"""Contract tests: the gateway's real ``twilio`` client against Stoplight Prism serving
Twilio's official OpenAPI spec (npm: @stoplight/prism-cli, @twilio-alpha/mcp; ``make
test`` installs them). Prism answers 422 to any request the spec does not allow, so a
send that Prism accepts is a request Twilio's API documents, and the answers we parse
are the spec's own examples."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException

from core.sms import gateway as gw
from core.sms.statuses import FROM_TWILIO
from core.sms.twilio_backend import TwilioGateway

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
PRISM = REPO / "node_modules" / ".bin" / "prism"
SPEC = REPO / "node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json"
ACCOUNT = "AC" + "a" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def prism() -> Iterator[str]:
    if not PRISM.exists() or not SPEC.exists():
        pytest.fail("Prism or Twilio's OpenAPI spec is missing from node_modules: run "
                    "`make test` (it runs `npm ci`), or `npm ci` in the repository")
    if shutil.which("node") is None:
        pytest.fail("node is not installed: Prism needs Node 20")
    port = free_port()
    process = subprocess.Popen([str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port),
                                str(SPEC)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"Prism exited with code {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("Prism did not start listening within 60 seconds")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def gateway(prism: str, sender: str = "+15005550006") -> TwilioGateway:
    return TwilioGateway(account_sid=ACCOUNT, auth_token="token", sender=sender,
                         timeout=10, api_base=prism, backoff_seconds=0.01)


def violations(g: TwilioGateway) -> list[dict]:
    """What Prism found wrong with our last request (not with its own example answer)."""
    found = json.loads(g.http._test_only_last_response.headers.get("sl-violations") or "[]")
    return [v for v in found if v.get("location", [""])[0] == "request"]


def test_send_is_a_request_the_spec_allows_and_the_answer_parses(prism):
    g = gateway(prism)
    result = g.send(to="+447700900123", body="How lonely did you feel today? Reply 0-10",
                    status_callback="https://kinship.example.org/sms/twilio/status/1")
    assert result.outcome == gw.ACCEPTED, result
    assert violations(g) == []
    assert result.sid.startswith("SM") and len(result.sid) == 34
    assert result.status in FROM_TWILIO


def test_send_with_a_messaging_service(prism):
    g = gateway(prism, sender="MG" + "b" * 32)
    result = g.send(to="+447700900123", body="Hello", status_callback=None)
    assert result.outcome == gw.ACCEPTED and violations(g) == []


def test_fetch_by_sid_parses_the_spec_example(prism):
    g = gateway(prism)
    remote = g.fetch("SM" + "c" * 32)
    assert remote is not None and violations(g) == []
    assert remote.sid.startswith("SM") and remote.status in FROM_TWILIO
    assert remote.created_at is None or remote.created_at.tzinfo is not None


def test_listing_for_reconciliation_parses_the_spec_example(prism):
    g = gateway(prism)
    found = g.find(to="+447700900123", body="no such text",
                   created_after=datetime(2000, 1, 1, tzinfo=UTC))
    assert found == [] and violations(g) == []
    assert g.http._test_only_last_response.status_code == 200


def test_a_request_outside_the_spec_is_refused(prism):
    """Prism refuses a create the spec does not allow (422), so the accepted sends above
    were checked against the spec; the gateway treats such a 4xx as REJECTED."""
    g = gateway(prism)
    with pytest.raises(TwilioRestException) as info:
        g.client.messages.create(to="+447700900123", from_="+15005550006", body="Hello",
                                 validity_period="forever")
    assert info.value.status == 422
    assert g._refusal(info.value).outcome == gw.REJECTED
