"""Signing in and out: identifiers, throttling and server-side sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from core import clock
from core.audit import AuditEntry
from core.auth import find_account
from core.events import events_for
from core.extensions import db
from core.models import LoginAttempt, User, UserSession
from core.sessions import SESSION_KEY
from tests.conftest import PASSWORD
from tests.core.routes import put_session_cookie, session_cookie
from tests.factories import make_participant, make_staff

START = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
WRONG = "not the right password"
MISMATCH = b"That sign-in name and password do not match"


def sign_in(client, identifier: str, password: str = PASSWORD, *, ip: str = "203.0.113.7",
            next_: str | None = None):
    url = f"/login?next={next_}" if next_ else "/login"
    return client.post(url, data={"identifier": identifier, "password": password,
                                  "next": next_ or ""},
                       environ_base={"REMOTE_ADDR": ip})


def fail(client, identifier: str, times: int, *, ip: str = "203.0.113.7") -> None:
    for _ in range(times):
        clock.advance(timedelta(seconds=1))
        response = sign_in(client, identifier, WRONG, ip=ip)
        assert response.status_code == 200
        assert MISMATCH in response.data


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))


@pytest.fixture(autouse=True)
def _frozen_clock():
    """Freeze time so the tests can move it (conftest unfreezes it afterwards)."""
    clock.set_time(START)


@pytest.fixture
def participant(app):
    with app.app_context():
        make_participant(code="T-0001", name="Quiet Harbour")


# --- who can sign in -----------------------------------------------------------

@pytest.mark.parametrize("identifier", ["T-0001", "t-0001", "  T-0001 "])
def test_participant_signs_in_with_study_code(client, participant, identifier):
    """It signs a participant in by study code, in any case, spaces trimmed."""
    response = sign_in(client, identifier)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert b"Hello, Quiet Harbour" in client.get("/").data


@pytest.mark.parametrize("identifier", ["Quiet Harbour", "quiet harbour", "Quiét  HARBOUR"])
def test_participant_signs_in_with_display_name(client, participant, identifier):
    """It signs a participant in by display name, ignoring case, accents and spacing."""
    response = sign_in(client, identifier)
    assert response.status_code == 302
    assert b"Hello, Quiet Harbour" in client.get("/").data


@pytest.mark.parametrize("identifier", ["peer_moderator@example.org", "PEER_Moderator@Example.ORG",
                                        " peer_moderator@example.org "])
def test_staff_sign_in_with_email_in_any_case(app, client, identifier):
    """It signs staff in by e-mail address, whatever its case."""
    with app.app_context():
        make_staff("peer_moderator")
    response = sign_in(client, identifier)
    assert response.status_code == 302
    assert client.get("/").headers["Location"] == "/moderation/"


def test_study_code_wins_over_an_equal_display_name(app, client):
    """It signs in the owner of a study code even if another account's display name equals
    that code (names are now refused, but older data or later codes may still clash)."""
    with app.app_context():
        make_participant(code="T-0001", name="T-0002", password="someone else entirely")
        make_participant(code="T-0002", name="Tea Drinker")
    assert sign_in(client, "T-0002").status_code == 302
    assert b"Hello, Tea Drinker" in client.get("/").data


def test_sign_in_records_audit_event_and_last_login(app, client, participant):
    """It notes the sign-in in the audit log, the activity events and the account."""
    sign_in(client, "T-0001")
    with app.app_context():
        user = find_account("T-0001")
        assert user.last_login_at == START
        assert [e.kind for e in events_for(user.participant.id)] == ["login"]
    assert "login.succeeded" in audit_actions(app)


def test_wrong_password_is_refused_with_a_plain_message(app, client, participant):
    """It refuses a wrong password without saying whether the account exists."""
    response = sign_in(client, "T-0001", WRONG)
    assert response.status_code == 200
    assert MISMATCH in response.data
    assert client.get("/").status_code == 302
    assert "login.failed" in audit_actions(app)


def test_unknown_account_gets_the_same_message(client, participant):
    """It answers an unknown name exactly like a wrong password."""
    response = sign_in(client, "T-9999", PASSWORD)
    assert response.status_code == 200
    assert MISMATCH in response.data


def test_disabled_account_is_refused(app, client):
    """It refuses a disabled account even with the right password."""
    with app.app_context():
        user = make_staff("peer_moderator")
        user.is_enabled = False
        db.session.commit()
    response = sign_in(client, "peer_moderator@example.org")
    assert response.status_code == 200
    assert MISMATCH in response.data
    assert client.get("/").status_code == 302


def test_invited_participant_without_password_cannot_sign_in(app, client):
    """It refuses an account whose invite was never accepted (no password yet)."""
    with app.app_context():
        make_participant(code="T-0003", name=None)
    response = sign_in(client, "T-0003", "")
    assert response.status_code == 200  # the form asks for a password
    response = sign_in(client, "T-0003", "anything at all")
    assert MISMATCH in response.data


def test_empty_form_is_refused_and_not_counted(app, client):
    """It asks for both fields and does not count an empty form as an attempt."""
    response = client.post("/login", data={"identifier": "", "password": ""})
    assert response.status_code == 200
    assert b"This field is required" in response.data
    with app.app_context():
        assert db.session.scalar(select(LoginAttempt.id)) is None


def test_sign_in_goes_to_a_local_next_page(client, participant):
    """It returns a participant to the page they asked for."""
    response = sign_in(client, "T-0001", next_="/account")
    assert response.headers["Location"] == "/account"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/x", "evil.example",
                                    "/\\evil.example"])
def test_sign_in_never_redirects_off_site(client, participant, target):
    """It ignores a ``next`` that points to another site (a backslash stays in the path)."""
    location = sign_in(client, "T-0001", next_=target).headers["Location"]
    assert location.startswith("/")
    assert not location.startswith(("//", "/\\"))
    assert urlsplit(location).netloc == ""


def test_signed_in_user_visiting_login_goes_home(client, participant):
    """It sends an already signed-in user from the login page to their home."""
    sign_in(client, "T-0001")
    assert client.get("/login").headers["Location"] == "/"


def test_sign_in_upgrades_an_outdated_hash(app, client, participant):
    """It rehashes the password with the current argon2 settings on a successful sign-in."""
    with app.app_context():
        old_hash = find_account("T-0001").password_hash
    app.config["ARGON2_TIME_COST"] += 1
    sign_in(client, "T-0001")
    with app.app_context():
        new_hash = find_account("T-0001").password_hash
    assert new_hash != old_hash
    assert f"t={app.config['ARGON2_TIME_COST']}" in new_hash


# --- throttling ------------------------------------------------------------------

def test_sixth_attempt_after_five_failures_is_paused_even_with_right_password(app, client,
                                                                              participant):
    """It pauses an account after five failures: the sixth attempt gets 429, right password
    or not."""
    fail(client, "T-0001", 5)
    response = sign_in(client, "T-0001", PASSWORD)
    assert response.status_code == 429
    assert b"signing in is paused for about 15 minutes" in response.data
    assert b"It unlocks by itself" in response.data
    assert client.get("/").status_code == 302  # not signed in
    assert "login.locked" in audit_actions(app)


def test_lock_expires_by_itself(app, client, participant):
    """It lets the right password in again once LOGIN_LOCK_MINUTES have passed."""
    fail(client, "T-0001", 5)
    clock.advance(timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"] - 1))
    assert sign_in(client, "T-0001").status_code == 429
    clock.advance(timedelta(minutes=1))
    response = sign_in(client, "T-0001")
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_lock_message_counts_down(app, client, participant):
    """It tells how many minutes are left, in the singular at the end."""
    fail(client, "T-0001", 5)
    clock.advance(timedelta(minutes=14, seconds=30))
    assert b"paused for about 1 minute." in sign_in(client, "T-0001").data


def test_lock_counts_the_account_whatever_name_is_typed(client, participant):
    """It counts failures by study code and by display name against the same account."""
    fail(client, "T-0001", 3)
    fail(client, "quiet harbour", 2)
    assert sign_in(client, "Quiet Harbour").status_code == 429
    assert sign_in(client, "T-0001").status_code == 429


def test_locked_account_does_not_lock_another(app, client, participant):
    """It keeps other accounts signing in while one is paused."""
    with app.app_context():
        make_participant(code="T-0002", name="Tea Drinker")
    fail(client, "T-0001", 5, ip="198.51.100.1")
    assert sign_in(client, "T-0002", ip="198.51.100.2").status_code == 302


def test_success_resets_the_failure_count(client, participant):
    """It starts counting again after a successful sign-in."""
    fail(client, "T-0001", 4)
    assert sign_in(client, "T-0001").status_code == 302
    client.post("/logout")
    fail(client, "T-0001", 4)
    assert sign_in(client, "T-0001").status_code == 302
    client.post("/logout")
    fail(client, "T-0001", 5)
    assert sign_in(client, "T-0001").status_code == 429


def test_failures_older_than_the_window_are_forgotten(app, client, participant):
    """It only counts failures inside the last LOGIN_LOCK_MINUTES."""
    fail(client, "T-0001", 4)
    clock.advance(timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"] + 1))
    fail(client, "T-0001", 4)
    assert sign_in(client, "T-0001").status_code == 302


def test_unknown_accounts_are_throttled_too(client, participant):
    """It pauses guessing at a name that does not exist, so probing tells nothing."""
    fail(client, "T-9999", 5)
    response = sign_in(client, "t-9999", WRONG)
    assert response.status_code == 429
    assert b"paused" in response.data


def test_one_address_trying_many_accounts_is_paused(app, client):
    """It pauses an address after LOGIN_MAX_FAILURES_IP failures across different names."""
    app.config["LOGIN_MAX_FAILURES_IP"] = 3
    with app.app_context():
        make_participant(code="T-0001", name="Quiet Harbour")
    for name in ("T-0002", "T-0003", "T-0004"):
        fail(client, name, 1, ip="192.0.2.10")
    response = sign_in(client, "T-0001", ip="192.0.2.10")
    assert response.status_code == 429
    assert b"paused" in response.data
    # the same account from another address is not paused
    assert sign_in(client, "T-0001", ip="192.0.2.11").status_code == 302


def test_a_valid_account_does_not_reset_the_address_count(app):
    """Someone with an account of their own (a participant, say) cannot try passwords on
    other accounts without end by signing in to their own between guesses: a success
    used to start the address's count again."""
    app.config["LOGIN_MAX_FAILURES_IP"] = 3
    with app.app_context():
        make_participant(code="T-0001", name="Quiet Harbour")
        for number in (2, 3, 4):
            make_participant(code=f"T-000{number}", name=f"Person {number}")
    for victim in ("Person 2", "Person 3"):
        fail(app.test_client(), victim, 1, ip="192.0.2.10")
        clock.advance(timedelta(seconds=1))
        assert sign_in(app.test_client(), "T-0001", ip="192.0.2.10").status_code == 302
    fail(app.test_client(), "Person 4", 1, ip="192.0.2.10")
    response = sign_in(app.test_client(), "Person 2", WRONG, ip="192.0.2.10")
    assert response.status_code == 429
    assert b"paused" in response.data
    # the accounts guessed at are not paused from elsewhere (one failure each)
    assert sign_in(app.test_client(), "Person 2", ip="192.0.2.11").status_code == 302


