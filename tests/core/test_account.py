"""A signed-in person's own settings: profile and password."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select

from core import clock
from core.audit import AuditEntry
from core.extensions import db
from core.models import Participant, User, UserSession
from core.passwords import check_password
from tests.conftest import PASSWORD
from tests.factories import make_participant, make_staff

START = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
NEW_PASSWORD = "kettle river blue lantern"


@pytest.fixture(autouse=True)
def _frozen_clock():
    clock.set_time(START)


@pytest.fixture
def signed_in(app, client):
    """Participant T-0001, "Quiet Harbour", signed in."""
    with app.app_context():
        make_participant(code="T-0001", name="Quiet Harbour")
    client.post("/login", data={"identifier": "T-0001", "password": PASSWORD})


def profile(**changes) -> dict[str, str]:
    data = {"display_name": "Still Water", "timezone": "Europe/Berlin", "phone": "07400 123456",
            "sms_consent": "y", "wake_start": "08:30", "wake_end": "21:30"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def saved() -> Participant:
    return db.session.scalar(select(Participant))


def assert_unchanged(app) -> None:
    with app.app_context():
        participant = saved()
        assert participant.user.display_name == "Quiet Harbour"
        assert participant.timezone == "Europe/London"
        assert participant.phone is None
        assert (participant.wake_start, participant.wake_end) == (time(9), time(20))


# --- profile -------------------------------------------------------------------------------

def test_account_page_shows_current_settings(client, signed_in):
    """It fills the form with the participant's current settings."""
    page = client.get("/account").data
    assert b'value="Quiet Harbour"' in page
    assert b'<option selected value="Europe/London">' in page
    assert b'value="09:00"' in page and b'value="20:00"' in page


def test_participant_updates_profile(app, client, signed_in):
    """It saves display name, time zone, phone (in E.164), text messages and waking window."""
    response = client.post("/account", data=profile())
    assert response.headers["Location"] == "/account"
    page = client.get("/account").data
    assert b"Your settings are saved." in page
    assert "Now: ••••••••••456".encode() in page  # the number is shown masked
    with app.app_context():
        participant = saved()
        assert participant.user.display_name == "Still Water"
        assert participant.user.display_key == "still water"
        assert participant.timezone == "Europe/Berlin"
        assert participant.phone == "+447400123456"
        assert participant.sms_consent is True
        assert (participant.wake_start, participant.wake_end) == (time(8, 30), time(21, 30))
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "profile.updated"))
        assert sorted(entry.detail["fields"]) == ["display_name", "phone", "sms_consent"]
        assert "+447400123456" not in str(entry.detail)  # no phone numbers in the log


def test_keeping_own_display_name_is_not_a_clash(app, client, signed_in):
    """It lets a participant save without changing their name, or change only its case."""
    assert client.post("/account", data=profile(display_name="quiet harbour")).status_code == 302
    with app.app_context():
        assert saved().user.display_name == "quiet harbour"


def test_removing_the_phone_number(app, client, signed_in):
    """It clears the phone number and text messages when the field is emptied."""
    client.post("/account", data=profile())
    client.post("/account", data=profile(phone="", sms_consent=None))
    with app.app_context():
        assert saved().phone is None
        assert saved().sms_consent is False


def test_day_ending_before_it_starts_is_refused_and_typing_kept(app, client, signed_in):
    """It refuses a waking window whose end is not after its start, naming the end field,
    and keeps every typed value."""
    response = client.post("/account", data=profile(wake_start="22:00", wake_end="07:00"))
    assert response.status_code == 200
    assert b'id="wake_end-error">The end of your day must be after its start.' in response.data
    assert b'value="Still Water"' in response.data
    assert b'value="07400 123456"' in response.data
    assert b'<option selected value="Europe/Berlin">' in response.data
    assert b'value="22:00"' in response.data and b'value="07:00"' in response.data
    assert_unchanged(app)


def test_day_ending_when_it_starts_is_refused(app, client, signed_in):
    """It refuses an empty waking window."""
    response = client.post("/account", data=profile(wake_start="09:00", wake_end="09:00"))
    assert b"The end of your day must be after its start." in response.data
    assert_unchanged(app)


