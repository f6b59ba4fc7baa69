"""Researcher pages: enrolling participants, invite links, the dashboard and the list."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import func, select

from core.audit import AuditEntry
from core.extensions import db
from core.models import Invite, Participant
from core.roles import Role
from outcomes.models import Study
from tests.conftest import PASSWORD
from tests.factories import make_consent, make_participant, make_staff, make_study
from tests.pages import form_values, table_rows


def sign_in_researcher(app, auth) -> None:
    with app.app_context():
        make_staff(Role.RESEARCHER)
    auth.login("researcher@example.org")


def enrol(client, **fields) -> str:
    """Enrol through the page and return the invite link it shows."""
    response = client.post("/research/participants/new",
                           data={"study_code": "", "site": "", "moderator_id": 0, **fields})
    assert response.status_code == 200
    return invite_link(response.data)


def invite_link(page: bytes) -> str:
    return form_values(page)["invite-link"]


def path_of(link: str) -> str:
    return link.removeprefix("http://kinship.test")


def participant_id(app, code: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Participant.id).where(Participant.study_code == code))


def accept(client, link: str, consent_id: int):
    return client.post(path_of(link), data={
        "display_name": "Paper Boat", "password": PASSWORD, "confirm": PASSWORD,
        "timezone": "Europe/London", "consent_version_id": str(consent_id), "consent": "y"})


# --- enrolling -------------------------------------------------------------------

def test_enrolment_generates_a_study_code(app, client, auth):
    """It gives a participant the next code of the study's prefix when none is typed."""
    with app.app_context():
        make_study()
    sign_in_researcher(app, auth)
    enrol(client)
    response = client.post("/research/participants/new", data={"study_code": "", "moderator_id": 0})
    assert b"Invite link for T-0002" in response.data
    with app.app_context():
        assert list(db.session.scalars(select(Participant.study_code)
                                       .order_by(Participant.id))) == ["T-0001", "T-0002"]


def test_enrolment_takes_a_given_code_site_and_moderator(app, client, auth):
    """It stores a typed code (in capitals), the site and the chosen moderator."""
    with app.app_context():
        make_study()
        moderator_id = make_staff(Role.PEER_MODERATOR, "peer@example.org", name="Kit").id
    sign_in_researcher(app, auth)
    form = client.get("/research/participants/new")
    assert b"Kit (Peer moderator)" in form.data
    enrol(client, study_code="north-042", site="North clinic", moderator_id=moderator_id)
    with app.app_context():
        person = db.session.scalar(select(Participant))
        assert (person.study_code, person.site, person.moderator_id, person.status) == (
            "NORTH-042", "North clinic", moderator_id, "invited")
        assert person.user.password_hash is None


def test_duplicate_code_is_refused_and_typed_values_kept(app, client, auth):
    """It refuses a code already in use, keeps what the researcher typed, and saves nothing."""
    with app.app_context():
        make_participant(code="T-0001")
        moderator_id = make_staff(Role.PEER_MODERATOR, "peer@example.org", name="Kit").id
        entries_before = db.session.scalar(select(func.count(AuditEntry.id)))
    sign_in_researcher(app, auth)
    response = client.post("/research/participants/new", data={
        "study_code": "t-0001", "site": "North clinic", "moderator_id": moderator_id})
    assert response.status_code == 200
    assert b"Study code T-0001 is already in use." in response.data
    values = form_values(response.data)
    assert (values["study_code"], values["site"], values["moderator_id"]) == (
        "t-0001", "North clinic", str(moderator_id))
    with app.app_context():
        assert db.session.scalar(select(func.count(Participant.id))) == 1
        assert db.session.scalar(select(func.count(Invite.id))) == 0
        enrolled = db.session.scalar(select(func.count(AuditEntry.id))
                                     .where(AuditEntry.action == "participant.enrolled"))
        assert enrolled == 0
        # only the researcher's own sign-in was audited
        assert db.session.scalar(select(func.count(AuditEntry.id))) == entries_before + 1


def test_malformed_code_is_refused(app, client, auth):
    """It refuses codes with spaces or symbols."""
    with app.app_context():
        make_study()
    sign_in_researcher(app, auth)
    response = client.post("/research/participants/new",
                           data={"study_code": "T 0001!", "moderator_id": 0})
    assert b"Use 3 to 40 letters, digits, dashes or underscores." in response.data
    with app.app_context():
        assert db.session.scalar(select(func.count(Participant.id))) == 0


def test_only_researchers_and_admins_enrol(app, client, auth):
    """It refuses the enrolment page to a moderator."""
    with app.app_context():
        make_study()
        make_staff(Role.PEER_MODERATOR, "peer@example.org")
    auth.login("peer@example.org")
    assert client.get("/research/participants/new").status_code == 403
    assert client.post("/research/participants/new", data={"moderator_id": 0}).status_code == 403


# --- invite links ----------------------------------------------------------------