def test_people_who_mistype_and_then_sign_in_cost_a_shared_address_nothing(app):
    """A clinic's computers share one address: each person's own mistakes are forgiven
    when they then sign in from it, so colleagues are not paused by them."""
    app.config["LOGIN_MAX_FAILURES_IP"] = 3
    with app.app_context():
        for number in range(1, 6):
            make_participant(code=f"T-000{number}", name=f"Person {number}")
    for number in range(1, 6):
        fail(app.test_client(), f"T-000{number}", 2, ip="198.51.100.20")
        clock.advance(timedelta(seconds=1))
        assert sign_in(app.test_client(), f"T-000{number}",
                       ip="198.51.100.20").status_code == 302, number
    # ten failures in all, every one put right: the next person's mistakes still count
    fail(app.test_client(), "T-0001", 1, ip="198.51.100.20")
    fail(app.test_client(), "T-0002", 1, ip="198.51.100.20")
    fail(app.test_client(), "T-0003", 1, ip="198.51.100.20")
    assert sign_in(app.test_client(), "T-0004", ip="198.51.100.20").status_code == 429


def test_address_lock_expires_by_itself(app, client, participant):
    """It lifts an address pause after LOGIN_LOCK_MINUTES."""
    app.config["LOGIN_MAX_FAILURES_IP"] = 3
    for name in ("a-1", "b-2", "c-3"):
        fail(client, name, 1, ip="192.0.2.10")
    assert sign_in(client, "T-0001", ip="192.0.2.10").status_code == 429
    clock.advance(timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"]))
    assert sign_in(client, "T-0001", ip="192.0.2.10").status_code == 302


def test_attempts_are_stored_without_raw_addresses(app, client, participant):
    """It keeps only a keyed hash of the address: equal for one address, different for two."""
    fail(client, "T-0001", 1, ip="203.0.113.7")
    fail(client, "T-0001", 1, ip="203.0.113.7")
    sign_in(client, "T-0001", ip="198.51.100.99")
    with app.app_context():
        rows = db.session.scalars(select(LoginAttempt).order_by(LoginAttempt.id)).all()
    assert [r.succeeded for r in rows] == [False, False, True]
    for row in rows:
        stored = " ".join(str(getattr(row, c.key)) for c in LoginAttempt.__table__.columns)
        assert "203.0.113" not in stored and "198.51.100" not in stored
        assert len(row.ip_hash) == 64
    assert rows[0].ip_hash == rows[1].ip_hash != rows[2].ip_hash


# --- sessions ----------------------------------------------------------------------

def test_logout_revokes_a_copied_cookie(app, client, participant):
    """It revokes the session row at logout, so a copy of the cookie is refused later."""
    sign_in(client, "T-0001")
    copied = session_cookie(client, app).value
    assert client.post("/logout").headers["Location"] == "/login"
    with app.app_context():
        assert db.session.scalar(select(UserSession.revoked_at)) is not None

    thief = app.test_client()
    put_session_cookie(thief, app, copied)
    response = thief.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_logout_says_goodbye(client, participant):
    """It confirms the sign-out on the login page."""
    sign_in(client, "T-0001")
    response = client.post("/logout", follow_redirects=True)
    assert b"You are signed out" in response.data
    assert client.get("/").status_code == 302


def test_logout_needs_post(client, participant):
    """It does not sign out on a GET, so a link or image cannot sign anyone out."""
    sign_in(client, "T-0001")
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_idle_session_is_signed_out(app, client, participant):
    """It signs a browser out after SESSION_IDLE_MINUTES without a request, and says why."""
    sign_in(client, "T-0001")
    clock.advance(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] - 1))
    assert client.get("/").status_code == 200
    clock.advance(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1))
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    page = client.get(response.headers["Location"])
    assert b"signed out after a while without activity" in page.data


