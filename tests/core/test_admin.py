"""The admin pages: staff accounts and roles, site settings, consent versions
and the audit log, driven through the pages as an administrator would."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import pytest
from flask import url_for
from sqlalchemy import func, select

from core import audit
from core.audit import AuditEntry
from core.extensions import db
from core.models import ConsentVersion, SiteSetting, User, UserSession
from core.roles import Role
from tests.conftest import PASSWORD, AuthActions
from tests.core.routes import url_values
from tests.factories import CONSENT_TEXT, make_participant, make_staff

NEW_CONSENT = CONSENT_TEXT + " We now also ask about your sleep."
RESOURCES = ("Lifeline North | 0800 123 456 | https://lifeline.example.org "
             "| Any time, day or night\n"
             "Text Line | Text HELLO to 80000 |  | Evenings and weekends")
SETTINGS = {"site_name": "Kinship North", "crisis_intro": "Help is close. Call one of these.",
            "crisis_resources": RESOURCES, "study_contact": "The north team: 0161 000 0000."}


@pytest.fixture
def ids(app) -> dict[str, int]:
    """An admin, a peer moderator with a participant, and a researcher."""
    with app.app_context():
        admin = make_staff(Role.ADMIN)
        peer = make_staff(Role.PEER_MODERATOR)
        researcher = make_staff(Role.RESEARCHER)
        participant = make_participant(code="T-0001", moderator=peer)
        return {"admin": admin.id, "peer": peer.id, "researcher": researcher.id,
                "participant": participant.id, "participant_user": participant.user_id}


@pytest.fixture
def admin(auth, ids):
    response = auth.login("admin@example.org")
    assert response.status_code == 302
    return auth


def _path(response) -> str:
    return urlsplit(response.headers["Location"]).path


def _text(response) -> str:
    return unescape(response.get_data(as_text=True))


def _audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                  .order_by(AuditEntry.seq)).all()


def _user(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def _signed_in_client(app, identifier: str):
    other = app.test_client()
    assert AuthActions(other, app).login(identifier).status_code == 302
    assert other.get("/account").status_code == 200
    return other


# --- staff accounts ---------------------------------------------------------------

def test_admin_creates_staff_account(app, client, admin):
    """It creates the account with the chosen role, audits it, and sends a
    role that needs two-step sign-in to set it up first."""
    response = client.post("/admin/users/new", data={
        "email": "New.Person@Example.org", "display_name": "Dr Ada North", "role": "clinician",
        "password": "tangerine orbit lantern"})
    assert response.status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "new.person@example.org"))
        assert user.role == Role.CLINICIAN
        assert _path(response) == f"/admin/users/{user.id}"
        created = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "user.created"))
        assert created.target_id == user.id and created.detail == {"role": "clinician"}
    other = app.test_client()
    response = other.post("/login", data={"identifier": "new.person@example.org",
                                          "password": "tangerine orbit lantern"})
    assert _path(response) == "/account/two-step"


def test_weak_password_is_refused_and_email_kept(app, client, admin):
    """It refuses a common password with the reason, keeps the typed e-mail,
    never echoes the password, and creates nothing."""
    response = client.post("/admin/users/new", data={
        "email": "weak.person@example.org", "role": "researcher", "password": "password123"})
    assert response.status_code == 200
    text = _text(response)
    assert "That password is too common" in text
    assert 'value="weak.person@example.org"' in text
    assert "password123" not in text
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id)).where(
            User.email == "weak.person@example.org")) == 0


def test_duplicate_email_is_refused(app, client, admin):
    """It refuses an e-mail that is already used, whatever its case."""
    with app.app_context():
        before = db.session.scalar(select(func.count(User.id)))
    response = client.post("/admin/users/new", data={
        "email": "Researcher@Example.org", "role": "researcher",
        "password": "tangerine orbit lantern"})
    assert response.status_code == 200
    assert "An account with that e-mail address already exists." in _text(response)
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == before


def test_participant_role_is_not_offered_for_staff_accounts(app, client, admin):
    """It does not offer the participant role, and refuses it when sent anyway."""
    page = _text(client.get("/admin/users/new"))
    assert 'value="researcher"' in page
    assert 'value="participant"' not in page
    response = client.post("/admin/users/new", data={
        "email": "sneaky@example.org", "role": "participant",
        "password": "tangerine orbit lantern"})
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "sneaky@example.org")) is None


def test_users_list_filters_by_role_and_finds_names_as_typed(app, client, admin):
    """It filters accounts by role, and finds a display name with accents and
    capitals as it is shown."""
    with app.app_context():
        make_participant(code="T-0002", name="Zoë Brightwater")
    page = _text(client.get("/admin/users?role=researcher"))
    assert "researcher@example.org" in page and "admin@example.org" not in page
    page = _text(client.get("/admin/users?q=Zoë Bright"))
    assert "Zoë Brightwater" in page and "Quiet Harbour" not in page
    page = _text(client.get("/admin/users?q=PEER_moderator@"))
    assert "peer_moderator@example.org" in page and "researcher@example.org" not in page


# --- roles --------------------------------------------------------------------------

def test_admin_changes_role_audits_it_and_signs_the_user_out(app, client, admin, ids):
    """It changes the role, records "user.role_changed" with old and new, and
    revokes every session of that user."""
    theirs = _signed_in_client(app, "peer_moderator@example.org")
    response = client.post(f"/admin/users/{ids['peer']}", data={"role": "clinician"})
    assert response.status_code == 302
    assert "Role changed to Clinician" in _text(client.get(_path(response)))
    assert _user(app, ids["peer"]).role == Role.CLINICIAN
    [entry] = _audit(app, "user.role_changed")
    assert (entry.actor_id, entry.target_id) == (ids["admin"], ids["peer"])
    assert entry.detail == {"old": "peer_moderator", "new": "clinician"}
    with app.app_context():
        live = db.session.scalar(select(func.count(UserSession.id)).where(
            UserSession.user_id == ids["peer"], UserSession.revoked_at.is_(None)))
        assert live == 0
    assert _path(theirs.get("/account")) == "/login"


def test_admin_cannot_change_own_role(app, client, admin, ids):
    """It refuses an admin's change to their own role and leaves it as it was."""
    response = client.post(f"/admin/users/{ids['admin']}", data={"role": "researcher"})
    assert response.status_code == 200
    assert "You cannot change your own role" in _text(response)
    assert _user(app, ids["admin"]).role == Role.ADMIN
    assert _audit(app, "user.role_changed") == []
    assert client.get("/admin/users").status_code == 200