@pytest.mark.parametrize("changes, field, message", [
    ({"phone": "12345"}, "phone", b"That phone number is not valid"),
    ({"phone": "020 7946 0018"}, "phone", b"Please give a mobile number"),
    ({"phone": "", "sms_consent": "y"}, "phone", b"Add a mobile number to receive text messages"),
    ({"display_name": "Sarah Jones"}, "display_name", b"real first name and surname"),
    ({"display_name": "x"}, "display_name", b"Use 3 to 30 characters."),
    ({"display_name": "me@example.org"}, "display_name", b"looks like an e-mail address"),
    ({"display_name": "ß" * 21}, "display_name", b"Please choose a shorter name."),
    ({"wake_start": "9am"}, "wake_start", b"This field is required."),  # unreadable time
    ({"timezone": "Nowhere/Special"}, "timezone", b"Not a valid choice."),
])
def test_bad_profile_input_is_refused_on_its_field(app, client, signed_in, changes, field,
                                                   message):
    """It shows the problem next to the field at fault and saves nothing."""
    response = client.post("/account", data=profile(**changes))
    assert response.status_code == 200
    assert f'id="{field}-error"'.encode() in response.data
    assert message in response.data
    assert_unchanged(app)


def test_taken_display_name_is_refused_and_typing_kept(app, client, signed_in):
    """It refuses another account's name, keeping what was typed."""
    with app.app_context():
        make_participant(code="T-0002", name="Still Water")
    response = client.post("/account", data=profile(display_name="STILL WATER"))
    assert response.status_code == 200
    assert b"Someone already uses that name" in response.data
    assert b'value="STILL WATER"' in response.data
    assert b'value="07400 123456"' in response.data
    assert_unchanged(app)


def test_staff_account_page_has_no_profile_form(app, client, auth):
    """It shows staff their e-mail and role, and ignores a posted profile."""
    with app.app_context():
        make_staff("peer_moderator")
    auth.login("peer_moderator@example.org")
    page = client.get("/account")
    assert b"peer_moderator@example.org" in page.data
    assert b'name="display_name"' not in page.data
    assert client.post("/account", data=profile()).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(User.display_name).where(
            User.email == "peer_moderator@example.org")) is None


def test_account_page_needs_sign_in(client):
    """It sends visitors who are not signed in to the login page."""
    response = client.get("/account")
    assert response.headers["Location"].startswith("/login")


# --- password --------------------------------------------------------------------------------

def change(client, current: str = PASSWORD, new: str = NEW_PASSWORD, confirm: str | None = None):
    return client.post("/account/password", data={"current": current, "password": new,
                                                  "confirm": new if confirm is None else confirm})


def test_wrong_current_password_is_refused(app, client, signed_in):
    """It refuses the change without the right current password."""
    response = change(client, current="not my password at all")
    assert response.status_code == 200
    assert b"That is not your current password." in response.data
    with app.app_context():
        assert check_password(saved().user.password_hash, PASSWORD)
    assert client.get("/").status_code == 200  # still signed in


@pytest.mark.parametrize("new, message", [
    ("short", b"Use at least 10 characters."),
    ("dragon2024!!", b"That password is too common."),
    ("quiet harbour at dawn", b"should not contain your name"),
    ("1234567890", b"That password is too common."),
])
def test_weak_new_password_is_refused(app, client, signed_in, new, message):
    """It applies the password rules, the account's own name included, to the new password."""
    response = change(client, new=new)
    assert response.status_code == 200
    assert message in response.data
    assert b'id="password-error"' in response.data
    with app.app_context():
        assert check_password(saved().user.password_hash, PASSWORD)


def test_mismatched_confirmation_is_refused(app, client, signed_in):
    """It asks for the new password twice."""
    response = change(client, confirm=NEW_PASSWORD + "s")
    assert response.status_code == 200
    assert b"The passwords differ." in response.data
    with app.app_context():
        assert check_password(saved().user.password_hash, PASSWORD)


def test_password_change_signs_out_and_new_password_works(app, client, signed_in):
    """It changes the password, signs the user out everywhere, and only the new one works."""
    response = change(client)
    assert response.headers["Location"] == "/login"
    page = client.get("/login")
    assert b"Your password is changed and you were signed out everywhere" in page.data
    assert client.get("/").headers["Location"].startswith("/login")
    with app.app_context():
        assert db.session.scalar(select(UserSession.id)
                                 .where(UserSession.revoked_at.is_(None))) is None
        assert db.session.scalar(select(AuditEntry.id).where(
            AuditEntry.action == "password.changed")) is not None

    refused = client.post("/login", data={"identifier": "T-0001", "password": PASSWORD})
    assert b"do not match" in refused.data
    accepted = client.post("/login", data={"identifier": "T-0001", "password": NEW_PASSWORD})
    assert accepted.headers["Location"] == "/"


def test_staff_password_may_not_contain_their_email(app, client):
    """It refuses a staff password that contains the e-mail's local part."""
    with app.app_context():
        make_staff("peer_moderator", "river.song@example.org")
    client.post("/login", data={"identifier": "river.song@example.org", "password": PASSWORD})
    response = change(client, new="RiverSong forever and ever")
    assert b"should not contain your name" in response.data