def test_activity_postpones_the_idle_timeout(app, client, participant):
    """It counts idle time from the last request, not from sign-in, and stores the touch
    even on pages that save nothing."""
    sign_in(client, "T-0001")
    for _ in range(3):
        clock.advance(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] - 5))
        assert client.get("/").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(UserSession.last_seen_at)) == clock.utcnow()


def test_activity_keeps_the_session_alive_until_the_absolute_limit(app, client, participant):
    """It keeps an active browser signed in, but never past SESSION_ABSOLUTE_HOURS."""
    sign_in(client, "T-0001")
    limit = timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"])
    while clock.utcnow() + timedelta(minutes=20) - START <= limit:
        clock.advance(timedelta(minutes=20))
        assert client.get("/").status_code == 200, clock.utcnow() - START
    clock.advance(timedelta(minutes=20))
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert b"Your session has ended" in client.get(response.headers["Location"]).data


def test_session_cookie_changes_at_sign_in(app, client, participant):
    """It gives the browser a new session at sign-in (no fixation): a planted session id
    is thrown away and the cookie value changes."""
    with client.session_transaction() as s:
        s[SESSION_KEY] = "planted-by-attacker"
    before = session_cookie(client, app).value
    sign_in(client, "T-0001")
    after = session_cookie(client, app).value
    assert after != before
    with client.session_transaction() as s:
        sid = s[SESSION_KEY]
    assert sid != "planted-by-attacker"
    with app.app_context():
        row = db.session.get(UserSession, sid)
        assert row.user_id == find_account("T-0001").id


