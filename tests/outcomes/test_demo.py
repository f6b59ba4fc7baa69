"""``flask demo``: the seeded demo study and its logins."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant, User
from core.roles import STAFF, Role
from outcomes.demo import DEMO_PARTICIPANT, DEMO_PASSWORD
from outcomes.demo import STAFF as DEMO_STAFF
from outcomes.models import Study
from tests.pages import table_rows

#: every tenth demo participant has not accepted the invite yet (DEMO-0010, -0020, -0030)
NOT_SET_UP = 3


def counts() -> dict[str, int]:
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Study, User, Participant, ActivityEvent, AuditEntry)}


@pytest.fixture
def seeded(app, runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "Demo study seeded with 30 participants." in result.output
    return app


def test_seed_runs_once(seeded, runner):
    """It seeds on the first run and, on the second, says so and changes nothing."""
    with seeded.app_context():
        before = counts()
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0
    assert "A study already exists; the demo was not seeded again." in result.output
    with seeded.app_context():
        assert counts() == before


def test_seed_creates_staff_of_every_role_and_30_active_participants(seeded):
    """It makes one account per staff role at least, 30 participants, and their activity."""
    with seeded.app_context():
        staff_roles = set(db.session.scalars(select(User.role)
                                             .where(User.role != Role.PARTICIPANT)))
        assert staff_roles == set(STAFF)
        assert db.session.scalar(select(func.count(User.id)).where(
            User.role != Role.PARTICIPANT)) == len(DEMO_STAFF)
        people = db.session.scalars(select(Participant)).all()
        assert len(people) == 30
        statuses = [p.status for p in people]
        assert statuses.count("active") == 30 - NOT_SET_UP
        assert statuses.count("invited") == NOT_SET_UP
        with_events = db.session.scalars(select(ActivityEvent.participant_id).distinct()).all()
        assert len(with_events) == 30 - NOT_SET_UP
        logins = db.session.scalar(select(func.count(ActivityEvent.id))
                                   .where(ActivityEvent.kind == "login"))
        assert logins > 30 - NOT_SET_UP


def test_seeded_audit_chain_verifies(seeded, runner):
    """It writes a consistent audit chain while seeding."""
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "Audit chain intact" in result.output
    with seeded.app_context():
        assert db.session.scalar(select(func.count(AuditEntry.id))) > 30


def greeting(page: bytes) -> str | None:
    """Who the page's heading greets ("Hello, X" or "Good morning, X")."""
    found = re.search(rb"<h1>(?:Hello|Good \w+), ([^<]+)</h1>", page)
    return found.group(1).decode() if found else None


def home_after_login(auth, identifier: str):
    response = auth.login(identifier, DEMO_PASSWORD, follow=True)
    assert response.status_code == 200
    return response


def test_demo_participant_signs_in_and_is_greeted(seeded, client, auth):
    """It lets the demo participant sign in with the demo password and see their home."""
    page = home_after_login(auth, DEMO_PARTICIPANT[0])
    assert greeting(page.data) == DEMO_PARTICIPANT[1]


def test_demo_peer_moderator_sees_their_caseload(seeded, client, auth):
    """It shows the peer moderator the participants of their caseload."""
    page = home_after_login(auth, "peer@demo.kinship.test")
    assert b"Your caseload" in page.data
    rows = table_rows(page.data)
    with seeded.app_context():
        peer_id = db.session.scalar(select(User.id).where(User.email == "peer@demo.kinship.test"))
        expected = set(db.session.scalars(select(Participant.study_code).where(
            Participant.moderator_id == peer_id, Participant.status != "invited")))
    # the first cell is the display name, then the study code
    assert len(rows) == len(expected) == 15
    assert {row[0].rsplit(" ", 1)[-1] for row in rows} == expected
    assert f"{DEMO_PARTICIPANT[1]} {DEMO_PARTICIPANT[0]}" in {row[0] for row in rows}


def test_demo_clinician_sees_their_caseload(seeded, client, auth):
    """It takes the clinician through two-step sign-in to their caseload."""
    page = home_after_login(auth, "clinician@demo.kinship.test")
    assert b"Your caseload" in page.data
    assert len(table_rows(page.data)) == 30 // 2 - NOT_SET_UP


def test_demo_researcher_sees_the_flow_numbers(seeded, client, auth):
    """It shows the researcher the study with 30 enrolled, split by status and arm."""
    page = home_after_login(auth, "researcher@demo.kinship.test")
    assert b"Kinship feasibility study (demo)" in page.data
    assert b"<strong>30</strong> <span>enrolled</span>" in page.data
    assert b"<strong>27</strong> <span>active</span>" in page.data
    flow = {row[0]: row[1:] for row in table_rows(page.data)}
    assert flow["invited"] == ["3", "0", "0"]
    assert flow["active"] == ["0", "15", "12"]


def test_demo_admin_sees_the_users(seeded, client, auth):
    """It shows the admin the user list with every demo staff account."""
    page = home_after_login(auth, "admin@demo.kinship.test")
    assert b"<h1>Users</h1>" in page.data
    listed = {row[0] for row in table_rows(page.data)}
    assert {email for email, _, _ in DEMO_STAFF} <= listed


def test_demo_logins_lists_every_account(runner):
    """It prints every staff e-mail, the participant's code and the shared password."""
    result = runner.invoke(args=["demo", "logins"])
    assert result.exit_code == 0
    for email, _, _ in DEMO_STAFF:
        assert email in result.output
    assert DEMO_PARTICIPANT[0] in result.output
    assert DEMO_PASSWORD in result.output
