"""Invites (enrol, accept, expire, reuse, tamper) and consent, first time and again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from core import accounts, clock
from core.audit import AuditEntry
from core.events import ActivityEvent
from core.extensions import db
from core.models import ConsentRecord, ConsentVersion, Invite, Participant, User, UserSession
from core.passwords import check_password
from core.roles import Role
from tests.conftest import PASSWORD, AuthActions
from tests.core.routes import guarded_requests
from tests.factories import CONSENT_TEXT, make_consent, make_participant, make_staff, make_study

START = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
NEW_PASSWORD = "kettle river blue lantern"


@pytest.fixture(autouse=True)
def _frozen_clock():
    clock.set_time(START)


@dataclass
class Enrolled:
    token: str
    participant_id: int
    consent_id: int


@pytest.fixture
def enrolled(app) -> Enrolled:
    """A participant enrolled by a researcher, with a consent text published."""
    with app.app_context():
        study = make_study()
        consent = make_consent()
        researcher = make_staff("researcher")
        issued = accounts.enrol_participant(study, actor=researcher)
        db.session.commit()
        return Enrolled(issued.token, issued.invite.participant_id, consent.id)


def answers(enrolled: Enrolled, **changes) -> dict[str, str]:
    data = {"display_name": "Tea Drinker", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
            "timezone": "Europe/Paris", "phone": "07400 123456", "sms_consent": "y",
            "consent_version_id": str(enrolled.consent_id), "consent": "y"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def participant_row(enrolled: Enrolled) -> Participant:
    return db.session.get(Participant, enrolled.participant_id)


def publish(version: str) -> ConsentVersion:
    admin = db.session.scalar(select(User).where(User.role == Role.ADMIN))
    row = accounts.publish_consent(version, CONSENT_TEXT + f" (Version {version}.)", actor=admin)
    db.session.commit()
    return row


# --- enrolment ---------------------------------------------------------------------------

def test_researcher_enrols_a_participant_with_an_invite(app, enrolled):
    """It creates an invited participant with no password, and stores only the token's hash."""
    with app.app_context():
        participant = participant_row(enrolled)
        assert participant.status == "invited"
        assert participant.user.password_hash is None
        assert participant.study_code == "T-0001"
        invite = db.session.scalar(select(Invite))
        assert invite.token_hash == accounts.token_hash(enrolled.token)
        assert enrolled.token not in invite.token_hash
        assert invite.expires_at == START + timedelta(days=app.config["INVITE_VALID_DAYS"])


def test_only_researchers_and_admins_enrol(app):
    """It refuses enrolment by a moderator."""
    with app.app_context():
        study = make_study()
        moderator = make_staff("clinician")
        with pytest.raises(accounts.PermissionDenied):
            accounts.enrol_participant(study, actor=moderator)


def test_study_code_equal_to_a_display_name_is_refused(app):
    """It refuses a study code that is already someone's display name (sign-in takes either)."""
    with app.app_context():
        study = make_study()
        researcher = make_staff("researcher")
        make_participant(study, code="T-0001", name="Owl-7")
        with pytest.raises(accounts.AccountError) as caught:
            accounts.enrol_participant(study, actor=researcher, study_code="owl-7")
        assert caught.value.field == "study_code"


def test_generated_study_code_skips_display_names(app):
    """It skips a generated code that someone already uses as a display name."""
    with app.app_context():
        study = make_study()
        researcher = make_staff("researcher")
        make_participant(study, code="X-1", name="T-0002")
        issued = accounts.enrol_participant(study, actor=researcher)
        assert issued.invite.participant.study_code == "T-0003"


# --- accepting ------------------------------------------------------------------------------

def test_invite_page_shows_the_form(client, enrolled):
    """It shows the study code, the consent text and the form for a valid link."""
    response = client.get(f"/invite/{enrolled.token}")
    assert response.status_code == 200
    assert b"T-0001" in response.data
    assert b"Information about the study (version 1.0)" in response.data
    assert b"Create my account" in response.data
    assert b'<option selected value="Europe/London">' in response.data


