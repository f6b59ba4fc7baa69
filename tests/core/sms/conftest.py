"""Fixtures for the SMS gateway tests: a texting participant, the fake Twilio, the app
pointed at it, and a way to post signed webhooks as Twilio does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twilio.request_validator import RequestValidator

from core.extensions import db
from core.sms import hooks
from tests.core.sms import fake_twilio
from tests.factories import make_participant

PHONE = "+447700900123"
OTHER_PHONE = "+447700900456"


def texting_participant(code: str = "T-0001", phone: str = PHONE, **kwargs):
    """A participant with a mobile number and SMS consent (commits)."""
    participant = make_participant(code=code, name=kwargs.pop("name", f"Quiet {code[-4:]}x"),
                                   **kwargs)
    participant.phone = phone
    participant.sms_consent = True
    db.session.commit()
    return participant


@pytest.fixture
def fake() -> Iterator[fake_twilio.FakeTwilioServer]:
    server = fake_twilio.start()
    yield server
    server.shutdown()
    server.server_close()


def use_twilio(app, fake: fake_twilio.FakeTwilioServer, **overrides) -> None:
    """Point ``app`` at the fake Twilio through the real twilio client."""
    app.config.update({
        "SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": fake_twilio.ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": fake_twilio.AUTH_TOKEN, "TWILIO_FROM": fake_twilio.FROM,
        "TWILIO_API_BASE": fake.url, "SMS_TIMEOUT_SECONDS": 0.5,
        "SMS_RETRY_BACKOFF_SECONDS": 0.01, "SMS_SEND_RATE_PER_SECOND": 0, **overrides})
    app.extensions.pop("kinship_sms_gateway", None)


@pytest.fixture
def twilio_app(app, fake):
    use_twilio(app, fake)
    return app


@pytest.fixture(autouse=True)
def _clean_hooks() -> Iterator[None]:
    """Each test starts with no handlers (other packages register theirs at import) and
    registers its own; the registries are restored afterwards."""
    saved = (list(hooks.inbound_handlers), list(hooks.opt_out_handlers), list(hooks._help_text))
    hooks.inbound_handlers.clear()
    hooks.opt_out_handlers.clear()
    hooks._help_text.clear()
    yield
    hooks.inbound_handlers[:], hooks.opt_out_handlers[:], hooks._help_text[:] = saved


def signed_post(client, app, path: str, params: dict[str, str], *, token: str | None = None,
                url: str | None = None, signature: str | None = None):
    """POST ``params`` to ``path`` with the signature Twilio would compute for
    ``PUBLIC_URL + path`` (or ``url``) using the auth token (or ``token``)."""
    token = token if token is not None else app.config["TWILIO_AUTH_TOKEN"]
    url = url or app.config["PUBLIC_URL"].rstrip("/") + path
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def inbound_params(body: str, *, sid: str = "SM" + "1" * 32, phone: str = PHONE) -> dict:
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": fake_twilio.ACCOUNT_SID,
            "From": phone, "To": fake_twilio.FROM, "Body": body, "NumMedia": "0"}
