"""Researcher pages of the trial: opening enrolment, randomising, status steps and
withdrawals on the participant page, the dashboard's computed numbers, and concealment
(no page reads or shows the allocation sequence)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import url_for
from sqlalchemy import event, func, select
from werkzeug.routing import IntegerConverter

from core import clock
from core.access import PUBLIC, roles_of
from core.audit import AuditEntry
from core.events import record_event
from core.extensions import db
from core.models import Participant
from core.roles import Role
from outcomes.models import AllocationSeed, AllocationSlot, Study, Withdrawal
from outcomes.randomisation import open_enrolment
from tests.factories import make_staff
from tests.outcomes.trial import at_baseline, make_trial, researcher
from tests.pages import table_rows

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
#: arm names that occur nowhere else on a page, so their absence means something
ARM_NAMES = {"guided": "Zebra arm", "self": "Quokka arm"}
TOKEN = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
REASON = "Finds the evening reminders upsetting; prefers to stop."


@pytest.fixture
def trial(app) -> dict[str, int]:
    """A stratified study with distinctively named arms, and a signed-in researcher's
    participants: T-0001 (baseline done, North) and T-0002 (consented, South)."""
    clock.set_time(NOW)
    with app.app_context():
        study = make_trial()
        for arm in study.arms:
            arm.name = ARM_NAMES[arm.code]
        researcher()
        first = at_baseline(study, "T-0001", site="North", account=True)
        second = at_baseline(study, "T-0002", site="South", account=True)
        second.status = "consented"
        for person in (first, second):
            person.enrolled_at = NOW - timedelta(days=20)
        db.session.commit()
        return {"study": study.id, "first": first.id, "second": second.id}


@pytest.fixture
def signed_in(trial, auth) -> dict[str, int]:
    auth.login("researcher@example.org")
    return trial


def open_it(app) -> None:
    with app.app_context():
        open_enrolment(db.session.scalar(select(Study)), actor=researcher(), seed="pages")
        db.session.commit()


def page_of(client, participant_id: int) -> str:
    response = client.get(f"/research/participants/{participant_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def status_of(app, participant_id: int) -> str:
    with app.app_context():
        return db.session.get(Participant, participant_id).status


def flow(page: bytes) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in table_rows(page)}


# --- opening enrolment --------------------------------------------------------------------

def test_the_dashboard_opens_enrolment_once(app, client, signed_in):
    """It shows an "Open enrolment" button while the study is closed; pressing it stores
    a seed and the sequence, and the button goes away."""
    closed = client.get("/research/").get_data(as_text=True)
    assert "Open enrolment" in closed and "Enrolment is not open" in closed
    response = client.post("/research/open", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Enrolment is open. The allocation sequence is made and kept hidden." in page
    assert 'action="/research/open"' not in page
    assert "Enrolment opened 04 Mar 2026" in page
    with app.app_context():
        assert db.session.scalar(select(func.count(AllocationSeed.id))) == 1
        assert db.session.scalar(select(func.count(AllocationSlot.id))) > 0
        seed = db.session.scalar(select(AllocationSeed.seed))
    assert seed not in page
    again = client.post("/research/open", follow_redirects=True)
    assert "Enrolment is already open." in again.get_data(as_text=True)


def test_an_incomplete_design_is_not_opened(app, client, signed_in):
    with app.app_context():
        db.session.get(Study, signed_in["study"]).sites = []
        db.session.commit()
    page = client.post("/research/open", follow_redirects=True).get_data(as_text=True)
    assert "List the study&#39;s sites before enrolment opens" in page
    with app.app_context():
        assert db.session.scalar(select(func.count(AllocationSeed.id))) == 0


def test_opening_needs_the_csrf_token_from_the_page(app, client, signed_in):
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/research/open").status_code == 400
    token = TOKEN.search(client.get("/research/").data).group(1).decode()
    assert client.post("/research/open", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count(AllocationSeed.id))) == 1


# --- randomising --------------------------------------------------------------------------

def test_randomising_from_the_participant_page(app, client, signed_in):
    """It offers the stratum choices (the site is the participant's), allocates, and
    shows the participant's own arm."""
    open_it(app)
    page = page_of(client, signed_in["first"])
    assert "Site: <strong>North</strong>" in page
    assert 'name="stratum_baseline_loneliness"' in page and "stratum_site" not in page
    response = client.post(f"/research/participants/{signed_in['first']}/randomise",
                           data={"stratum_baseline_loneliness": "high"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        person = db.session.get(Participant, signed_in["first"])
        arm_name = ARM_NAMES[next(a.code for a in db.session.get(Study, person.study_id).arms
                                  if a.id == person.arm_id)]
        assert person.status == "randomised"
    assert f"T-0001 is randomised to {arm_name}." in page
    assert "Not randomised" not in page and 'name="stratum_baseline_loneliness"' not in page


def test_a_site_that_is_not_a_study_site_is_chosen_on_the_form(app, client, signed_in):
    """It asks for the site when the one typed at enrolment is not one of the study's."""
    open_it(app)
    with app.app_context():
        db.session.get(Participant, signed_in["first"]).site = "north clinic"
        db.session.commit()
    page = page_of(client, signed_in["first"])
    assert "is not one of the study's sites" in page and 'name="stratum_site"' in page
    response = client.post(f"/research/participants/{signed_in['first']}/randomise",
                           data={"stratum_site": "North", "stratum_baseline_loneliness": "low"})
    assert response.status_code == 302
    with app.app_context():
        person = db.session.get(Participant, signed_in["first"])
        assert (person.site, person.status) == ("North", "randomised")


def test_a_missing_stratum_choice_is_asked_for_and_nothing_allocated(app, client, signed_in):
    open_it(app)
    response = client.post(f"/research/participants/{signed_in['first']}/randomise",
                           data={"stratum_baseline_loneliness": ""})
    assert response.status_code == 200
    assert "Choose the participant&#39;s baseline loneliness." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(AllocationSlot.participant_id))) == 0
    assert status_of(app, signed_in["first"]) == "baseline_done"


def test_randomising_before_the_baseline_is_refused_on_the_page(app, client, signed_in):
    """It shows no randomisation form to a consented participant and refuses a forced POST."""
    open_it(app)
    page = page_of(client, signed_in["second"])
    assert "stratum_baseline_loneliness" not in page
    response = client.post(f"/research/participants/{signed_in['second']}/randomise",
                           data={"stratum_baseline_loneliness": "low"})
    assert "Baseline questionnaires must be complete before randomisation." in (
        response.get_data(as_text=True))
    assert status_of(app, signed_in["second"]) == "consented"


def test_before_enrolment_opens_the_page_points_to_the_dashboard(client, signed_in):
    page = page_of(client, signed_in["first"])
    assert "Enrolment is not open yet" in page and "stratum_baseline_loneliness" not in page


# --- status steps ---------------------------------------------------------------------------

def test_marking_baseline_done_then_randomising(app, client, signed_in):
    """It offers the allowed next step as a button and refuses moves the table forbids."""
    page = page_of(client, signed_in["second"])
    assert "Mark baseline done" in page and "Mark completed" not in page
    url = f"/research/participants/{signed_in['second']}/status"
    refused = client.post(url, data={"to": "completed"}, follow_redirects=True)
    assert ("A participant who has consented cannot be marked as completed: their baseline "
            "questionnaires are not complete yet.") in refused.get_data(as_text=True)
    assert client.post(url, data={"to": "randomised"}).status_code == 400
    assert client.post(url, data={"to": "baseline_done"}).status_code == 302
    assert status_of(app, signed_in["second"]) == "baseline_done"


def test_marking_active_and_completed(app, client, signed_in):
    open_it(app)
    client.post(f"/research/participants/{signed_in['first']}/randomise",
                data={"stratum_baseline_loneliness": "low"})
    page = page_of(client, signed_in["first"])
    assert "Mark active" in page and "Mark completed" in page
    url = f"/research/participants/{signed_in['first']}/status"
    client.post(url, data={"to": "active"})
    client.post(url, data={"to": "completed"})
    assert status_of(app, signed_in["first"]) == "completed"
    assert "Mark " not in page_of(client, signed_in["first"])


# --- withdrawals ---------------------------------------------------------------------------

def test_a_withdrawal_without_reason_keeps_what_was_chosen(app, client, signed_in):
    response = client.post(f"/research/participants/{signed_in['first']}/withdraw",
                           data={"kind": "study", "reason": "  "})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Give the reason for the withdrawal." in page
    assert re.search(r'<input checked[^>]*value="study"|value="study"[^>]*checked', page)
    with app.app_context():
        assert db.session.scalar(select(func.count(Withdrawal.id))) == 0


def test_a_refused_withdrawal_keeps_the_typed_reason(app, client, signed_in):
    """It explains why (no intervention before randomisation), next to the choice, and
    keeps the reason typed so it need not be written again."""
    response = client.post(f"/research/participants/{signed_in['first']}/withdraw",
                           data={"kind": "intervention", "reason": REASON})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "so there is no intervention to stop" in page
    assert "Finds the evening reminders upsetting; prefers to stop.</textarea>" in page
    assert status_of(app, signed_in["first"]) == "baseline_done"
    with app.app_context():
        assert db.session.scalar(select(func.count(Withdrawal.id))) == 0


def test_a_future_date_is_refused_on_the_page(client, signed_in):
    response = client.post(f"/research/participants/{signed_in['first']}/withdraw",
                           data={"kind": "study", "reason": REASON, "day": "2026-03-09"})
    page = response.get_data(as_text=True)
    assert "The date of withdrawal cannot be in the future." in page
    assert 'value="2026-03-09"' in page and REASON + "</textarea>" in page


def test_recording_a_withdrawal_from_the_study(app, client, signed_in):
    """It records the kind, day and reason, shows them to the study team, and counts the
    withdrawal on the dashboard."""
    response = client.post(f"/research/participants/{signed_in['second']}/withdraw",
                           data={"kind": "study", "reason": REASON, "day": "2026-03-02"})
    assert response.status_code == 302
    page = page_of(client, signed_in["second"])
    assert "The withdrawal of T-0002 is recorded." in page
    rows = table_rows(page)
    assert rows[0][:3] == ["From the study (no further contact)", "02 Mar 2026", REASON]
    assert "Record a withdrawal" not in page and "Mark baseline done" not in page
    assert status_of(app, signed_in["second"]) == "withdrawn"
    with app.app_context():
        row = db.session.scalar(select(Withdrawal))
        assert row.at == datetime(2026, 3, 2, tzinfo=UTC)
    table = flow(client.get("/research/").data)
    assert table["From the study (no further contact)"] == ["1", "0", "0"]
    assert table["withdrawn"] == ["1", "0", "0"]


def test_withdrawals_are_counted_by_arm(app, client, signed_in):
    open_it(app)
    client.post(f"/research/participants/{signed_in['first']}/randomise",
                data={"stratum_baseline_loneliness": "high"})
    client.post(f"/research/participants/{signed_in['first']}/withdraw",
                data={"kind": "intervention", "reason": REASON})
    with app.app_context():
        person = db.session.get(Participant, signed_in["first"])
        arms = [a.id for a in db.session.get(Study, person.study_id).arms]
        expected = ["0"] + ["1" if arm == person.arm_id else "0" for arm in arms]
    table = flow(client.get("/research/").data)
    assert table["From the intervention only (stays in follow-up)"] == expected
    assert table["From text messages only"] == ["0", "0", "0"]


def test_a_withdrawn_participant_gets_no_new_invite(app, client, signed_in):
    with app.app_context():
        person = at_baseline(db.session.get(Study, signed_in["study"]), "T-0003")
        person.status, person_id = "withdrawn", person.id
        db.session.commit()
    response = client.post(f"/research/participants/{person_id}/invite", follow_redirects=True)
    assert "has withdrawn from the study: no new invite is made" in response.get_data(
        as_text=True)


def test_a_participant_withdrawn_from_the_study_can_sign_in_but_not_use_the_intervention(
        app, client, signed_in, auth):
    """It keeps their sign-in (their settings, the study contact, crisis resources) and
    refuses the module pages."""
    client.post(f"/research/participants/{signed_in['second']}/withdraw",
                data={"kind": "study", "reason": REASON})
    auth.logout()
    assert auth.login("T-0002").status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/account").status_code == 200
    if "modules.today" in app.view_functions:
        assert client.get("/modules/today").status_code == 403


# --- lost to follow-up ------------------------------------------------------------------------

def test_lost_to_follow_up_is_computed_for_the_dashboard_and_list(app, client, auth,
                                                                  signed_in):
    open_it(app)
    client.post(f"/research/participants/{signed_in['first']}/randomise",
                data={"stratum_baseline_loneliness": "high"})
    assert flow(client.get("/research/").data)[
        "lost to follow up (no activity for 28 days; also counted above)"][0] == "0"
    clock.set_time(NOW + timedelta(days=28))
    auth.login("researcher@example.org")  # the earlier session has long timed out
    page = client.get("/research/")
    row = flow(page.data)["lost to follow up (no activity for 28 days; also counted above)"]
    assert sorted(row) == ["0", "0", "1"]
    assert b"<strong>1</strong> <span>lost to follow up</span>" in page.data
    assert b"<strong>2</strong> <span>enrolled</span>" in page.data
    listed = [r[0] for r in table_rows(client.get(
        "/research/participants?status=lost_to_follow_up").data)]
    assert listed == ["T-0001"]
    assert "lost to follow-up" in page_of(client, signed_in["first"])
    with app.app_context():
        record_event(db.session.get(Participant, signed_in["first"]), "login")
        db.session.commit()
    assert "lost to follow-up" not in page_of(client, signed_in["first"])


# --- concealment ------------------------------------------------------------------------------

def test_no_page_shows_an_arm_before_allocation(app, client, signed_in):
    """After several allocations in every stratum, the page of a participant still waiting
    names no arm at all, so it cannot hint at their stratum's next allocation."""
    open_it(app)
    with app.app_context():
        study = db.session.get(Study, signed_in["study"])
        waiting = [at_baseline(study, f"T-01{n:02d}", site=site).id
                   for n, site in enumerate(["North", "South"] * 4)]
    for n, participant_id in enumerate(waiting[:6]):
        client.post(f"/research/participants/{participant_id}/randomise",
                    data={"stratum_baseline_loneliness": ["high", "low"][n % 2]},
                    follow_redirects=True)
    for participant_id in [signed_in["first"], *waiting[6:]]:
        page = page_of(client, participant_id)
        for code, name in ARM_NAMES.items():
            assert name not in page and f'"{code}"' not in page


def statements_of_get_routes(app, client, participant_id: int) -> tuple[list[str], list[str]]:
    """The SQL of every GET route a researcher can reach (ids filled with a real
    participant's), and the paths requested."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    paths = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            policy = roles_of(app.view_functions[rule.endpoint])
            if "GET" not in rule.methods or policy in (None, PUBLIC) or (
                    Role.RESEARCHER not in policy):
                continue
            values: dict[str, Any] = {
                name: participant_id if isinstance(conv, IntegerConverter) else "x"
                for name, conv in rule._converters.items()}
            paths.append(url_for(rule.endpoint, **values))
    event.listen(engine, "before_cursor_execute", before)
    try:
        for path in paths:
            try:
                client.get(path)
            except Exception:  # noqa: BLE001, S112 - a placeholder value may break a page
                continue
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return seen, paths


def test_no_page_reads_the_allocation_tables(app, client, signed_in):
    """It walks every GET route a researcher may use and checks that none of them reads the
    seed, and that slots are read only as taken ones (the strata of those randomised, for
    the exports and the report): concealment does not depend on templates leaving things
    out."""
    open_it(app)
    client.post(f"/research/participants/{signed_in['first']}/randomise",
                data={"stratum_baseline_loneliness": "high"})
    seen, paths = statements_of_get_routes(app, client, signed_in["first"])
    assert {"/research/", "/research/participants", f"/research/participants/{signed_in['first']}"
            } <= set(paths)
    assert len(seen) > len(paths)
    assert [s for s in seen if "allocation_seed" in s] == []
    slots = [s for s in seen if "allocation_slot" in s]
    assert all("allocation_slot.participant_id IS NOT NULL" in s
               and "allocation_slot.position" not in s for s in slots), slots


def test_the_randomisation_audit_shows_no_position(app, client, signed_in):
    open_it(app)
    client.post(f"/research/participants/{signed_in['first']}/randomise",
                data={"stratum_baseline_loneliness": "high"})
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "participant.randomised"))
        assert set(entry.detail) == {"arm", "stratum"}


# --- who may ----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.PEER_MODERATOR, Role.CLINICIAN])
def test_moderators_cannot_use_the_trial_actions(app, client, auth, trial, role):
    with app.app_context():
        make_staff(role)
    auth.login(f"{role.value}@example.org")
    pid = trial["first"]
    for path, data in [("/research/open", {}),
                       (f"/research/participants/{pid}/randomise",
                        {"stratum_baseline_loneliness": "high"}),
                       (f"/research/participants/{pid}/withdraw",
                        {"kind": "study", "reason": REASON}),
                       (f"/research/participants/{pid}/status", {"to": "active"})]:
        assert client.post(path, data=data).status_code == 403, path
    with app.app_context():
        assert db.session.scalar(select(func.count(AllocationSeed.id))) == 0
        assert db.session.scalar(select(func.count(Withdrawal.id))) == 0


def test_the_withdraw_form_carries_a_working_csrf_token(app, client, signed_in):
    app.config["WTF_CSRF_ENABLED"] = True
    page = client.get(f"/research/participants/{signed_in['second']}").data
    assert client.post(f"/research/participants/{signed_in['second']}/withdraw",
                       data={"kind": "sms", "reason": REASON}).status_code == 400
    token = TOKEN.search(page).group(1).decode()
    response = client.post(f"/research/participants/{signed_in['second']}/withdraw",
                           data={"kind": "study", "reason": REASON, "csrf_token": token})
    assert response.status_code == 302
    assert status_of(app, signed_in["second"]) == "withdrawn"