def test_accepting_the_invite_sets_up_the_account(app, client, enrolled):
    """It saves password, name, E.164 phone, time zone and consent, marks the link used,
    signs the participant in and logs what happened."""
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled))
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert b"Hello, Tea Drinker" in home.data

    with app.app_context():
        participant = participant_row(enrolled)
        user = participant.user
        assert check_password(user.password_hash, NEW_PASSWORD)
        assert user.display_name == "Tea Drinker" and user.display_key == "tea drinker"
        assert participant.phone == "+447400123456"
        assert participant.timezone == "Europe/Paris"
        assert participant.sms_consent is True
        assert participant.status == "consented"
        record = db.session.scalar(select(ConsentRecord).where(ConsentRecord.user_id == user.id))
        assert record.consent_version_id == enrolled.consent_id
        assert record.sms_consent is True
        assert db.session.scalar(select(Invite.used_at)) == START
        actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
        assert {"invite.accepted", "consent.given", "login.succeeded"} <= set(actions)
        kinds = db.session.scalars(select(ActivityEvent.kind)
                                   .where(ActivityEvent.participant_id == participant.id)).all()
        assert {"invite_accepted", "consent_given", "login"} <= set(kinds)
        assert db.session.scalar(select(UserSession.user_id)) == user.id


def test_participant_can_sign_in_later_with_the_new_password(app, client, enrolled):
    """It lets the participant sign in with the chosen password after signing out."""
    client.post(f"/invite/{enrolled.token}", data=answers(enrolled))
    client.post("/logout")
    response = client.post("/login", data={"identifier": "tea drinker", "password": NEW_PASSWORD})
    assert response.headers["Location"] == "/"


def test_phone_and_sms_are_optional(app, client, enrolled):
    """It accepts an invite without a phone number and leaves text messages off."""
    response = client.post(f"/invite/{enrolled.token}",
                           data=answers(enrolled, phone="", sms_consent=None))
    assert response.status_code == 302
    with app.app_context():
        participant = participant_row(enrolled)
        assert participant.phone is None
        assert participant.sms_consent is False


def test_expired_invite_is_refused(app, client, enrolled):
    """It refuses a link older than INVITE_VALID_DAYS with a 404 saying it expired."""
    clock.advance(timedelta(days=app.config["INVITE_VALID_DAYS"], seconds=-1))
    assert client.get(f"/invite/{enrolled.token}").status_code == 200
    clock.advance(timedelta(seconds=1))
    response = client.get(f"/invite/{enrolled.token}")
    assert response.status_code == 404
    assert b"This invite link has expired" in response.data
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled))
    assert response.status_code == 404
    with app.app_context():
        assert participant_row(enrolled).user.password_hash is None


def test_reused_invite_is_refused(app, client, enrolled):
    """It refuses a link that has already set up an account."""
    client.post(f"/invite/{enrolled.token}", data=answers(enrolled))
    other = app.test_client()
    response = other.get(f"/invite/{enrolled.token}")
    assert response.status_code == 404
    assert b"already been used" in response.data
    response = other.post(f"/invite/{enrolled.token}",
                          data=answers(enrolled, display_name="Night Owl",
                                       password="other words entirely",
                                       confirm="other words entirely"))
    assert response.status_code == 404
    with app.app_context():
        user = participant_row(enrolled).user
        assert user.display_name == "Tea Drinker"
        assert check_password(user.password_hash, NEW_PASSWORD)


def test_tampered_invite_is_refused(client, enrolled):
    """It refuses a link with one character changed."""
    token = enrolled.token
    tampered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    response = client.get(f"/invite/{tampered}")
    assert response.status_code == 404
    assert b"This invite link is not valid" in response.data


