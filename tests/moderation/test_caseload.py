"""The moderator caseload: whose participants, traffic-light bands, filters, query count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.events import record_event
from core.extensions import db
from core.models import User
from core.roles import Role
from moderation import services
from moderation.services import activity_band, caseload
from outcomes.models import Study
from tests.factories import make_participant, make_staff, make_study
from tests.moderation.caseload_pages import caseload_rows
from tests.sql_count import counting

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
#: display name -> days since last activity (None: never active)
PEOPLE = {"Day One": 1, "Day Three": 3, "Day Ten": 10, "Day Forty": 40, "Never Seen": None}


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_time(NOW)
    yield
    clock.set_time(None)


def seed_caseloads(app) -> dict[str, int]:
    """Peer ``peer@`` holds PEOPLE; clinician ``clinician@`` holds one more; one person has
    no moderator and one is only invited. Returns the staff ids."""
    with app.app_context():
        study = make_study()
        peer = make_staff(Role.PEER_MODERATOR, "peer@example.org", name="Kit")
        other_peer = make_staff(Role.PEER_MODERATOR, "other@example.org", name="Lee")
        clinician = make_staff(Role.CLINICIAN, "clinician@example.org", name="Dr Patel")
        for number, (name, days) in enumerate(PEOPLE.items(), start=1):
            person = make_participant(study, f"P-{number:04d}", name=name, moderator=peer)
            if days is not None:
                record_event(person, "login", at=NOW - timedelta(days=days, hours=2))
                record_event(person, "login", at=NOW - timedelta(days=days))
        make_participant(study, "C-0001", name="Clinic Case", moderator=clinician)
        make_participant(study, "O-0001", name="Other Case", moderator=other_peer)
        make_participant(study, "N-0001", name="Nobody's Case")
        make_participant(study, "I-0001", name=None, moderator=peer)  # invited only
        db.session.commit()
        return {"peer": peer.id, "clinician": clinician.id}


def rows_of(client, query: str = "") -> list[tuple[str, str, str]]:
    """(display name, study code, band) of each row of the main caseload table, in order."""
    response = client.get(f"/moderation/{query}")
    assert response.status_code == 200
    return [(row.name, row.code, row.band) for row in caseload_rows(response.data)]


# --- bands -----------------------------------------------------------------------------

@pytest.mark.parametrize(("since", "band"), [
    (timedelta(days=1), "green"),
    (timedelta(days=2) - timedelta(seconds=1), "green"),
    (timedelta(days=2), "amber"),
    (timedelta(days=3), "amber"),
    (timedelta(days=7) - timedelta(seconds=1), "amber"),
    (timedelta(days=7), "red"),
    (timedelta(days=10), "red"),
    (timedelta(days=30) - timedelta(seconds=1), "red"),
    (timedelta(days=30), "grey"),
    (timedelta(days=40), "grey"),
])
def test_activity_band_at_day_boundaries(since, band):
    """It turns days since the last activity into green (<2), amber (<7), red (<30), grey."""
    assert activity_band(NOW - since, NOW)[0] == band


def test_no_activity_is_grey():
    """It shows people who never did anything as grey."""
    assert activity_band(None, NOW) == ("grey", "No activity yet")


def test_caseload_bands_follow_the_clock(app):
    """It bands each participant by their newest event, as of the platform clock."""
    ids = seed_caseloads(app)
    with app.app_context():
        peer = db.session.get(User, ids["peer"])
        bands = {row.name: row.band for row in caseload(peer).rows}
        assert bands == {"Day One": "green", "Day Three": "amber", "Day Ten": "red",
                         "Day Forty": "grey", "Never Seen": "grey"}
        clock.set_time(NOW + timedelta(days=1, seconds=1))  # a day later everyone moved on
        bands = {row.name: row.band for row in caseload(peer).rows}
        assert bands["Day One"] == "amber"
        assert bands["Day Three"] == "amber"


def test_only_moderators_hold_caseloads(app):
    """It refuses a caseload to a researcher."""
    with app.app_context():
        researcher = make_staff(Role.RESEARCHER)
        with pytest.raises(services.PermissionDenied):
            caseload(researcher)


# --- the page ------------------------------------------------------------------------

def test_peer_moderator_sees_only_own_participants_quietest_first(app, client, auth):
    """It lists the moderator's own participants who have set up their account, the quietest
    (and the never active) first."""
    seed_caseloads(app)
    auth.login("peer@example.org")
    assert rows_of(client) == [
        ("Never Seen", "P-0005", "grey"),
        ("Day Forty", "P-0004", "grey"),
        ("Day Ten", "P-0003", "red"),
        ("Day Three", "P-0002", "amber"),
        ("Day One", "P-0001", "green"),
    ]


def test_peer_moderator_cannot_ask_for_everyone(app, client, auth):
    """It ignores ``all=1`` from a peer moderator and does not call their list 'All'."""
    seed_caseloads(app)
    auth.login("peer@example.org")
    response = client.get("/moderation/?all=1")
    assert b"Your caseload" in response.data
    assert b"All participants" not in response.data
    assert {code for _, code, _ in rows_of(client, "?all=1")} == {
        "P-0001", "P-0002", "P-0003", "P-0004", "P-0005"}


def test_clinician_sees_own_caseload_or_everyone(app, client, auth):
    """It shows a clinician their own caseload, and everyone set up with ``all=1``."""
    seed_caseloads(app)
    auth.login("clinician@example.org")
    assert rows_of(client) == [("Clinic Case", "C-0001", "grey")]
    everyone = client.get("/moderation/?all=1")
    assert b"All participants" in everyone.data
    assert {code for _, code, _ in rows_of(client, "?all=1")} == {
        "P-0001", "P-0002", "P-0003", "P-0004", "P-0005", "C-0001", "O-0001", "N-0001"}


def test_caseload_filters_by_band(app, client, auth):
    """It shows only the rows of the chosen band, and ignores an unknown band."""
    seed_caseloads(app)
    auth.login("peer@example.org")
    assert [code for _, code, _ in rows_of(client, "?band=green")] == ["P-0001"]
    assert [code for _, code, _ in rows_of(client, "?band=amber")] == ["P-0002"]
    assert [code for _, code, _ in rows_of(client, "?band=red")] == ["P-0003"]
    assert [code for _, code, _ in rows_of(client, "?band=grey")] == ["P-0005", "P-0004"]
    assert len(rows_of(client, "?band=purple")) == 5


def test_clinician_band_filter_keeps_everyone(app, client, auth):
    """It combines ``all=1`` with a band, and the filter form keeps ``all``."""
    seed_caseloads(app)
    auth.login("clinician@example.org")
    response = client.get("/moderation/?all=1&band=grey")
    assert b'<input type="hidden" name="all" value="1">' in response.data
    assert {code for _, code, _ in rows_of(client, "?all=1&band=grey")} == {
        "P-0004", "P-0005", "C-0001", "O-0001", "N-0001"}


def test_empty_caseload_says_so(app, client, auth):
    """It tells a moderator with nobody assigned that the list is empty."""
    with app.app_context():
        make_staff(Role.PEER_MODERATOR, "peer@example.org")
    auth.login("peer@example.org")
    response = client.get("/moderation/")
    assert b"No participants here yet." in response.data



def add_caseload(app, moderator_id: int, first: int, count: int) -> None:
    """``count`` more participants with some activity on one moderator's caseload."""
    with app.app_context():
        study = db.session.scalar(select(Study)) or make_study()
        moderator = db.session.get(User, moderator_id)
        for number in range(first, first + count):
            person = make_participant(study, f"Q-{number:04d}", name=f"Quiet Person {number}",
                                      moderator=moderator)
            record_event(person, "login", at=NOW - timedelta(days=number % 40))
        db.session.commit()


@pytest.mark.usefixtures("uncached")
def test_caseload_page_runs_the_same_queries_for_5_and_50_participants(app, client, auth):
    """It loads a caseload with a fixed number of queries, however long it is."""
    with app.app_context():
        peer_id = make_staff(Role.PEER_MODERATOR, "peer@example.org").id
    add_caseload(app, peer_id, 1, 5)
    auth.login("peer@example.org")
    client.get("/moderation/")  # warm up: first-request work is not the caseload's

    with counting(app) as five:
        assert len(rows_of(client)) == 5
    add_caseload(app, peer_id, 6, 45)
    with counting(app) as fifty:
        assert len(rows_of(client)) == 50

    assert len(fifty) == len(five), "\n".join(fifty)
