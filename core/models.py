"""Core tables: accounts, participants, invites, consent, sessions, settings.

The audit log and the activity-event spine live in ``core.audit`` and
``core.events``; study tables live in ``outcomes.models``.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from flask_login import UserMixin
from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.extensions import db
from core.roles import MFA_REQUIRED, Role


class User(UserMixin, db.Model):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20))
    #: staff sign in with e-mail; participants have none (privacy) and use
    #: their study code or display name
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    #: the pseudonym shown in the forum and to staff
    display_name: Mapped[str | None] = mapped_column(String(40))
    #: casefolded display name, unique, for look-ups and the uniqueness check
    display_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_enabled: Mapped[bool] = mapped_column(default=True)
    mfa_secret: Mapped[str | None] = mapped_column(String(64))
    mfa_enabled_at: Mapped[datetime | None]
    #: the last TOTP time step accepted, so a code cannot be replayed
    mfa_last_step: Mapped[int | None]
    #: seeded by ``flask demo seed``; only these accounts get demo conveniences
    is_demo: Mapped[bool] = mapped_column(default=False)
    #: the participant chose to show their badges on their forum profile
    show_badges: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    participant: Mapped[Participant | None] = relationship(
        back_populates="user", foreign_keys="Participant.user_id", uselist=False
    )

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.is_enabled and self.password_hash is not None

    @property
    def is_participant(self) -> bool:
        return self.role == Role.PARTICIPANT

    @property
    def is_staff(self) -> bool:
        return self.role != Role.PARTICIPANT

    @property
    def mfa_required(self) -> bool:
        return self.role in MFA_REQUIRED

    @property
    def mfa_enabled(self) -> bool:
        return self.mfa_enabled_at is not None

    @property
    def name(self) -> str:
        """How staff pages and the navigation name this account."""
        return self.display_name or self.email or f"user {self.id}"


class Participant(db.Model):
    __tablename__ = "participant"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), unique=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    #: the researcher-facing identifier, e.g. KIN-0042
    study_code: Mapped[str] = mapped_column(String(40), unique=True)
    #: a stratum such as the recruiting site
    site: Mapped[str | None] = mapped_column(String(80))
    arm_id: Mapped[int | None] = mapped_column(ForeignKey("study_arm.id"), index=True)
    status: Mapped[str] = mapped_column(String(30), default="invited")
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    #: the participant's waking window; SMS is never sent outside it
    wake_start: Mapped[time] = mapped_column(default=time(9, 0))
    wake_end: Mapped[time] = mapped_column(default=time(20, 0))
    #: mobile number in E.164, or None
    phone: Mapped[str | None] = mapped_column(String(20))
    sms_consent: Mapped[bool] = mapped_column(default=False)
    #: set when the participant texted STOP (or Twilio reported error 21610); cleared by
    #: START. Distinct from leaving the study and from ``sms_consent`` (what they agreed to)
    sms_opted_out_at: Mapped[datetime | None]
    moderator_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    enrolled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    randomised_at: Mapped[datetime | None]
    #: moves whenever something of theirs is written (``core.changes``); cached pages
    #: that show their data are checked against it (``core.pagecache``)
    data_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    user: Mapped[User] = relationship(back_populates="participant", foreign_keys=[user_id])
    moderator: Mapped[User | None] = relationship(foreign_keys=[moderator_id])


class Invite(db.Model):
    """A single-use, expiring link that lets a participant set up their account."""

    __tablename__ = "invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    #: SHA-256 of the token; the token itself is shown once and never stored
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    participant: Mapped[Participant] = relationship()

    def state(self, now: datetime) -> str:
        if self.used_at is not None:
            return "used"
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return "open"


class ConsentVersion(db.Model):
    """One published consent text. The newest one is current."""

    __tablename__ = "consent_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(20), unique=True)
    #: Markdown source as written by the admin
    text: Mapped[str] = mapped_column(Text)
    #: sanitised HTML rendered from ``text`` when published
    html: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class ConsentRecord(db.Model):
    __tablename__ = "consent_record"
    __table_args__ = (UniqueConstraint("user_id", "consent_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    consent_version_id: Mapped[int] = mapped_column(ForeignKey("consent_version.id"))
    agreed_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the separate, optional agreement to receive text messages
    sms_consent: Mapped[bool] = mapped_column(default=False)

    consent_version: Mapped[ConsentVersion] = relationship()


class UserSession(db.Model):
    """A signed-in browser. The cookie carries only this row's id.

    Logging out revokes the row, so a copied cookie replayed later is refused.
    """

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    #: when a second factor was checked in this session (None: not yet)
    mfa_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class LoginAttempt(db.Model):
    """Failed and successful sign-ins, for throttling. IPs are stored keyed-hashed."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_account_at", "account_key", "at"),
        Index("ix_login_attempt_ip_at", "ip_hash", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: what the lock counts against: "user:<id>" for a known account's password,
    #: "mfa:<id>" for its second-step codes, "typed:<text>" for names that match no account
    #: (so unknown names are throttled too)
    account_key: Mapped[str] = mapped_column(String(254))
    ip_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    succeeded: Mapped[bool] = mapped_column(default=False)


class RecoveryCode(db.Model):
    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]


class SiteSetting(db.Model):
    __tablename__ = "site_setting"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[Any] = mapped_column(db.JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