def test_reissued_invite_revokes_the_old_link(app, client, enrolled):
    """It revokes the earlier link when the researcher sends a new one."""
    with app.app_context():
        researcher = db.session.scalar(select(User).where(User.role == Role.RESEARCHER))
        new = accounts.issue_invite(participant_row(enrolled), actor=researcher)
        db.session.commit()
        new_token = new.token
    old = client.get(f"/invite/{enrolled.token}")
    assert old.status_code == 404
    assert b"expired" in old.data
    assert client.get(f"/invite/{new_token}").status_code == 200
    assert client.post(f"/invite/{new_token}", data=answers(enrolled)).status_code == 302


def test_invite_cannot_be_reissued_after_set_up(app, client, enrolled):
    """It refuses a new link for a participant who has already set up their account."""
    client.post(f"/invite/{enrolled.token}", data=answers(enrolled))
    with app.app_context():
        researcher = db.session.scalar(select(User).where(User.role == Role.RESEARCHER))
        with pytest.raises(accounts.AccountError):
            accounts.issue_invite(participant_row(enrolled), actor=researcher)


def test_signed_in_user_is_not_shown_an_invite(app, client, enrolled):
    """It asks a signed-in user to sign out before using an invite link."""
    with app.app_context():
        make_participant(code="T-0100", name="Night Owl")
    client.post("/login", data={"identifier": "T-0100", "password": PASSWORD})
    response = client.get(f"/invite/{enrolled.token}")
    assert response.headers["Location"] == "/"


def test_invite_without_published_consent_is_unavailable(app, client):
    """It does not let anyone accept an invite before a consent text exists."""
    with app.app_context():
        study = make_study()
        issued = accounts.enrol_participant(study, actor=make_staff("researcher"))
        db.session.commit()
    response = client.get(f"/invite/{issued.token}")
    assert response.status_code == 503
    assert b"has not published its consent information" in response.data


# --- bad input keeps what was typed -----------------------------------------------------------

def assert_kept(page: bytes, display_name: str = "Tea Drinker") -> None:
    assert f'name="display_name" required type="text" value="{display_name}"'.encode() in page
    assert b'value="07400 123456"' in page
    assert b'<option selected value="Europe/Paris">' in page


def assert_not_set_up(app, enrolled: Enrolled) -> None:
    with app.app_context():
        participant = participant_row(enrolled)
        assert participant.user.password_hash is None
        assert participant.status == "invited"
        assert db.session.scalar(select(Invite.used_at)) is None
        assert db.session.scalar(select(ConsentRecord.id)
                                 .where(ConsentRecord.user_id == participant.user_id)) is None
        assert db.session.scalar(select(UserSession.id)) is None


def test_taken_display_name_is_refused_and_typing_kept(app, client, enrolled):
    """It refuses a display name someone else has (any case), keeping the typed answers."""
    with app.app_context():
        make_participant(code="T-0100", name="Tea Drinker")
    response = client.post(f"/invite/{enrolled.token}",
                           data=answers(enrolled, display_name="tea drinker"))
    assert response.status_code == 200
    assert b"Someone already uses that name" in response.data
    assert_kept(response.data, "tea drinker")
    assert_not_set_up(app, enrolled)


def test_weak_password_is_refused_and_typing_kept(app, client, enrolled):
    """It refuses a common password, keeping the other answers."""
    response = client.post(f"/invite/{enrolled.token}",
                           data=answers(enrolled, password="dragon2024!!", confirm="dragon2024!!"))
    assert response.status_code == 200
    assert b"That password is too common" in response.data
    assert b'id="password-error"' in response.data
    assert_kept(response.data)
    assert_not_set_up(app, enrolled)


def test_password_with_own_study_code_is_refused(app, client, enrolled):
    """It refuses a password that contains the participant's study code."""
    response = client.post(f"/invite/{enrolled.token}",
                           data=answers(enrolled, password="my code T-0001 ok",
                                        confirm="my code T-0001 ok"))
    assert response.status_code == 200
    assert b"should not contain your name" in response.data
    assert_not_set_up(app, enrolled)