def test_unchanged_role_neither_signs_out_nor_logs_a_change(app, client, admin, ids):
    """It treats the role button pressed on the current role as no change:
    no audit entry, and the user stays signed in."""
    theirs = _signed_in_client(app, "peer_moderator@example.org")
    response = client.post(f"/admin/users/{ids['peer']}", data={"role": "peer_moderator"})
    assert _path(response) == f"/admin/users/{ids['peer']}"
    assert "The role is unchanged." in _text(client.get(_path(response)))
    assert _audit(app, "user.role_changed") == []
    assert theirs.get("/account").status_code == 200


def test_participant_cannot_be_made_staff(app, client, admin, ids):
    """It refuses to turn a participant account into a staff account."""
    response = client.post(f"/admin/users/{ids['participant_user']}", data={"role": "admin"})
    assert response.status_code == 200
    assert _user(app, ids["participant_user"]).role == Role.PARTICIPANT


# --- enable and disable -------------------------------------------------------------

def test_disabled_user_cannot_sign_in_until_enabled(app, client, admin, ids):
    """It signs a disabled user out, refuses their password, and lets them
    back in once the account is enabled again."""
    theirs = _signed_in_client(app, "peer_moderator@example.org")
    response = client.post(f"/admin/users/{ids['peer']}/disable")
    assert _path(response) == f"/admin/users/{ids['peer']}"
    assert _user(app, ids["peer"]).is_enabled is False
    assert [e.target_id for e in _audit(app, "user.disabled")] == [ids["peer"]]
    assert _path(theirs.get("/account")) == "/login"

    response = app.test_client().post("/login", data={"identifier": "peer_moderator@example.org",
                                                      "password": PASSWORD})
    assert response.status_code == 200
    assert "do not match" in _text(response)

    client.post(f"/admin/users/{ids['peer']}/enable")
    assert _user(app, ids["peer"]).is_enabled is True
    assert [e.target_id for e in _audit(app, "user.enabled")] == [ids["peer"]]
    response = app.test_client().post("/login", data={"identifier": "peer_moderator@example.org",
                                                      "password": PASSWORD})
    assert _path(response) == "/"


