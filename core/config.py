"""Configuration from environment variables, with documented defaults.

Every variable is listed in README.md. ``load_config`` returns a plain dict that
``create_app`` applies; ``test_config`` overrides it.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

#: the placeholder that the production guard refuses
DEFAULT_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105 - the value the guard refuses
#: signs the console SMS backend's own webhook calls in development (never used in production)
DEV_TWILIO_AUTH_TOKEN = "dev-console-twilio-auth-token"  # noqa: S105 - development only


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _dev_secret_key(instance_path: Path) -> str:
    """A per-checkout random key for development, kept in ``instance/secret_key``."""
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def load_config(instance_path: Path) -> dict[str, Any]:
    env = os.environ.get("KINSHIP_ENV", "development")
    production = env == "production"
    secret = os.environ.get("SECRET_KEY") or (
        DEFAULT_SECRET_KEY if production else _dev_secret_key(instance_path)
    )
    database_url = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{instance_path / 'kinship.sqlite3'}"
    )
    https = _flag("KINSHIP_HTTPS", production)
    absolute_hours = _int("SESSION_ABSOLUTE_HOURS", 12)
    return {
        "KINSHIP_ENV": env,
        "DEBUG": _flag("FLASK_DEBUG"),
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "KINSHIP_ALLOW_SQLITE": _flag("KINSHIP_ALLOW_SQLITE"),
        # psycopg prepares a statement once a connection has run it this many times
        # (core.transactions); "off" for PgBouncer in transaction mode before 1.22
        "DATABASE_PREPARE_THRESHOLD": _prepare_threshold(
            os.environ.get("DATABASE_PREPARE_THRESHOLD", "5")),
        "KINSHIP_DEMO": _flag("KINSHIP_DEMO"),
        "KINSHIP_HTTPS": https,
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000"),
        "SESSION_COOKIE_SECURE": https,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "__Host-kinship" if https else "kinship",
        "REMEMBER_COOKIE_SECURE": https,
        "SESSION_IDLE_MINUTES": _int("SESSION_IDLE_MINUTES", 30),
        "SESSION_ABSOLUTE_HOURS": absolute_hours,
        # the cookie ends with the longest a session row can live (core.auth.check_session
        # enforces idle and absolute limits on the row), so it need not be re-signed and
        # re-sent on every response
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=absolute_hours),
        "SESSION_REFRESH_EACH_REQUEST": False,
        "INVITE_VALID_DAYS": _int("INVITE_VALID_DAYS", 14),
        "LOGIN_MAX_FAILURES_ACCOUNT": _int("LOGIN_MAX_FAILURES_ACCOUNT", 5),
        "LOGIN_MAX_FAILURES_IP": _int("LOGIN_MAX_FAILURES_IP", 30),
        "LOGIN_LOCK_MINUTES": _int("LOGIN_LOCK_MINUTES", 15),
        "DEFAULT_PHONE_REGION": os.environ.get("DEFAULT_PHONE_REGION", "GB"),
        "DEFAULT_TIMEZONE": os.environ.get("DEFAULT_TIMEZONE", "Europe/London"),
        "ARGON2_TIME_COST": _int("ARGON2_TIME_COST", 3),
        "ARGON2_MEMORY_COST": _int("ARGON2_MEMORY_COST", 65536),
        "SCHEDULER_STANDBY_POLL_SECONDS": float(
            os.environ.get("SCHEDULER_STANDBY_POLL_SECONDS", "5")
        ),
        "SCHEDULER_HEARTBEAT_SECONDS": float(os.environ.get("SCHEDULER_HEARTBEAT_SECONDS", "15")),
        #: how many reverse proxies (nginx) sit in front; their X-Forwarded-For/Proto are trusted
        "PROXY_HOPS": _int("PROXY_HOPS", 0),
        # SMS (core.sms): "console" keeps texts on the developer SMS inbox; "twilio" sends
        "SMS_BACKEND": os.environ.get("SMS_BACKEND", "console").strip().lower(),
        "TWILIO_ACCOUNT_SID": os.environ.get("TWILIO_ACCOUNT_SID", ""),
        # console mode signs its own webhook calls with this development token
        "TWILIO_AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN")
        or ("" if production else DEV_TWILIO_AUTH_TOKEN),
        "TWILIO_FROM": os.environ.get("TWILIO_FROM", ""),
        "TWILIO_MESSAGING_SERVICE_SID": os.environ.get("TWILIO_MESSAGING_SERVICE_SID", ""),
        "TWILIO_API_BASE": os.environ.get("TWILIO_API_BASE", ""),
        "SMS_TIMEOUT_SECONDS": float(os.environ.get("SMS_TIMEOUT_SECONDS", "10")),
        "SMS_RETRY_ATTEMPTS": _int("SMS_RETRY_ATTEMPTS", 4),
        "SMS_RETRY_BACKOFF_SECONDS": float(os.environ.get("SMS_RETRY_BACKOFF_SECONDS", "1")),
        "SMS_MAX_PER_PARTICIPANT_PER_DAY": _int("SMS_MAX_PER_PARTICIPANT_PER_DAY", 8),
        "SMS_SEND_RATE_PER_SECOND": float(os.environ.get("SMS_SEND_RATE_PER_SECOND", "10")),
        "SMS_DISPATCH_BATCH": _int("SMS_DISPATCH_BATCH", 50),
        "SMS_DISPATCH_THREADS": _int("SMS_DISPATCH_THREADS", 4),
        "SMS_DISPATCH_MAX_SECONDS": float(os.environ.get("SMS_DISPATCH_MAX_SECONDS", "50")),
        "SMS_RECONCILE_AFTER_SECONDS": _int("SMS_RECONCILE_AFTER_SECONDS", 120),
        "SMS_STUCK_AFTER_SECONDS": _int("SMS_STUCK_AFTER_SECONDS", 600),
        # core.pagecache: how old a cached page may grow (0: off) and each process's room
        "PAGE_CACHE_SECONDS": float(os.environ.get("PAGE_CACHE_SECONDS", "30")),
        "PAGE_CACHE_MEGABYTES": float(os.environ.get("PAGE_CACHE_MEGABYTES", "32")),
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    }


def _prepare_threshold(value: str) -> int | None:
    value = value.strip().lower()
    if not value:  # set but empty: the default, as for every other number here
        return 5
    if value in {"off", "none", "no", "false"}:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"DATABASE_PREPARE_THRESHOLD must be a whole number or 'off', "
                         f"not {value!r}") from None
    if number < 0:
        raise ValueError("DATABASE_PREPARE_THRESHOLD must not be negative")
    return number


def normalise_database_url(url: str) -> str:
    """Send ``postgres://`` and ``postgresql://`` URLs to psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")