def test_mismatched_password_confirmation_is_refused(app, client, enrolled):
    """It asks for the same password twice."""
    response = client.post(f"/invite/{enrolled.token}",
                           data=answers(enrolled, confirm="kettle river blue lanterns"))
    assert response.status_code == 200
    assert b"The passwords differ." in response.data
    assert_kept(response.data)
    assert_not_set_up(app, enrolled)


@pytest.mark.parametrize("phone, message", [
    ("12345", b"That phone number is not valid"),
    ("call me", b"That does not look like a phone number"),
    ("020 7946 0018", b"Please give a mobile number"),
])
def test_invalid_phone_is_refused_and_typing_kept(app, client, enrolled, phone, message):
    """It refuses a phone number that cannot receive texts, keeping what was typed."""
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled, phone=phone))
    assert response.status_code == 200
    assert message in response.data
    assert b'id="phone-error"' in response.data
    assert f'value="{phone}"'.encode() in response.data
    assert b'value="Tea Drinker"' in response.data
    assert_not_set_up(app, enrolled)


def test_real_looking_name_is_refused_and_typing_kept(app, client, enrolled):
    """It refuses a first name and surname as the display name, keeping the typed answers."""
    response = client.post(f"/invite/{enrolled.token}",
                           data=answers(enrolled, display_name="Sarah Jones"))
    assert response.status_code == 200
    assert b"That looks like a real first name and surname" in response.data
    assert b'id="display_name-error"' in response.data
    assert_kept(response.data, "Sarah Jones")
    assert_not_set_up(app, enrolled)


@pytest.mark.parametrize("name, message", [
    ("me@example.org", b"looks like an e-mail address"),
    ("07400 123456", b"looks like a phone number"),
    ("<b>Bold</b>", b"Use letters, numbers"),
    ("ab", b"Use 3 to 30 characters"),
    ("T-0001", b"That is a study code"),
])
def test_identifying_or_malformed_display_name_is_refused(app, client, enrolled, name, message):
    """It refuses display names that identify someone or break the rules."""
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled, display_name=name))
    assert response.status_code == 200
    assert message in response.data
    assert_not_set_up(app, enrolled)


def test_unknown_time_zone_is_refused(app, client, enrolled):
    """It accepts only time zones from the list."""
    response = client.post(f"/invite/{enrolled.token}",
                           data=answers(enrolled, timezone="Mars/Olympus_Mons"))
    assert response.status_code == 200
    assert b"Not a valid choice" in response.data
    assert_not_set_up(app, enrolled)


def test_unticked_consent_is_refused(app, client, enrolled):
    """It does not set up an account without agreement to take part."""
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled, consent=None))
    assert response.status_code == 200
    assert b"You need to agree to take part." in response.data
    assert_kept(response.data)
    assert_not_set_up(app, enrolled)


def test_sms_consent_without_phone_is_refused(app, client, enrolled):
    """It asks for a number when text messages are ticked without one."""
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled, phone=""))
    assert response.status_code == 200
    assert b"Add a mobile number to receive text messages" in response.data
    assert b'id="phone-error"' in response.data
    assert_not_set_up(app, enrolled)


def test_consent_changed_while_reading_asks_to_agree_again(app, client, enrolled):
    """It refuses agreement to a consent version that is no longer current, shows the new
    one with the box unticked, and accepts agreement to it."""
    assert b"version 1.0" in client.get(f"/invite/{enrolled.token}").data
    with app.app_context():
        new_id = publish("1.1").id
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled))
    assert response.status_code == 200
    assert b"The consent information changed while you were reading it" in response.data
    assert b"Information about the study (version 1.1)" in response.data
    assert f'name="consent_version_id" type="hidden" value="{new_id}"'.encode() in response.data
    assert b'id="consent" name="consent" required type="checkbox" value="y">' in response.data
    assert_kept(response.data)
    assert_not_set_up(app, enrolled)

    response = client.post(f"/invite/{enrolled.token}",
                           data=answers(enrolled, consent_version_id=str(new_id)))
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(ConsentRecord.consent_version_id)) == new_id


