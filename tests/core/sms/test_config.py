"""The SMS settings: defaults, and the start-up refusal of a Twilio backend that cannot
work (no credentials, no sender, or in production no public https address)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import create_app
from core.config import DEV_TWILIO_AUTH_TOKEN, load_config
from core.security import UnsafeConfiguration
from core.sms.guard import config_problems

TWILIO = {"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
          "TWILIO_AUTH_TOKEN": "secret", "TWILIO_FROM": "+15005550006"}


def test_defaults_are_the_console_backend_with_a_dev_token(monkeypatch, tmp_path: Path):
    for name in ("SMS_BACKEND", "TWILIO_AUTH_TOKEN", "KINSHIP_ENV"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(tmp_path)
    assert config["SMS_BACKEND"] == "console"
    assert config["TWILIO_AUTH_TOKEN"] == DEV_TWILIO_AUTH_TOKEN
    monkeypatch.setenv("KINSHIP_ENV", "production")
    assert load_config(tmp_path)["TWILIO_AUTH_TOKEN"] == ""  # never the dev token


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"SMS_BACKEND": "carrier-pigeon"}, "SMS_BACKEND must be one of"),
    ({"TWILIO_ACCOUNT_SID": ""}, "needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
    ({"TWILIO_AUTH_TOKEN": ""}, "needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
    ({"TWILIO_FROM": ""}, "needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID"),
    ({"KINSHIP_ENV": "production", "PUBLIC_URL": "http://127.0.0.1:5000"}, "PUBLIC_URL"),
    ({"KINSHIP_ENV": "production", "PUBLIC_URL": "http://kinship.example.org"}, "https://"),
])
def test_unworkable_sms_settings_are_named(overrides, problem):
    problems = config_problems({**TWILIO, "PUBLIC_URL": "https://kinship.example.org",
                                **overrides})
    assert any(problem in p for p in problems), problems


def test_workable_settings_pass():
    assert config_problems({"SMS_BACKEND": "console"}) == []
    assert config_problems({**TWILIO, "KINSHIP_ENV": "production",
                            "PUBLIC_URL": "https://kinship.example.org"}) == []
    service = {**TWILIO, "TWILIO_FROM": "", "TWILIO_MESSAGING_SERVICE_SID": "MG" + "b" * 32}
    assert config_problems(service) == []


def test_app_refuses_to_start_with_a_twilio_backend_it_cannot_use(tmp_path, monkeypatch):
    monkeypatch.setenv("KINSHIP_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(UnsafeConfiguration, match="TWILIO_ACCOUNT_SID"):
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                    "SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": ""})
