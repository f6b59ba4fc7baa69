"""Signing in and out: throttling, server-side sessions, two-factor codes.

Services here flush; the view commits. Nothing in this module reads
``request`` or ``session``: the view passes the IP and the session id.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
from flask import current_app
from sqlalchemy import Select, exists, func, select, update
from sqlalchemy.orm import aliased

from core import audit, principal
from core.clock import utcnow
from core.events import record_event
from core.extensions import db
from core.models import LoginAttempt, Participant, RecoveryCode, User, UserSession
from core.names import display_key
from core.passwords import check_password, hash_password, needs_rehash

RECOVERY_CODE_COUNT = 10


class LoginError(Exception):
    """A sign-in that did not succeed; ``str(exc)`` is safe to show."""


class LockedOut(LoginError):
    def __init__(self, until: datetime) -> None:
        self.until = until
        minutes = max(1, math.ceil((until - utcnow()).total_seconds() / 60))
        super().__init__(
            f"Too many attempts. For your safety, signing in is paused for about "
            f"{minutes} minute{'s' if minutes != 1 else ''}. It unlocks by itself."
        )


# --- throttling --------------------------------------------------------------

def ip_key(ip: str | None) -> str:
    """A keyed hash of the client address: throttling works, the log holds no IPs."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, (ip or "unknown").encode(), hashlib.sha256).hexdigest()


def account_key(identifier: str, user: User | None) -> str:
    """Whom an attempt counts against: the account when the identifier names one (so
    its study code and display name share one count), else the casefolded text typed."""
    if user is not None:
        return f"user:{user.id}"
    return "typed:" + display_key(identifier)[:240]


def mfa_key(user: User) -> str:
    """Second-step codes are counted apart from passwords: a known password must not
    reset the count of wrong codes."""
    return f"mfa:{user.id}"


def lockout_until(key: str, ip: str | None) -> datetime | None:
    """When the account key or the address may try again, or None if not locked.

    The account's count starts again at its last success. The address's count is of its
    failures in the window less those its own account later got right from the same
    address: people at a shared clinic address who mistype and then sign in cost the
    address nothing, but someone's success with their own account no longer wipes the
    address's count, so one valid account cannot be used to try passwords on others
    without end."""
    config = current_app.config
    window = timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
    since = utcnow() - window
    last_success = db.session.scalar(select(func.max(LoginAttempt.at)).where(
        LoginAttempt.account_key == key, LoginAttempt.succeeded))
    for failures, limit in (
        (_failures(LoginAttempt.account_key == key,
                   since=max(since, last_success) if last_success else since),
         config["LOGIN_MAX_FAILURES_ACCOUNT"]),
        (_failures(LoginAttempt.ip_hash == ip_key(ip), ~_put_right_later(), since=since),
         config["LOGIN_MAX_FAILURES_IP"]),
    ):
        count, latest = db.session.execute(failures).one()
        if count >= limit:
            return latest + window
    return None


def _failures(*where: Any, since: datetime) -> Select[Any]:
    return select(func.count(), func.max(LoginAttempt.at)).where(
        *where, LoginAttempt.at > since, LoginAttempt.succeeded.is_(False))


def _put_right_later() -> Any:
    """The failed attempt's account later signed in from the same address."""
    later = aliased(LoginAttempt)
    return exists().where(later.ip_hash == LoginAttempt.ip_hash,
                          later.account_key == LoginAttempt.account_key,
                          later.succeeded, later.at > LoginAttempt.at)


def _note_attempt(key: str, ip: str | None, succeeded: bool) -> None:
    db.session.add(LoginAttempt(account_key=key, ip_hash=ip_key(ip), succeeded=succeeded))
    db.session.flush()


# --- passwords ---------------------------------------------------------------

def find_account(identifier: str) -> User | None:
    """Staff by e-mail; participants by study code, else by display name.

    The study code wins, so a display name that happens to equal someone's code
    can never make that code sign in to the wrong account."""
    ident = identifier.strip()
    if "@" in ident:
        return db.session.scalar(select(User).where(func.lower(User.email) == ident.lower()))
    by_code = db.session.scalar(
        select(User).join(Participant, Participant.user_id == User.id)
        .where(func.upper(Participant.study_code) == ident.upper())
    )
    return by_code or db.session.scalar(select(User).where(User.display_key == display_key(ident)))


def authenticate(identifier: str, password: str, *, ip: str | None) -> User:
    """Check a password, throttled per account and per address.

    Raises ``LockedOut`` or ``LoginError``; records the attempt either way.
    """
    user = find_account(identifier)
    key = account_key(identifier, user)
    until = lockout_until(key, ip)
    if until is not None:
        audit.record("login.locked", actor=user)
        raise LockedOut(until)
    ok = check_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        _note_attempt(key, ip, succeeded=False)
        audit.record("login.failed", actor=user)
        raise LoginError("That sign-in name and password do not match. Please try again.")
    if needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    _note_attempt(key, ip, succeeded=True)
    return user


def change_password(user: User, new_password: str, *, actor: User) -> None:
    user.password_hash = hash_password(new_password)
    revoke_all_sessions(user)
    audit.record("password.changed", actor=actor, target=user)


# --- sessions ----------------------------------------------------------------

@dataclass(frozen=True)
class SessionCheck:
    user: User | None
    reason: str | None = None  # "revoked", "idle", "expired"
    #: the last-seen time moved: the caller must commit it
    touched: bool = False