@pytest.mark.parametrize("version_id", ["abc", "-1", "1.0", "²"])
def test_mangled_consent_version_asks_to_agree_again(app, client, enrolled, version_id):
    """It treats a consent version id that is not a plain number as an outdated version
    (asked to agree again), not as a server error."""
    response = client.post(f"/invite/{enrolled.token}",
                           data=answers(enrolled, consent_version_id=version_id))
    assert response.status_code == 200
    assert b"The consent information changed while you were reading it" in response.data
    assert_not_set_up(app, enrolled)


# --- consent again after a new version -------------------------------------------------------

@pytest.fixture
def signed_in(app, client):
    """A participant who agreed to version 1.0 and is signed in."""
    with app.app_context():
        make_staff("admin")
        make_participant(code="T-0001", name="Quiet Harbour")
    client.post("/login", data={"identifier": "T-0001", "password": PASSWORD})
    assert client.get("/").status_code == 200


def test_new_consent_version_sends_participants_to_consent_from_every_page(app, client,
                                                                          signed_in):
    """It redirects a signed-in participant from every page to /consent once a new version
    is published."""
    with app.app_context():
        publish("1.1")
    for method, path in guarded_requests(app):
        response = client.open(path, method=method)
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"] == "/consent", (method, path)
    page = client.get("/consent")
    assert page.status_code == 200
    assert b"The study information has changed" in page.data
    assert b"Version 1.1." in page.data


def test_new_consent_version_does_not_gate_staff(app, signed_in):
    """It leaves staff alone when the participant consent text changes."""
    with app.app_context():
        publish("1.1")
    staff = app.test_client()
    AuthActions(staff, app).login("admin@example.org")
    assert staff.get("/admin/users").status_code == 200


def test_agreeing_again_records_it_and_lets_the_participant_through(app, client, signed_in):
    """It records agreement to the new version and lets the participant carry on."""
    with app.app_context():
        version_id = publish("1.1").id
    response = client.post("/consent", data={"consent_version_id": str(version_id),
                                             "agree": "I agree"})
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get("/consent").headers["Location"] == "/"
    with app.app_context():
        versions = db.session.scalars(select(ConsentRecord.consent_version_id)).all()
        assert version_id in versions and len(versions) == 2
        assert db.session.scalar(select(AuditEntry.id).where(
            AuditEntry.action == "consent.given")) is not None


def test_agreeing_to_an_outdated_version_asks_again(app, client, signed_in):
    """It does not record agreement to a version that was replaced while the page was open."""
    with app.app_context():
        old_id = publish("1.1").id
        publish("1.2")
    response = client.post("/consent", data={"consent_version_id": str(old_id),
                                             "agree": "I agree"})
    assert response.headers["Location"] == "/consent"
    assert b"Version 1.2." in client.get("/consent").data
    assert client.get("/").headers["Location"] == "/consent"
    with app.app_context():
        assert old_id not in db.session.scalars(select(ConsentRecord.consent_version_id)).all()


def test_declining_signs_out_and_is_audited(app, client, signed_in):
    """It signs out a participant who does not agree and records the refusal."""
    with app.app_context():
        version_id = publish("1.1").id
    response = client.post("/consent", data={"consent_version_id": str(version_id),
                                             "decline": "I do not agree"})
    assert response.headers["Location"] == "/login"
    page = client.get("/login")
    assert b"You have not agreed to the new information, so you are signed out" in page.data
    assert client.get("/").headers["Location"].startswith("/login")
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "consent.declined"))
        assert entry.detail == {"version": "1.1"}
        assert db.session.scalar(select(UserSession.revoked_at)) is not None
        assert version_id not in db.session.scalars(select(ConsentRecord.consent_version_id)).all()