def test_admin_cannot_disable_own_account(app, client, admin, ids):
    """It refuses an admin's attempt to disable themselves."""
    response = client.post(f"/admin/users/{ids['admin']}/disable", follow_redirects=True)
    assert "You cannot disable your own account." in _text(response)
    assert _user(app, ids["admin"]).is_enabled is True


# --- site settings ------------------------------------------------------------------

def test_saved_crisis_resources_appear_on_help_for_anonymous_visitors(app, client, admin):
    """It parses "name | phone | url | detail" lines and shows what was saved
    on /help to anyone, with the site name and study contact."""
    response = client.post("/admin/settings", data=SETTINGS)
    assert _path(response) == "/admin/settings"
    with app.app_context():
        saved = db.session.get(SiteSetting, "crisis_resources").value
    assert saved == [
        {"name": "Lifeline North", "phone": "0800 123 456", "url": "https://lifeline.example.org",
         "detail": "Any time, day or night"},
        {"name": "Text Line", "phone": "Text HELLO to 80000", "url": "",
         "detail": "Evenings and weekends"},
    ]
    assert {e.detail["key"] for e in _audit(app, "settings.changed")} == set(SETTINGS)

    page = _text(app.test_client().get("/help"))
    for expected in ("Kinship North", "Help is close. Call one of these.", "Lifeline North",
                     'href="tel:0800123456"', 'href="https://lifeline.example.org"',
                     "Any time, day or night", "Text HELLO to 80000",
                     "The north team: 0161 000 0000."):
        assert expected in page
    assert "Samaritans" not in page


def test_international_crisis_number_is_a_phone_link(app, client, admin):
    """It makes a number written with a leading + tappable, and leaves text-only
    instructions as text."""
    client.post("/admin/settings", data={**SETTINGS, "crisis_resources": (
        "Lifeline | +1 800 273 8255 | |\nText Line | Text HELLO to 80000 | |")})
    page = _text(app.test_client().get("/help"))
    assert '<a href="tel:+18002738255">+1 800 273 8255</a>' in page
    assert 'href="tel:Text' not in page


def test_settings_form_shows_saved_resources_as_lines(app, client, admin):
    """It shows the saved resources back in the same line format."""
    client.post("/admin/settings", data=SETTINGS)
    page = _text(client.get("/admin/settings"))
    assert ("Lifeline North | 0800 123 456 | https://lifeline.example.org | "
            "Any time, day or night") in page


@pytest.mark.parametrize(("resources", "message"), [
    ("Good One | 111 | |\nno phone and no address",
     "Line 2: give a phone number or a web address."),
    ("\nGood One | 111\nBad | 1 | ftp://example.org | x", "Line 3: web addresses start with https://."),
    ("Too | many | parts | here | again", "Line 1: use 'name | phone | web address | when"),
    (" | 111 | | nameless", "Line 1: use 'name | phone | web address | when"),
])
def test_bad_crisis_resource_line_is_reported_by_number(app, client, admin, resources, message):
    """It names the bad line, keeps the typed text, and saves nothing."""
    response = client.post("/admin/settings", data={**SETTINGS, "crisis_resources": resources})
    assert response.status_code == 200
    text = _text(response)
    assert message in text
    assert resources.strip() in text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SiteSetting)) == 0
    assert "Samaritans" in _text(app.test_client().get("/help"))



def test_crisis_link_is_on_every_page(app, client, admin, ids):
    """It links to /help from every page, for anonymous visitors and signed-in roles."""
    participant = app.test_client()
    AuthActions(participant, app).login("T-0001")
    anonymous = app.test_client()
    values = {"user_id": ids["peer"], "participant_id": ids["participant"], "token": "made-up"}
    with app.test_request_context():
        paths = sorted({url_for(rule.endpoint, **url_values(rule, values))
                        for rule in app.url_map.iter_rules()
                        if "GET" in rule.methods and rule.endpoint != "static"})
    checked = downloads = 0
    for who in (client, participant, anonymous):
        for path in [*paths, "/no-such-page"]:
            response = who.get(path, follow_redirects=True)
            if response.mimetype != "text/html":
                # downloads (YAML exports) and /healthz are not pages
                assert response.mimetype in ("application/json", "application/yaml",
                                             "text/plain"), (path, response.mimetype)
                downloads += 1
                continue
            assert 'class="crisis-link" href="/help"' in response.get_data(as_text=True), path
            checked += 1
    assert checked >= 3 * len(paths) - downloads
    assert downloads <= 3 * 3  # /healthz and the two YAML exports, per visitor