def test_invite_link_is_shown_once_and_works(app, client, auth):
    """It shows the link only on the enrolment result, stores only its hash, and the link
    lets the participant set up their account exactly once."""
    with app.app_context():
        make_study()
        consent_id = make_consent().id
    sign_in_researcher(app, auth)
    link = enrol(client, study_code="T-0007")
    token = link.rsplit("/", 1)[1]
    pid = participant_id(app, "T-0007")
    record = client.get(f"/research/participants/{pid}")
    assert token.encode() not in record.data
    assert [row[2] for row in table_rows(record.data)] == ["open"]
    with app.app_context():
        invite = db.session.scalar(select(Invite))
        assert invite.token_hash == hashlib.sha256(token.encode()).hexdigest()
    auth.logout()

    page = client.get(path_of(link))
    assert page.status_code == 200
    assert b"Create my account" in page.data
    response = accept(client, link, consent_id)
    assert response.status_code == 302
    assert re.search(rb"<h1>(Hello|Good \w+), Paper Boat</h1>",
                     client.get("/", follow_redirects=True).data)
    auth.logout()

    again = client.get(path_of(link))
    assert again.status_code == 404
    assert b"already been used" in again.data
    with app.app_context():
        assert db.session.get(Participant, pid).status == "consented"


def test_new_invite_link_revokes_the_old_one(app, client, auth):
    """It cancels the earlier link when the researcher makes a new one."""
    with app.app_context():
        make_study()
        make_consent()
    sign_in_researcher(app, auth)
    old = enrol(client, study_code="T-0007")
    pid = participant_id(app, "T-0007")
    response = client.post(f"/research/participants/{pid}/invite")
    assert response.status_code == 200
    assert b"Invite link for T-0007" in response.data
    new = invite_link(response.data)
    assert new != old
    states = sorted(row[2] for row in table_rows(client.get(f"/research/participants/{pid}").data))
    assert states == ["open", "revoked"]
    auth.logout()

    refused = client.get(path_of(old))
    assert refused.status_code == 404
    assert b"expired" in refused.data
    assert client.get(path_of(new)).status_code == 200


def test_no_new_invite_once_the_account_is_set_up(app, client, auth):
    """It refuses a new link for a participant who already has an account."""
    with app.app_context():
        pid = make_participant(code="T-0001").id
    sign_in_researcher(app, auth)
    response = client.post(f"/research/participants/{pid}/invite", follow_redirects=True)
    assert b"already set up their account" in response.data
    with app.app_context():
        assert db.session.scalar(select(func.count(Invite.id))) == 0


# --- dashboard and list ------------------------------------------------------------

def flow(page: bytes) -> dict[str, list[str]]:
    """The participant-flow table: status -> [unallocated, arm 1, arm 2]."""
    return {row[0]: row[1:] for row in table_rows(page)}


def test_dashboard_counts_change_after_enrolment_and_randomisation(app, client, auth):
    """It counts participants by status and by arm, and follows changes."""
    with app.app_context():
        make_study()
    sign_in_researcher(app, auth)
    empty = client.get("/research/")
    assert b"<strong>0</strong> <span>enrolled</span>" in empty.data
    assert flow(empty.data)["invited"] == ["0", "0", "0"]

    enrol(client)
    enrol(client)
    enrol(client)
    after = client.get("/research/")
    assert b"<strong>3</strong> <span>enrolled</span>" in after.data
    assert b"<strong>3</strong> <span>invited</span>" in after.data
    assert flow(after.data)["invited"] == ["3", "0", "0"]

    with app.app_context():
        study = db.session.scalar(select(Study))
        guided, selfguided = study.arms
        people = db.session.scalars(select(Participant).order_by(Participant.id)).all()
        people[0].arm_id, people[0].status = guided.id, "randomised"
        people[1].arm_id, people[1].status = selfguided.id, "active"
        db.session.commit()
    later = client.get("/research/")
    table = flow(later.data)
    assert table["invited"] == ["1", "0", "0"]
    assert table["randomised"] == ["0", "1", "0"]
    assert table["active"] == ["0", "0", "1"]
    assert b"<strong>3</strong> <span>enrolled</span>" in later.data
    assert b"<strong>1</strong> <span>randomised</span>" in later.data


def test_participants_list_filters_by_status(app, client, auth):
    """It lists every participant, or only those with the chosen status."""
    with app.app_context():
        study = make_study()
        make_participant(study, "T-0001")
        make_participant(study, "T-0002", name=None)
        make_participant(study, "T-0003", name=None)
    sign_in_researcher(app, auth)

    def codes(query: str = "") -> list[str]:
        response = client.get(f"/research/participants{query}")
        assert response.status_code == 200
        return [row[0] for row in table_rows(response.data)]

    assert codes() == ["T-0001", "T-0002", "T-0003"]
    assert codes("?status=invited") == ["T-0002", "T-0003"]
    assert codes("?status=consented") == ["T-0001"]
    assert codes("?status=nonsense") == ["T-0001", "T-0002", "T-0003"]
    assert codes("?status=withdrawn") == ["No participants with this status yet."]