def test_reconsent_can_turn_text_messages_off(app, client, signed_in):
    """It takes the text-message choice made on the consent page."""
    with app.app_context():
        participant = db.session.scalar(select(Participant))
        participant.phone, participant.sms_consent = "+447400123456", True
        db.session.commit()
        version_id = publish("1.1").id
    client.post("/consent", data={"consent_version_id": str(version_id), "agree": "I agree"})
    with app.app_context():
        assert db.session.scalar(select(Participant.sms_consent)) is False


def test_consent_post_without_agree_or_decline_records_nothing(app, client, signed_in):
    """It records agreement only when the participant pressed "I agree"."""
    with app.app_context():
        version_id = publish("1.1").id
    response = client.post("/consent", data={"consent_version_id": str(version_id)})
    assert response.status_code == 400
    with app.app_context():
        assert version_id not in db.session.scalars(
            select(ConsentRecord.consent_version_id)).all()


def test_an_invite_claimed_meanwhile_is_not_accepted_twice(app, client, enrolled):
    """It lets exactly one acceptance of an invite win: when the link was used between
    loading the invite and saving (two tabs, two people), the later one gets the clear
    "already used" message instead of a server error, and none of its answers is saved."""
    with app.app_context():
        invite = accounts.find_invite(enrolled.token)
        # another request claims the link after this one has loaded it
        db.session.execute(update(Invite).where(Invite.id == invite.id)
                           .values(used_at=clock.utcnow()))
        with pytest.raises(accounts.AccountError, match="already been used"):
            accounts._claim_invite(invite)
        db.session.rollback()
    with app.app_context():
        db.session.execute(update(Invite).where(Invite.participant_id == enrolled.participant_id)
                           .values(used_at=clock.utcnow()))
        db.session.commit()
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled))
    assert b"already been used" in response.data
    with app.app_context():
        assert db.session.scalar(select(func.count(ConsentRecord.id))) == 0
        assert db.session.get(Participant, enrolled.participant_id).user.password_hash is None


def test_an_invite_cannot_move_a_withdrawn_participant_back(app, client, enrolled):
    """It refuses an invite whose participant is no longer "invited" (withdrawn meanwhile),
    so their status never goes back to consented."""
    with app.app_context():
        participant = db.session.get(Participant, enrolled.participant_id)
        participant.status = "withdrawn"
        db.session.commit()
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled))
    assert b"can no longer be used" in response.data
    with app.app_context():
        assert db.session.get(Participant, enrolled.participant_id).status == "withdrawn"
        assert db.session.scalar(select(func.count(ConsentRecord.id))) == 0


def test_a_study_that_pins_a_consent_version_keeps_its_participants_on_it(app, client,
                                                                          signed_in):
    """It asks the participants of a study that pins version 1.0 for nothing more when 1.1
    is published (the study's set-up decides); unpinning sends them to agree to 1.1."""
    from outcomes.models import Study

    with app.app_context():
        study = db.session.scalar(select(Study))
        first = db.session.scalar(select(ConsentVersion).where(ConsentVersion.version == "1.0"))
        study.consent_version_id = first.id
        db.session.commit()
        publish("1.1")
        person = db.session.scalar(select(Participant))
        assert accounts.current_consent(person).version == "1.0"
        assert accounts.current_consent().version == "1.1"
    assert client.get("/").status_code == 200
    with app.app_context():
        db.session.scalar(select(Study)).consent_version_id = None
        db.session.commit()
    assert client.get("/").headers["Location"] == "/consent"


def test_an_invite_shows_the_version_its_study_pins(app, client, enrolled):
    from outcomes.models import Study

    with app.app_context():
        pinned = db.session.get(ConsentVersion, enrolled.consent_id)
        db.session.scalar(select(Study)).consent_version_id = pinned.id
        publish("2.0")
    page = client.get(f"/invite/{enrolled.token}").get_data(as_text=True)
    assert f'value="{enrolled.consent_id}"' in page
    response = client.post(f"/invite/{enrolled.token}", data=answers(enrolled))
    assert response.status_code == 302
    with app.app_context():
        (record,) = db.session.scalars(select(ConsentRecord)).all()
        assert record.consent_version_id == enrolled.consent_id
