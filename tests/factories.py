"""Small factory functions for tests (call inside an app context; they commit)."""

from __future__ import annotations

import pyotp

from core import accounts
from core.clock import utcnow
from core.extensions import db
from core.models import ConsentRecord, Participant, User
from core.names import display_key
from core.passwords import hash_password
from core.roles import Role
from outcomes.models import Arm, Study
from tests.conftest import PASSWORD

CONSENT_TEXT = ("You are invited to take part in a study about loneliness. Taking part is "
                "voluntary and you can stop at any time without giving a reason.")


def make_study(**overrides) -> Study:
    study = Study(slug=overrides.pop("slug", "test"), name=overrides.pop("name", "Test study"),
                  code_prefix="T", **overrides)
    db.session.add(study)
    db.session.flush()
    for code, features in (("guided", {"modules": True, "gamification": True, "forum": True,
                                        "checkins": True, "sms": True}),
                           ("self", {"modules": True, "gamification": True, "forum": False,
                                     "checkins": False, "sms": True})):
        db.session.add(Arm(study_id=study.id, code=code, name=code.title(), features=features))
    db.session.commit()
    return study


def make_staff(role: Role | str = Role.ADMIN, email: str | None = None, *,
               password: str = PASSWORD, mfa: bool | None = None, name: str | None = None) -> User:
    role = Role(role)
    email = email or f"{role.value}@example.org"
    user = User(email=email, role=role, password_hash=hash_password(password),
                display_name=name, display_key=display_key(name) if name else None)
    if mfa if mfa is not None else user.mfa_required:
        user.mfa_secret = pyotp.random_base32()
        user.mfa_enabled_at = utcnow()
    db.session.add(user)
    db.session.commit()
    return user


def make_consent(version: str = "1.0", text: str = CONSENT_TEXT):
    admin = db.session.scalar(db.select(User).where(User.role == Role.ADMIN)) or make_staff(
        Role.ADMIN, "consent-admin@example.org")
    row = accounts.publish_consent(version, text, actor=admin)
    db.session.commit()
    return row


def make_participant(study: Study | None = None, code: str = "T-0001", *,
                     name: str | None = "Quiet Harbour", password: str = PASSWORD,
                     consent: bool = True, moderator: User | None = None,
                     arm: str | None = None) -> Participant:
    """A participant with an account set up (or only invited, with ``name=None``)."""
    study = study or db.session.scalar(db.select(Study)) or make_study()
    user = User(role=Role.PARTICIPANT)
    db.session.add(user)
    db.session.flush()
    participant = Participant(user_id=user.id, study_id=study.id, study_code=code,
                              moderator_id=moderator.id if moderator else None)
    if arm:
        participant.arm_id = next(a.id for a in study.arms if a.code == arm)
    db.session.add(participant)
    if name:
        user.display_name, user.display_key = name, display_key(name)
        user.password_hash = hash_password(password)
        participant.status = "consented"
        if consent:
            version = accounts.current_consent() or make_consent()
            db.session.add(ConsentRecord(user_id=user.id, consent_version_id=version.id))
    db.session.commit()
    return participant
