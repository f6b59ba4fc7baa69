"""Two-step sign-in: forced set-up for staff who hold private data, codes, recovery codes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from core import auth as auth_service
from core import clock
from core.audit import AuditEntry
from core.extensions import db
from core.models import RecoveryCode, User
from core.roles import Role
from core.views.auth import MFA_SECRET_KEY
from tests.conftest import PASSWORD, AuthActions
from tests.core.routes import guarded_requests, totp_now, wrong_code
from tests.factories import make_participant, make_staff, make_study

START = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
REQUIRED = ["clinician", "researcher", "admin"]
HOMES = {"clinician": "/moderation/", "researcher": "/research/", "admin": "/admin/users",
         "peer_moderator": "/moderation/"}


@pytest.fixture(autouse=True)
def _frozen_clock():
    clock.set_time(START)


def sign_in(client, identifier: str, password: str = PASSWORD):
    return client.post("/login", data={"identifier": identifier, "password": password})


def user_by_email(email: str) -> User:
    return db.session.scalar(select(User).where(User.email == email))


def pending_secret(client) -> str:
    client.get("/account/two-step")
    with client.session_transaction() as s:
        return s[MFA_SECRET_KEY]


def recovery_codes_on(page: bytes) -> list[str]:
    return re.findall(r"<li><code>([0-9a-f]{6}-[0-9a-f]{6})</code></li>", page.decode())


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))


# --- staff who must use it ----------------------------------------------------------

@pytest.mark.parametrize("role", REQUIRED)
def test_staff_without_mfa_are_sent_to_set_it_up(app, client, role):
    """It sends clinicians, researchers and admins to set up two-step sign-in after the
    password, and explains why."""
    with app.app_context():
        make_staff(role, mfa=False)
    response = sign_in(client, f"{role}@example.org")
    assert response.headers["Location"] == "/account/two-step"
    page = client.get("/account/two-step")
    assert page.status_code == 200
    assert b"your account needs\n    a second step" in page.data
    assert b"<svg" in page.data  # the QR code, drawn inline (no third-party request)


@pytest.mark.parametrize("role", REQUIRED)
def test_staff_without_mfa_cannot_reach_any_other_page(app, client, role):
    """It redirects every signed-in page (GET and POST) to the set-up step until it is done."""
    with app.app_context():
        make_staff(role, mfa=False)
    sign_in(client, f"{role}@example.org")
    assert client.get(HOMES[role]).headers["Location"] == "/account/two-step"
    for method, path in guarded_requests(app):
        response = client.open(path, method=method)
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"] == "/account/two-step", (method, path)
    assert client.get("/login/code").headers["Location"] == "/account/two-step"


def test_half_signed_in_admin_cannot_act(app, client):
    """It does not let an admin who has not finished two-step sign-in change anything."""
    with app.app_context():
        make_staff("admin", mfa=False)
        target = make_staff("peer_moderator").id
    sign_in(client, "admin@example.org")
    client.post(f"/admin/users/{target}/disable")
    with app.app_context():
        assert db.session.get(User, target).is_enabled is True


def test_wrong_code_does_not_enable_mfa(app, client):
    """It refuses a wrong code at set-up and keeps the same secret for the next try."""
    with app.app_context():
        make_staff("clinician", mfa=False)
    sign_in(client, "clinician@example.org")
    secret = pending_secret(client)
    response = client.post("/account/two-step", data={"code": wrong_code(secret)})
    assert response.status_code == 200
    assert b"That code did not match" in response.data
    assert secret.encode() in response.data  # the same key is still on the page
    with app.app_context():
        assert user_by_email("clinician@example.org").mfa_enabled is False
    assert client.get("/moderation/").headers["Location"] == "/account/two-step"


@pytest.mark.parametrize("code", ["12345", "abcdef", "1234567890"])
def test_malformed_setup_code_is_refused(app, client, code):
    """It refuses codes of the wrong shape without enabling anything."""
    with app.app_context():
        make_staff("clinician", mfa=False)
    sign_in(client, "clinician@example.org")
    pending_secret(client)
    response = client.post("/account/two-step", data={"code": code})
    assert response.status_code == 200
    with app.app_context():
        assert user_by_email("clinician@example.org").mfa_enabled is False


@pytest.mark.parametrize("role", REQUIRED)
def test_right_code_enables_mfa_and_shows_ten_recovery_codes(app, client, role):
    """It turns two-step sign-in on with the right code, shows ten recovery codes once,
    and then lets the user through to their home."""
    with app.app_context():
        make_study()  # the researcher's home is the study dashboard
        make_staff(role, mfa=False)
    sign_in(client, f"{role}@example.org")
    secret = pending_secret(client)
    response = client.post("/account/two-step", data={"code": totp_now(secret)})
    assert response.status_code == 200
    codes = recovery_codes_on(response.data)
    assert len(codes) == 10 == len(set(codes))
    assert b"This is the only time we show them" in response.data
    with app.app_context():
        user = user_by_email(f"{role}@example.org")
        assert user.mfa_secret == secret
        assert user.mfa_enabled_at == START
        hashes = db.session.scalars(select(RecoveryCode.code_hash)
                                    .where(RecoveryCode.user_id == user.id)).all()
        assert len(hashes) == 10
        assert not set(codes) & set(hashes)  # stored hashed
    with client.session_transaction() as s:
        assert MFA_SECRET_KEY not in s
    assert client.get(HOMES[role]).status_code == 200
    assert "mfa.enabled" in audit_actions(app)


# --- signing in with a code ------------------------------------------------------------

@pytest.fixture
def clinician(app):
    with app.app_context():
        return make_staff("clinician").mfa_secret


def test_mfa_user_lands_on_code_page_and_cannot_go_further(app, client, clinician):
    """It asks for a code after the password and redirects every other page there."""
    response = sign_in(client, "clinician@example.org")
    assert response.headers["Location"] == "/login/code"
    assert b"Two-step sign-in" in client.get("/login/code").data
    for method, path in guarded_requests(app):
        response = client.open(path, method=method)
        assert response.headers["Location"] == "/login/code", (method, path)
    # an MFA user cannot skip to set-up a new secret either
    assert client.get("/account/two-step").headers["Location"] == "/login/code"


def test_right_code_completes_sign_in(app, client, clinician):
    """It finishes signing in with the current code and records the sign-in."""
    sign_in(client, "clinician@example.org")
    response = client.post("/login/code", data={"code": totp_now(clinician)})
    assert response.headers["Location"] == "/"
    assert client.get("/moderation/").status_code == 200
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "login.succeeded"))
        assert entry.detail == {"mfa": True}


def test_code_from_the_previous_step_is_still_accepted(client, clinician):
    """It allows for a phone clock 30 seconds behind."""
    sign_in(client, "clinician@example.org")
    code = pyotp.TOTP(clinician).at(clock.utcnow() - timedelta(seconds=30))
    assert client.post("/login/code", data={"code": code}).headers["Location"] == "/"


def test_wrong_code_is_refused(app, client, clinician):
    """It refuses a wrong code and keeps the user on the code page."""
    sign_in(client, "clinician@example.org")
    response = client.post("/login/code", data={"code": wrong_code(clinician)})
    assert response.status_code == 200
    assert b"That code did not work" in response.data
    assert client.get("/moderation/").headers["Location"] == "/login/code"


def test_same_code_cannot_be_used_twice(app, client, clinician):
    """It refuses a code that was already used (replay), and takes the next one."""
    code = totp_now(clinician)
    sign_in(client, "clinician@example.org")
    assert client.post("/login/code", data={"code": code}).status_code == 302
    client.post("/logout")

    sign_in(client, "clinician@example.org")
    response = client.post("/login/code", data={"code": code})
    assert response.status_code == 200
    assert b"That code did not work" in response.data
    clock.advance(timedelta(seconds=30))
    assert client.post("/login/code", data={"code": totp_now(clinician)}).status_code == 302


def test_older_code_is_refused_after_a_newer_one(app, client, clinician):
    """It refuses a code from an earlier step once a later step has been used."""
    sign_in(client, "clinician@example.org")
    client.post("/login/code", data={"code": totp_now(clinician)})
    client.post("/logout")
    older = pyotp.TOTP(clinician).at(clock.utcnow() - timedelta(seconds=30))
    sign_in(client, "clinician@example.org")
    assert client.post("/login/code", data={"code": older}).status_code == 200


def test_recovery_code_works_once(app, client, clinician):
    """It accepts an unused recovery code instead of a TOTP code, but only once."""
    with app.app_context():
        codes = auth_service.regenerate_recovery_codes(user_by_email("clinician@example.org"))
        db.session.commit()
    sign_in(client, "clinician@example.org")
    response = client.post("/login/code", data={"code": f"  {codes[3].upper()} "})
    assert response.headers["Location"] == "/"
    client.post("/logout")

    sign_in(client, "clinician@example.org")
    response = client.post("/login/code", data={"code": codes[3]})
    assert response.status_code == 200
    assert b"That code did not work" in response.data
    assert client.post("/login/code", data={"code": codes[4]}).status_code == 302
    with app.app_context():
        used = db.session.scalar(select(func.count(RecoveryCode.id))
                                 .where(RecoveryCode.used_at.is_not(None)))
    assert used == 2
    assert audit_actions(app).count("mfa.recovery_code_used") == 2


def test_new_recovery_codes_replace_the_old_ones(app, client, clinician):
    """It spends the old recovery codes when new ones are made."""
    with app.app_context():
        old = auth_service.regenerate_recovery_codes(user_by_email("clinician@example.org"))
        db.session.commit()
    sign_in(client, "clinician@example.org")
    client.post("/login/code", data={"code": totp_now(clinician)})
    response = client.post("/account/security/recovery-codes")
    new = recovery_codes_on(response.data)
    assert len(new) == 10
    client.post("/logout")
    sign_in(client, "clinician@example.org")
    assert client.post("/login/code", data={"code": old[0]}).status_code == 200
    assert client.post("/login/code", data={"code": new[0]}).status_code == 302


def test_many_wrong_codes_pause_the_second_step(app, client, clinician):
    """It pauses the code step after five wrong codes, right code or not, so nobody who
    knows the password can try every code; signing in again does not reset the count."""
    sign_in(client, "clinician@example.org")
    for _ in range(5):
        clock.advance(timedelta(seconds=1))
        assert client.post("/login/code", data={"code": wrong_code(clinician)}).status_code == 200
    response = client.post("/login/code", data={"code": totp_now(clinician)})
    assert response.status_code == 429
    assert b"paused" in response.data
    assert client.get("/moderation/").headers["Location"] == "/login/code"

    client.post("/logout")
    assert sign_in(client, "clinician@example.org").headers["Location"] == "/login/code"
    assert client.post("/login/code", data={"code": totp_now(clinician)}).status_code == 429

    clock.advance(timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"]))
    assert client.post("/login/code", data={"code": totp_now(clinician)}).status_code == 302
    assert "mfa.locked" in audit_actions(app)


def test_wrong_codes_are_recorded_without_raw_addresses(app, client, clinician):
    """It counts wrong codes like wrong passwords: per account and per hashed address."""
    from core.models import LoginAttempt

    sign_in(client, "clinician@example.org")
    client.post("/login/code", data={"code": wrong_code(clinician)},
                environ_base={"REMOTE_ADDR": "203.0.113.9"})
    with app.app_context():
        row = db.session.scalars(select(LoginAttempt).order_by(LoginAttempt.id.desc())).first()
        assert row.succeeded is False
        assert "203.0.113" not in row.ip_hash + row.account_key


# --- roles that may choose ---------------------------------------------------------------

@pytest.mark.parametrize("who", ["peer_moderator", "participant"])
def test_moderators_and_participants_are_not_forced(app, client, who):
    """It lets peer moderators and participants in with a password alone."""
    with app.app_context():
        if who == "participant":
            make_participant(code="T-0001")
        else:
            make_staff(who)
    identifier = "T-0001" if who == "participant" else f"{who}@example.org"
    assert sign_in(client, identifier).headers["Location"] == "/"
    assert client.get("/account/security").status_code == 200
    assert b"Two-step sign-in is <strong>off</strong>" in client.get("/account/security").data


@pytest.mark.parametrize("who", ["peer_moderator", "participant"])
def test_optional_mfa_can_be_turned_on_and_off(app, client, who):
    """It lets peer moderators and participants turn two-step sign-in on, use it, and turn
    it off again."""
    with app.app_context():
        if who == "participant":
            make_participant(code="T-0001")
        else:
            make_staff(who)
    identifier = "T-0001" if who == "participant" else f"{who}@example.org"
    sign_in(client, identifier)
    secret = pending_secret(client)
    assert b"A second step keeps your account safe" in client.get("/account/two-step").data
    response = client.post("/account/two-step", data={"code": totp_now(secret)})
    assert len(recovery_codes_on(response.data)) == 10
    assert b"Turn off two-step sign-in" in client.get("/account/security").data

    client.post("/logout")
    clock.advance(timedelta(seconds=30))
    assert sign_in(client, identifier).headers["Location"] == "/login/code"
    assert client.post("/login/code", data={"code": totp_now(secret)}).status_code == 302

    response = client.post("/account/security/turn-off", data={"password": "not my password"})
    assert b"That is not your password." in response.data
    with app.app_context():
        assert auth_service.find_account(identifier).mfa_enabled is True
    response = client.post("/account/security/turn-off", data={"password": PASSWORD})
    assert response.headers["Location"] == "/account/security"
    with app.app_context():
        user = auth_service.find_account(identifier)
        assert user.mfa_enabled is False and user.mfa_secret is None
        assert db.session.scalar(select(func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) == 0
    client.post("/logout")
    assert sign_in(client, identifier).headers["Location"] == "/"
    assert "mfa.disabled" in audit_actions(app)


def test_mfa_already_on_is_not_set_up_twice(app, client):
    """It sends a fully signed-in user with MFA on from the set-up page to the security page."""
    with app.app_context():
        make_staff("peer_moderator", mfa=True)
    AuthActions(client, app).login("peer_moderator@example.org")
    response = client.get("/account/two-step")
    assert response.headers["Location"] == "/account/security"


@pytest.mark.parametrize("role", REQUIRED)
def test_required_roles_cannot_turn_mfa_off(app, client, auth, role):
    """It refuses (403) to turn off two-step sign-in for roles that must use it."""
    with app.app_context():
        make_staff(role)
    auth.login(f"{role}@example.org")
    assert b"cannot be turned off" in client.get("/account/security").data
    assert client.post("/account/security/turn-off").status_code == 403
    with app.app_context():
        assert user_by_email(f"{role}@example.org").mfa_enabled is True


# --- admin reset ---------------------------------------------------------------------------

def test_admin_resets_a_lost_phone(app, client, auth, clinician):
    """It lets an admin turn a user's two-step sign-in off: their sessions end, their
    recovery codes are spent and they must set it up again at the next sign-in."""
    with app.app_context():
        make_staff("admin")
        target = user_by_email("clinician@example.org")
        auth_service.regenerate_recovery_codes(target)
        db.session.commit()
        target_id = target.id
    phone = app.test_client()
    sign_in(phone, "clinician@example.org")
    phone.post("/login/code", data={"code": totp_now(clinician)})
    assert phone.get("/moderation/").status_code == 200

    clock.advance(timedelta(seconds=30))
    auth.login("admin@example.org")
    response = client.post(f"/admin/users/{target_id}/reset_mfa")
    assert response.headers["Location"] == f"/admin/users/{target_id}"
    with app.app_context():
        target = db.session.get(User, target_id)
        assert target.mfa_enabled is False and target.mfa_secret is None
        assert db.session.scalar(select(func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == target_id, RecoveryCode.used_at.is_(None))) == 0
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "mfa.disabled"))
        assert entry.target_id == target_id
        assert entry.actor_id != target_id

    assert phone.get("/moderation/").headers["Location"].startswith("/login")
    assert sign_in(phone, "clinician@example.org").headers["Location"] == "/account/two-step"


def test_only_admins_reset_mfa(app, client, auth, clinician):
    """It refuses the reset to a researcher."""
    with app.app_context():
        make_staff("researcher")
        target_id = user_by_email("clinician@example.org").id
    auth.login("researcher@example.org")
    assert client.post(f"/admin/users/{target_id}/reset_mfa").status_code == 403
    with app.app_context():
        assert db.session.get(User, target_id).mfa_enabled is True


# --- demo mode ------------------------------------------------------------------------------

def _demo_staff(app, *, is_demo: bool) -> str:
    with app.app_context():
        user = make_staff("clinician")
        user.is_demo = is_demo
        db.session.commit()
        return user.mfa_secret


DEMO_NOTE = b"the current code for this demo account is"


def test_demo_code_is_shown_for_demo_accounts_in_demo_mode(app, client):
    """It shows the current code on the code page for a seeded demo account in demo mode,
    and the code shown works."""
    app.config["KINSHIP_DEMO"] = True
    secret = _demo_staff(app, is_demo=True)
    sign_in(client, "clinician@example.org")
    page = client.get("/login/code").data
    assert DEMO_NOTE in page
    shown = re.search(rb'<strong class="code">(\d{6})</strong>', page).group(1).decode()
    assert shown == totp_now(secret)
    assert client.post("/login/code", data={"code": shown}).status_code == 302


def test_demo_code_moves_on_once_used(app, client):
    """It shows the next step's code when the current one is spent, so it still works."""
    app.config["KINSHIP_DEMO"] = True
    secret = _demo_staff(app, is_demo=True)
    sign_in(client, "clinician@example.org")
    client.post("/login/code", data={"code": totp_now(secret)})
    client.post("/logout")
    sign_in(client, "clinician@example.org")
    page = client.get("/login/code").data
    shown = re.search(rb'<strong class="code">(\d{6})</strong>', page).group(1).decode()
    assert shown != totp_now(secret)
    assert client.post("/login/code", data={"code": shown}).status_code == 302


