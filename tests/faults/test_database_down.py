"""The database goes away and comes back. Meanwhile every page answers 503 with the
friendly page (the crisis resources in full, no stack trace, no address); afterwards the
same visitor carries on, still signed in. A request cut off half-way through a multi-row
service (enrolment: user, participant, audit entry, invite) leaves nothing behind.

PostgreSQL goes away through a TCP forwarder the test cuts (open connections dropped, new
ones refused); SQLite through a database file that cannot be opened (a folder in its
place; the tests run as root, so permissions would not stop it)."""

from __future__ import annotations

from sqlalchemy import event, func, select

from core.audit import AuditEntry
from core.extensions import db
from core.models import Invite, Participant, User
from core.roles import Role
from tests.conftest import AuthActions
from tests.factories import make_participant, make_staff, make_study
from tests.faults.conftest import interrupt_after

DOWN_TITLE = "Kinship is taking a short break"


def assert_friendly_503(response) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert DOWN_TITLE in body
    assert "Samaritans" in body and 'href="tel:116123"' in body, "crisis numbers on the page"
    for leak in ("Traceback", "OperationalError", "psycopg", "sqlite3", "127.0.0.1",
                 "outage.sqlite3", "SELECT"):
        assert leak not in body, leak
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Content-Security-Policy"]


def test_pages_answer_503_while_the_database_is_away_and_recover(outage):
    """It answers 503 with the crisis resources on every page (the crisis page too, which
    cannot load the signed-in visitor meanwhile) and carries on afterwards."""
    with outage.app.app_context():
        make_participant(make_study(), code="T-0001")
    client = outage.app.test_client()
    AuthActions(client, outage.app).login("T-0001")
    assert client.get("/account").status_code == 200

    outage.cut()
    try:
        for path in ("/account", "/", "/help", "/notifications"):
            assert_friendly_503(client.get(path))
        anonymous = outage.app.test_client()
        assert_friendly_503(anonymous.post("/login", data={"identifier": "T-0001",
                                                            "password": "anything"}))
    finally:
        outage.restore()

    assert client.get("/account").status_code == 200, "the outage signed the visitor out"
    assert client.get("/help").status_code == 200


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_an_enrolment_cut_off_half_way_leaves_nothing_behind(outage):
    """The user and participant rows were written when the database went away: the
    visitor gets the 503 page and, once it is back, no row of that enrolment exists."""
    with outage.app.app_context():
        make_study()
        make_staff(Role.RESEARCHER)
    client = outage.app.test_client()
    AuthActions(client, outage.app).login("researcher@example.org")
    with outage.app.app_context():
        before = {model: count(model) for model in (User, Participant, Invite, AuditEntry)}
        engine = db.engine
    hook = interrupt_after(outage, "participant")
    event.listen(engine, "after_cursor_execute", hook)
    try:
        response = client.post("/research/participants/new",
                               data={"study_code": "T-0042", "site": "", "moderator_id": 0})
    finally:
        event.remove(engine, "after_cursor_execute", hook)
        if outage.postgres:
            outage.restore()
    assert_friendly_503(response)
    with outage.app.app_context():
        after = {model: count(model) for model in (User, Participant, Invite, AuditEntry)}
        assert db.session.scalar(select(Participant).where(
            Participant.study_code == "T-0042")) is None
    assert after == before
    # and the same enrolment goes through once the database is back
    response = client.post("/research/participants/new",
                           data={"study_code": "T-0042", "site": "", "moderator_id": 0})
    assert response.status_code == 200 and b"Invite link for T-0042" in response.data
