"""Accounts: staff created by admins, participants enrolled by researchers,
invites, consent and profile changes.

Every function flushes and leaves the commit to its caller.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Boolean, exists, func, or_, select, type_coerce, update

from core import audit, markup
from core.clock import utcnow
from core.events import record_event
from core.extensions import db
from core.models import ConsentRecord, ConsentVersion, Invite, Participant, User
from core.names import display_key, display_name_problem
from core.passwords import hash_password, password_problem
from core.roles import Role


class AccountError(ValueError):
    """A request that cannot be done; ``field`` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PermissionDenied(Exception):
    pass


def _require(actor: User, *roles: Role) -> None:
    if actor.role not in roles:
        raise PermissionDenied(f"{actor.role} may not do this")


def check_password_rules(password: str, *names: str | None) -> None:
    problem = password_problem(password, names=names)
    if problem:
        raise AccountError(problem, "password")


def check_display_name(name: str, *, exclude_user: User | None = None,
                       pseudonym: bool = True) -> str:
    """Tidy and check a display name; staff may use their real name (``pseudonym=False``)."""
    name = " ".join(name.split())
    problem = display_name_problem(name) if pseudonym else (
        None if 2 <= len(name) <= 40 else "Use 2 to 40 characters.")
    if problem:
        raise AccountError(problem, "display_name")
    key = display_key(name)
    if len(key) > User.__table__.c.display_key.type.length:  # "ß" casefolds to "ss", and so on
        raise AccountError("Please choose a shorter name.", "display_name")
    query = select(User.id).where(User.display_key == key)
    if exclude_user is not None:
        query = query.where(User.id != exclude_user.id)
    if db.session.scalar(query) is not None:
        raise AccountError("Someone already uses that name. Please choose another.", "display_name")
    # sign-in accepts a study code or a display name, so the two must never meet
    if db.session.scalar(select(Participant.id).where(func.lower(Participant.study_code) == key)):
        raise AccountError("That is a study code. Please choose a nickname instead.",
                           "display_name")
    return name


# --- staff -------------------------------------------------------------------

def create_staff(email: str, role: Role, password: str, *, actor: User | None,
                 display_name: str | None = None) -> User:
    """Create a staff account. ``actor`` is None only for the first admin (CLI)."""
    if actor is not None:
        _require(actor, Role.ADMIN)
    if role == Role.PARTICIPANT:
        raise AccountError("Participants are enrolled by a researcher, not created here.", "role")
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise AccountError("Enter a valid e-mail address.", "email")
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise AccountError("An account with that e-mail address already exists.", "email")
    check_password_rules(password, email, display_name)
    user = User(email=email, role=role, password_hash=hash_password(password))
    if display_name:
        user.display_name = check_display_name(display_name, pseudonym=False)
        user.display_key = display_key(user.display_name)
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", actor=actor, target=user, role=str(role))
    return user


def change_role(user: User, role: Role, *, actor: User) -> None:
    _require(actor, Role.ADMIN)
    if user.is_participant or role == Role.PARTICIPANT:
        raise AccountError("Participants and staff cannot be switched into each other.", "role")
    if user.id == actor.id:
        raise AccountError("You cannot change your own role. Ask another administrator.", "role")
    old = user.role
    user.role = role
    from core.auth import revoke_all_sessions

    revoke_all_sessions(user)
    audit.record("user.role_changed", actor=actor, target=user, old=str(old), new=str(role))


def set_enabled(user: User, enabled: bool, *, actor: User) -> None:
    _require(actor, Role.ADMIN)
    if user.id == actor.id and not enabled:
        raise AccountError("You cannot disable your own account.")
    user.is_enabled = enabled
    if not enabled:
        from core.auth import revoke_all_sessions

        revoke_all_sessions(user)
    audit.record("user.enabled" if enabled else "user.disabled", actor=actor, target=user)


# --- participants and invites -------------------------------------------------

@dataclass
class IssuedInvite:
    invite: Invite
    token: str  # shown once to the researcher; only its hash is stored


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def next_study_code(study: object) -> str:
    prefix = getattr(study, "code_prefix", "KIN")
    count = db.session.scalar(select(func.count(Participant.id))) or 0
    while True:
        count += 1
        code = f"{prefix}-{count:04d}"
        if not _code_in_use(code):
            return code


def _code_in_use(code: str) -> bool:
    """Taken as a study code, or as a display name (sign-in accepts either)."""
    return bool(
        db.session.scalar(select(Participant.id).where(Participant.study_code == code))
        or db.session.scalar(select(User.id).where(User.display_key == display_key(code)))
    )