def test_each_sign_in_gets_its_own_session_row(app, participant):
    """It opens a separate session row per browser."""
    first, second = app.test_client(), app.test_client()
    sign_in(first, "T-0001")
    sign_in(second, "T-0001")
    with first.session_transaction() as a, second.session_transaction() as b:
        assert a[SESSION_KEY] != b[SESSION_KEY]


def test_password_change_signs_out_other_sessions(app, participant):
    """It revokes every session of the account when the password changes."""
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, "T-0001")
    sign_in(laptop, "T-0001")
    response = laptop.post("/account/password", data={
        "current": PASSWORD, "password": "kettle river blue lantern",
        "confirm": "kettle river blue lantern"})
    assert response.headers["Location"] == "/login"
    assert phone.get("/").headers["Location"].startswith("/login")
    assert laptop.get("/").headers["Location"].startswith("/login")


def test_admin_sign_out_revokes_every_session(app, client, auth):
    """It lets an admin sign a user out everywhere at once."""
    with app.app_context():
        make_staff("admin")
        target = make_participant(code="T-0001", name="Quiet Harbour").user_id
    browser = app.test_client()
    sign_in(browser, "T-0001")
    assert browser.get("/").status_code == 200

    auth.login("admin@example.org")
    response = client.post(f"/admin/users/{target}/sign_out")
    assert response.status_code == 302
    assert browser.get("/").headers["Location"].startswith("/login")
    assert "user.signed_out" in audit_actions(app)
    # the admin's own session is untouched
    assert client.get("/admin/users").status_code == 200