# --- consent versions ---------------------------------------------------------------

ROW = re.compile(r'<tr><td>(?P<version>[^<\s]+)(?P<current> <span class="tag tag-green">current'
                 r'</span>)?</td>\s*<td>[^<]*</td><td>(?P<agreed>\d+)</td></tr>')


def _versions(client) -> list[tuple[str, bool, int]]:
    page = client.get("/admin/consent").get_data(as_text=True)
    return [(m["version"], bool(m["current"]), int(m["agreed"])) for m in ROW.finditer(page)]


def test_published_consent_version_is_current_with_its_agreements(app, client, admin):
    """It lists a new version first as current with no agreements yet, keeps the
    old one's count, and asks participants to agree again."""
    assert _versions(client) == [("1.0", True, 1)]
    response = client.post("/admin/consent", data={"version": "2.0", "text": NEW_CONSENT})
    assert _path(response) == "/admin/consent"
    assert _versions(client) == [("2.0", True, 0), ("1.0", False, 1)]
    assert [e.detail["version"] for e in _audit(app, "consent.published")] == ["1.0", "2.0"]

    participant = app.test_client()
    AuthActions(participant, app).login("T-0001")
    assert _path(participant.get("/")) == "/consent"
    with app.app_context():
        newest = db.session.scalar(select(ConsentVersion.id).where(ConsentVersion.version == "2.0"))
    participant.post("/consent", data={"consent_version_id": str(newest), "agree": "I agree"})
    assert _versions(client) == [("2.0", True, 1), ("1.0", False, 1)]


def test_consent_text_is_markdown_with_paragraphs_not_line_breaks(app, client, admin):
    """A paragraph wrapped over several lines reads as one paragraph (the form says
    Markdown: blank lines between paragraphs), as participants see it when asked to agree."""
    text = ("**What taking part means.** For 12 weeks you can use Kinship as much or\n"
            "as little as you like, and stop at any time.\n\n- Questionnaires at the start\n"
            "- Short text messages, if you agree")
    client.post("/admin/consent", data={"version": "2.0", "text": text})
    with app.app_context():
        html = db.session.scalar(select(ConsentVersion.html).where(ConsentVersion.version == "2.0"))
    assert "<br" not in html
    assert ("<p><strong>What taking part means.</strong> For 12 weeks you can use Kinship as "
            "much or\nas little as you like, and stop at any time.</p>") in html
    assert "<li>Questionnaires at the start</li>" in html


@pytest.mark.parametrize(("version", "text", "message"), [
    ("2.0", "Too short to be real consent.", "The consent text looks too short to be complete."),
    ("1.0", NEW_CONSENT, "Version 1.0 already exists; use a new label."),
])
def test_bad_consent_version_is_refused(app, client, admin, version, text, message):
    """It refuses consent text that is too short and a label already used."""
    response = client.post("/admin/consent", data={"version": version, "text": text})
    assert response.status_code == 200
    assert message in _text(response)
    with app.app_context():
        assert db.session.scalar(select(func.count(ConsentVersion.id))) == 1


# --- audit log ----------------------------------------------------------------------

AUDIT_ROW = re.compile(r"<tr><td>(\d+)</td><td>[^<]*</td>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>")
OLDER = re.compile(r'href="(/admin/audit\?before=\d+)">Older entries')


def test_audit_log_lists_newest_first_with_paging(app, client, admin):
    """It shows the newest 50 entries first and pages back to the oldest."""
    with app.app_context():
        for number in range(60):
            audit.record("test.filler", number=number)
        db.session.commit()
        total = db.session.scalar(select(func.max(AuditEntry.seq)))
    page = client.get("/admin/audit").get_data(as_text=True)
    rows = AUDIT_ROW.findall(page)
    first = [int(seq) for seq, _ in rows]
    assert len(first) == 50
    assert first == list(range(total, total - 50, -1))
    assert rows[0][1] == "test.filler"

    older = OLDER.search(page)
    assert older is not None
    page = client.get(unescape(older.group(1))).get_data(as_text=True)
    rest = [int(seq) for seq, _ in AUDIT_ROW.findall(page)]
    assert rest == list(range(total - 50, 0, -1))
    assert OLDER.search(page) is None