def enrol_participant(study: object, *, actor: User, study_code: str | None = None,
                      site: str | None = None, moderator: User | None = None) -> IssuedInvite:
    """Create a participant (no password yet) and their first invite."""
    _require(actor, Role.RESEARCHER, Role.ADMIN)
    code = (study_code or "").strip().upper() or next_study_code(study)
    if not 3 <= len(code) <= 40 or not all(c.isalnum() or c in "-_" for c in code):
        raise AccountError("Use 3 to 40 letters, digits, dashes or underscores.", "study_code")
    if _code_in_use(code):
        raise AccountError(f"Study code {code} is already in use.", "study_code")
    if moderator is not None and moderator.role not in (Role.PEER_MODERATOR, Role.CLINICIAN):
        raise AccountError("Only a moderator or clinician can hold a caseload.", "moderator")
    user = User(role=Role.PARTICIPANT)
    db.session.add(user)
    db.session.flush()
    participant = Participant(
        user_id=user.id, study_id=study.id, study_code=code, site=(site or None),  # type: ignore[attr-defined]
        timezone=getattr(study, "timezone", "Europe/London"), enrolled_by_id=actor.id,
        moderator_id=moderator.id if moderator else None,
    )
    db.session.add(participant)
    db.session.flush()
    audit.record("participant.enrolled", actor=actor, target=participant)
    return issue_invite(participant, actor=actor)


def issue_invite(participant: Participant, *, actor: User) -> IssuedInvite:
    """A fresh single-use link; any earlier open link of this participant is revoked."""
    _require(actor, Role.RESEARCHER, Role.ADMIN)
    if participant.user.password_hash is not None:
        raise AccountError("This participant has already set up their account.")
    now = utcnow()
    db.session.execute(
        update(Invite).where(Invite.participant_id == participant.id, Invite.used_at.is_(None),
                             Invite.revoked_at.is_(None)).values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    days = current_app.config["INVITE_VALID_DAYS"]
    invite = Invite(participant_id=participant.id, token_hash=token_hash(token),
                    created_by_id=actor.id, created_at=now, expires_at=now + timedelta(days=days))
    db.session.add(invite)
    db.session.flush()
    audit.record("invite.issued", actor=actor, target=participant, invite_id=invite.id)
    return IssuedInvite(invite, token)


def find_invite(token: str) -> Invite:
    """The open invite for a token, or an ``AccountError`` saying why not."""
    invite = db.session.scalar(select(Invite).where(Invite.token_hash == token_hash(token)))
    if invite is None:
        raise AccountError("This invite link is not valid. Please check you copied all of it, "
                           "or ask the study team for a new one.")
    state = invite.state(utcnow())
    if state == "used":
        raise AccountError("This invite link has already been used. If it was you, "
                           "please sign in. Otherwise, ask the study team for help.")
    if state in ("expired", "revoked"):
        raise AccountError("This invite link has expired. Please ask the study team for a new one.")
    return invite


@dataclass
class InviteAnswers:
    display_name: str
    password: str
    timezone: str
    phone: str | None
    sms_consent: bool
    consent_version_id: int


def accept_invite(token: str, answers: InviteAnswers) -> User:
    """Set up a participant's account from their invite and record consent."""
    invite = find_invite(token)
    participant = invite.participant
    if participant.status != "invited":
        # e.g. withdrawn meanwhile: an invite must never move anyone back to "consented"
        raise AccountError("This invite link can no longer be used. Please contact the "
                           "study team.")
    user = participant.user
    name = check_display_name(answers.display_name, exclude_user=user)
    check_password_rules(answers.password, name, participant.study_code)
    current = current_consent(participant)
    if current is None or current.id != answers.consent_version_id:
        raise AccountError("The consent information changed while you were reading it. "
                           "Please read the new version and agree again.", "consent")
    if answers.phone is None and answers.sms_consent:
        raise AccountError("Add a mobile number to receive text messages, or untick the box.",
                           "phone")
    user.display_name = name
    user.display_key = display_key(name)
    user.password_hash = hash_password(answers.password)
    participant.timezone = answers.timezone
    participant.phone = answers.phone
    participant.sms_consent = answers.sms_consent and answers.phone is not None
    _claim_invite(invite)
    record_consent(user, current, sms_consent=participant.sms_consent)
    set_status(participant, "consented", actor=user)
    audit.record("invite.accepted", actor=user, target=participant, invite_id=invite.id)
    record_event(participant, "invite_accepted")
    return user


def _claim_invite(invite: Invite) -> None:
    """Mark the invite used, or fail if someone used it a moment ago (two tabs, two
    people): a conditional update, so exactly one acceptance wins."""
    claimed = db.session.execute(
        update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None),
                             Invite.revoked_at.is_(None)).values(used_at=utcnow())
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if claimed != 1:
        raise AccountError("This invite link has already been used. If it was you, "
                           "please sign in. Otherwise, ask the study team for help.")


def set_status(participant: Participant, status: str, *, actor: User | None) -> None:
    old = participant.status
    participant.status = status
    participant.status_changed_at = utcnow()
    audit.record("participant.status", actor=actor, target=participant, old=old, new=status)


# --- consent -----------------------------------------------------------------