def open_session(user: User, *, mfa_done: bool) -> UserSession:
    """Start a server-side session after the password step (and MFA if done)."""
    now = utcnow()
    row = UserSession(id=secrets.token_urlsafe(32), user_id=user.id, created_at=now,
                      last_seen_at=now, mfa_at=now if mfa_done else None)
    db.session.add(row)
    db.session.flush()
    return row


def finish_login(user: User, row: UserSession) -> None:
    """Record a completed sign-in (after the second factor where there is one)."""
    user.last_login_at = utcnow()
    audit.record("login.succeeded", actor=user, mfa=row.mfa_at is not None)
    if user.participant is not None:
        record_event(user.participant, "login")


def check_session(session_id: str | None, user_id: int) -> SessionCheck:
    """Load the user of a live session, touching its last-seen time."""
    if not session_id:
        return SessionCheck(None, "revoked")
    row = principal.load(session_id)
    if row is None or row.user_id != user_id or row.revoked_at is not None:
        return SessionCheck(None, "revoked")
    config = current_app.config
    now = utcnow()
    if now - row.created_at > timedelta(hours=config["SESSION_ABSOLUTE_HOURS"]):
        return SessionCheck(None, "expired")
    if now - row.last_seen_at > timedelta(minutes=config["SESSION_IDLE_MINUTES"]):
        return SessionCheck(None, "idle")
    if now - row.last_seen_at > timedelta(seconds=60):
        row.last_seen_at = now
        return SessionCheck(row.user, touched=True)
    return SessionCheck(row.user)


def revoke_session(session_id: str | None) -> None:
    if session_id:
        db.session.execute(
            update(UserSession)
            .where(UserSession.id == session_id, UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


def revoke_all_sessions(user: User, *, keep: str | None = None) -> None:
    query = update(UserSession).where(UserSession.user_id == user.id,
                                      UserSession.revoked_at.is_(None))
    if keep:
        query = query.where(UserSession.id != keep)
    db.session.execute(query.values(revoked_at=utcnow()))


# --- two-factor --------------------------------------------------------------

def new_mfa_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email or user.name, issuer_name=issuer)


def _totp_step(secret: str, code: str) -> int | None:
    """The time step a code belongs to (now, or one step either side), or None."""
    code = "".join(c for c in code if c.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = utcnow()
    for offset in (0, -1, 1):
        at = now + timedelta(seconds=30 * offset)
        if hmac.compare_digest(totp.at(at), code):
            return totp.timecode(at)
    return None


def enable_mfa(user: User, secret: str, code: str) -> list[str]:
    """Turn on two-factor sign-in once the user proves their app works.

    Returns fresh recovery codes (shown once)."""
    step = _totp_step(secret, code)
    if step is None:
        raise LoginError("That code did not match. Check the time on your phone and try again.")
    user.mfa_secret = secret
    user.mfa_enabled_at = utcnow()
    user.mfa_last_step = step
    codes = regenerate_recovery_codes(user)
    audit.record("mfa.enabled", actor=user, target=user)
    return codes


def check_code(user: User, code: str, *, ip: str | None) -> bool:
    """``verify_mfa`` behind the sign-in throttle, so nobody who knows the password can
    try all million codes. Raises ``LockedOut``; records the attempt either way."""
    key = mfa_key(user)
    until = lockout_until(key, ip)
    if until is not None:
        audit.record("mfa.locked", actor=user)
        raise LockedOut(until)
    ok = verify_mfa(user, code)
    _note_attempt(key, ip, succeeded=ok)
    if not ok:
        audit.record("mfa.failed", actor=user)
    return ok


def verify_mfa(user: User, code: str) -> bool:
    """Check a TOTP code (never the same one twice) or an unused recovery code."""
    if user.mfa_secret is None:
        return False
    step = _totp_step(user.mfa_secret, code)
    if step is not None and (user.mfa_last_step is None or step > user.mfa_last_step):
        user.mfa_last_step = step
        return True
    return _use_recovery_code(user, code)


def regenerate_recovery_codes(user: User) -> list[str]:
    db.session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_code_hash(code)))
    db.session.flush()
    return codes


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().lower().encode()).hexdigest()


def _use_recovery_code(user: User, code: str) -> bool:
    row = db.session.scalar(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                   RecoveryCode.code_hash == _code_hash(code),
                                   RecoveryCode.used_at.is_(None))
    )
    if row is None:
        return False
    row.used_at = utcnow()
    audit.record("mfa.recovery_code_used", actor=user, target=user)
    return True


def mark_mfa_done(row: UserSession) -> None:
    row.mfa_at = utcnow()


def demo_code(user: User) -> str | None:
    """The current code of a seeded demo account, shown only in demo mode."""
    if not (current_app.config["KINSHIP_DEMO"] and user.is_demo and user.mfa_secret):
        return None
    totp = pyotp.TOTP(user.mfa_secret)
    now = utcnow()
    if user.mfa_last_step is not None and totp.timecode(now) <= user.mfa_last_step:
        now += timedelta(seconds=30)  # this step's code is spent: the next one is accepted
    return totp.at(now)


def disable_mfa(user: User, *, actor: User) -> None:
    """Turn two-step sign-in off (own choice where optional, or an admin reset
    after a lost phone); unused recovery codes are spent."""
    user.mfa_secret = None
    user.mfa_enabled_at = None
    user.mfa_last_step = None
    db.session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if actor.id != user.id:
        revoke_all_sessions(user)
    audit.record("mfa.disabled", actor=actor, target=user)