def test_non_admin_cannot_sign_others_out(app, client):
    """It refuses the sign-out action to anyone but an admin."""
    with app.app_context():
        make_staff("peer_moderator")
        target = make_participant(code="T-0001", name="Quiet Harbour").user_id
    browser = app.test_client()
    sign_in(browser, "T-0001")
    sign_in(client, "peer_moderator@example.org")
    assert client.post(f"/admin/users/{target}/sign_out").status_code == 403
    assert browser.get("/").status_code == 200


def test_disabling_an_account_ends_its_sessions(app, client, auth):
    """It signs a user out when an admin disables the account."""
    with app.app_context():
        make_staff("admin")
        target = make_participant(code="T-0001", name="Quiet Harbour").user_id
    browser = app.test_client()
    sign_in(browser, "T-0001")
    auth.login("admin@example.org")
    client.post(f"/admin/users/{target}/disable")
    assert browser.get("/").headers["Location"].startswith("/login")
    assert sign_in(browser, "T-0001").status_code == 200


def test_password_change_does_not_accept_the_old_password(app, participant):
    """It lets only the new password in after a change made elsewhere (service level)."""
    from core.auth import change_password

    with app.app_context():
        user = db.session.scalar(select(User).where(User.display_key == "quiet harbour"))
        change_password(user, "kettle river blue lantern", actor=user)
        db.session.commit()
    browser = app.test_client()
    assert MISMATCH in sign_in(browser, "T-0001").data
    assert sign_in(browser, "T-0001", "kettle river blue lantern").status_code == 302