def _current_consent_id(participant_user_id: int | None) -> Any:
    """SQL for the id of the consent version the participant (by user id) must have agreed
    to: their study's pinned version (the set-up's ``consent_version``), else the latest
    published one. The study table belongs to ``outcomes``; core reads one column by name."""
    latest = (select(ConsentVersion.id)
              .order_by(ConsentVersion.published_at.desc(), ConsentVersion.id.desc())
              .limit(1).scalar_subquery())
    study = db.metadata.tables.get("study")
    if participant_user_id is None or study is None:
        return latest
    pinned = (select(study.c.consent_version_id)
              .join(Participant, Participant.study_id == study.c.id)
              .where(Participant.user_id == participant_user_id).scalar_subquery())
    return func.coalesce(pinned, latest)


def current_consent(participant: Participant | None = None) -> ConsentVersion | None:
    """The consent information a participant must have agreed to: the version their study
    pins, else the latest published one (no participant: the latest)."""
    current_id = db.session.scalar(select(_current_consent_id(
        participant.user_id if participant is not None else None)))
    return db.session.get(ConsentVersion, current_id) if current_id is not None else None


def publish_consent(version: str, text: str, *, actor: User) -> ConsentVersion:
    _require(actor, Role.ADMIN)
    version = version.strip()
    if not version or len(version) > 20:
        raise AccountError("Give the version a short label such as 1.1.", "version")
    if db.session.scalar(select(ConsentVersion.id).where(ConsentVersion.version == version)):
        raise AccountError(f"Version {version} already exists; use a new label.", "version")
    if len(text.strip()) < 50:
        raise AccountError("The consent text looks too short to be complete.", "text")
    # a document in Markdown, as the form says: blank lines part paragraphs, and a line
    # wrapped in the text is not a line break on the participant's screen
    html = markup.render(text.strip(), breaks=False)
    row = ConsentVersion(version=version, text=text.strip(), html=html,
                         published_by_id=actor.id, published_at=utcnow())
    db.session.add(row)
    db.session.flush()
    audit.record("consent.published", actor=actor, target=row, version=version)
    return row


def has_current_consent(user: User) -> bool:
    """Whether the participant agreed to their current consent version (one query; true
    when nothing is published)."""
    current_id = _current_consent_id(user.id)
    agreed = exists().where(ConsentRecord.user_id == user.id,
                            ConsentRecord.consent_version_id == current_id)
    found, has_agreed = db.session.execute(select(current_id, agreed)).one()
    return found is None or bool(has_agreed)


def consent_ok_fact() -> Any:
    """``has_current_consent`` as a fact of ``core.principal`` (over the outer ``User`` and
    ``Participant``): loaded with the session, so the consent gate costs no query."""
    latest = (select(ConsentVersion.id)
              .order_by(ConsentVersion.published_at.desc(), ConsentVersion.id.desc())
              .limit(1).scalar_subquery())
    current: Any = latest
    study = db.metadata.tables.get("study")
    if study is not None:
        pinned = (select(study.c.consent_version_id)
                  .where(study.c.id == Participant.study_id).correlate(Participant)
                  .scalar_subquery())
        current = func.coalesce(pinned, latest)
    agreed = (select(ConsentRecord.id).where(ConsentRecord.user_id == User.id,
                                             ConsentRecord.consent_version_id == current)
              .correlate(User, Participant).exists())
    return type_coerce(or_(current.is_(None), agreed), Boolean)


def record_consent(user: User, version: ConsentVersion, *, sms_consent: bool) -> ConsentRecord:
    row = ConsentRecord(user_id=user.id, consent_version_id=version.id, sms_consent=sms_consent)
    db.session.add(row)
    db.session.flush()
    audit.record("consent.given", actor=user, target=user, version=version.version)
    if user.participant is not None:
        user.participant.sms_consent = sms_consent and user.participant.phone is not None
        record_event(user.participant, "consent_given", version=version.version)
    return row


# --- profile -----------------------------------------------------------------

@dataclass
class ProfileAnswers:
    display_name: str
    timezone: str
    phone: str | None
    sms_consent: bool
    wake_start: time
    wake_end: time


def update_profile(user: User, answers: ProfileAnswers) -> None:
    participant = user.participant
    if participant is None:
        raise AccountError("Only participants have these settings.")
    name = check_display_name(answers.display_name, exclude_user=user)
    if answers.wake_end <= answers.wake_start:
        raise AccountError("The end of your day must be after its start.", "wake_end")
    if answers.phone is None and answers.sms_consent:
        raise AccountError("Add a mobile number to receive text messages, or untick the box.",
                           "phone")
    changed = []
    if name != user.display_name:
        changed.append("display_name")
    if answers.phone != participant.phone:
        changed.append("phone")
    if answers.sms_consent != participant.sms_consent:
        changed.append("sms_consent")
    user.display_name, user.display_key = name, display_key(name)
    participant.timezone = answers.timezone
    participant.phone = answers.phone
    participant.sms_consent = answers.sms_consent
    participant.wake_start, participant.wake_end = answers.wake_start, answers.wake_end
    audit.record("profile.updated", actor=user, target=participant, fields=changed)
    record_event(participant, "profile_updated")