def test_demo_code_is_hidden_outside_demo_mode(app, client):
    """It never shows a code when demo mode is off, even for a demo account."""
    app.config["KINSHIP_DEMO"] = False
    _demo_staff(app, is_demo=True)
    sign_in(client, "clinician@example.org")
    assert DEMO_NOTE not in client.get("/login/code").data


def test_demo_code_is_hidden_for_real_accounts(app, client):
    """It never shows a code for an account that was not seeded as a demo account."""
    app.config["KINSHIP_DEMO"] = True
    _demo_staff(app, is_demo=False)
    sign_in(client, "clinician@example.org")
    assert DEMO_NOTE not in client.get("/login/code").data


def test_demo_code_is_hidden_on_the_paused_page(app, client):
    """It shows no code once the code step is paused."""
    app.config["KINSHIP_DEMO"] = True
    secret = _demo_staff(app, is_demo=True)
    sign_in(client, "clinician@example.org")
    for _ in range(5):
        clock.advance(timedelta(seconds=1))
        client.post("/login/code", data={"code": wrong_code(secret)})
    response = client.post("/login/code", data={"code": wrong_code(secret)})
    assert response.status_code == 429
    assert DEMO_NOTE not in response.data


def test_role_enum_covers_required_roles():
    """It requires two-step sign-in for exactly the roles that hold private data."""
    from core.roles import MFA_REQUIRED

    assert {r.value for r in MFA_REQUIRED} == set(REQUIRED)
    assert Role.PEER_MODERATOR not in MFA_REQUIRED
