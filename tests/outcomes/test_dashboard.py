"""The researcher dashboard: the CONSORT flow by arm, assessment completion, adherence
distributions and attrition, from live data; who may see it; and its query count."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant
from core.roles import Role
from modules.models import StepProgress
from outcomes import services
from outcomes.adherence import DEFINITIONS
from outcomes.models import Arm, StatusChange, Study, Withdrawal
from tests.factories import make_participant, make_staff, make_study
from tests.modules.content_rows import count_queries, make_module, steps_of
from tests.pages import table_rows

R = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)
NOW = R + 30 * DAY
NAMES = {"guided": "Zebra arm", "self": "Quokka arm"}


def participant(code: str, status: str, *, arm: str | None = None,
                withdrew_from: str | None = None) -> Participant:
    who = make_participant(code=code, name=None, arm=arm)
    who.status, who.enrolled_at = status, R - 10 * DAY
    if arm:
        who.randomised_at = R
    if withdrew_from:
        db.session.add(StatusChange(participant_id=who.id, from_status=withdrew_from,
                                    to_status="withdrawn", at=R + 3 * DAY))
    db.session.commit()
    return who


def event(who: Participant, kind: str, at: datetime) -> None:
    db.session.add(ActivityEvent(participant_id=who.id, kind=kind, at=at, detail={}))
    db.session.commit()


def withdrawal(who: Participant, kind: str, at: datetime) -> None:
    db.session.add(Withdrawal(participant_id=who.id, kind=kind, at=at, reason="test"))
    db.session.commit()


def build_trial() -> Study:
    """Eight participants along the path (see the expectations in the tests)."""
    study = make_study()
    for arm in study.arms:
        arm.name = NAMES[arm.code]
    module = make_module("mod-a", kinds=("read", "read"))
    db.session.commit()
    participant("T-0001", "invited")
    participant("T-0002", "consented")
    participant("T-0003", "baseline_done")
    t4 = participant("T-0004", "active", arm="guided")
    event(t4, "step_completed", R + 20 * DAY)
    db.session.add(StepProgress(participant_id=t4.id, step_id=steps_of(module)[0].id,
                                completed_at=R + 20 * DAY))
    t5 = participant("T-0005", "randomised", arm="guided")
    event(t5, "login", R + DAY)
    t6 = participant("T-0006", "withdrawn", arm="self", withdrew_from="active")
    event(t6, "post_written", R + 2 * DAY)
    withdrawal(t6, "study", R + 3 * DAY)
    t7 = participant("T-0007", "withdrawn", withdrew_from="consented")
    withdrawal(t7, "study", R + 3 * DAY)
    t8 = participant("T-0008", "active", arm="self")
    event(t8, "mood_logged", R + 25 * DAY)
    withdrawal(t8, "intervention", R + 26 * DAY)
    return study


@pytest.fixture
def trial(app) -> None:
    clock.set_time(NOW)
    with app.app_context():
        build_trial()
        make_staff(Role.RESEARCHER)


def arm_ids() -> dict[str, int]:
    return {arm.code: arm.id for arm in db.session.scalars(select(Arm))}


def test_the_consort_flow_counts_each_stage_by_arm(app, trial):
    with app.app_context():
        board = services.dashboard(db.session.scalar(select(Study)), now=NOW)
        ids = arm_ids()
        flow = {row.key: (row.total, None if row.by_arm is None else
                          (row.by_arm[ids["guided"]], row.by_arm[ids["self"]]))
                for row in board.flow}
    assert flow["enrolled"] == (8, None)
    assert flow["consented"] == (7, None)
    assert flow["baseline_done"] == (5, None)
    assert flow["withdrew_before"] == (1, None)
    assert flow["allocated"] == (4, (2, 2))
    assert flow["received"] == (3, (1, 2))
    assert flow["not_received"] == (1, (1, 0))
    assert flow["withdrew_intervention"] == (1, (0, 1))
    assert flow["withdrew_study"] == (1, (0, 1))
    assert flow["withdrew_sms"] == (0, (0, 0))
    # T-0005: 29 days since their last activity; T-0004 10, T-0008 5
    assert flow["lost"] == (1, (1, 0))
    # T-0005 (29 days) and T-0006 (28 days) have not used the platform for 14 days
    assert flow["stopped_using"] == (2, (1, 1))


def test_the_distributions_and_attrition_follow_the_data(app, trial):
    with app.app_context():
        board = services.dashboard(db.session.scalar(select(Study)), now=NOW)
        ids = arm_ids()
    rows = {row.metric: row for row in board.distributions}
    guided = rows["adherence_ratio"].by_arm[ids["guided"]]
    assert (guided.n, guided.median, guided.q1, guided.q3) == (2, 0.25, 0.125, 0.375)
    selfs = rows["adherence_ratio"].by_arm[ids["self"]]
    assert (selfs.n, selfs.median, selfs.maximum) == (2, 0.0, 0.0)
    assert rows["active_days"].by_arm[ids["guided"]].median == 1.0
    assert rows["adherence_ratio"].histograms[ids["guided"]].counts == [1, 0, 1, 0, 0]
    assert board.attrition[ids["guided"]]["stopped"] == 1
    assert board.attrition[ids["self"]]["randomised"] == 2
    assert set(rows) == set(services.DISTRIBUTED)


def test_stopped_using_follows_the_chosen_number_of_days(app, trial):
    with app.app_context():
        study = db.session.scalar(select(Study))
        board = services.dashboard(study, now=NOW, stopped_after_days=29)
        ids = arm_ids()
    stopped = next(row for row in board.flow if row.key == "stopped_using")
    assert stopped.by_arm == {ids["guided"]: 1, ids["self"]: 0}
    assert stopped.note == "no use for 29 days"


# --- the page ---------------------------------------------------------------------------------

def rows_by_label(page: bytes) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in table_rows(page)}


def test_the_page_shows_the_flow_distributions_and_codebook(app, client, auth, trial):
    auth.login("researcher@example.org")
    response = client.get("/research/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    rows = rows_by_label(response.data)
    assert rows["Enrolled (invited)"] == ["8", "–not allocated yet", "–not allocated yet"]
    assert rows["Randomised (allocated)"] == ["4", "2", "2"]
    assert rows["Received the intervention (at least one intervention event after "
                "randomisation)"] == ["3", "1", "2"]
    assert rows["Stopped using (no use for 14 days)"] == ["2", "1", "1"]
    # the attrition table (the last with a row per arm): no post-treatment timepoint yet
    assert rows["Zebra arm"] == ["2", "1", "–", "–", "–"]
    assert "names no post-treatment timepoint yet" in page
    assert "<caption>Participants at each stage of the trial, by arm</caption>" in page
    assert "<caption>Distribution of each adherence measure, by arm</caption>" in page
    assert "25 %" in page  # the guided arm's median adherence ratio
    for item in DEFINITIONS.values():
        assert item["label"] in page
    # the earlier status table is still there, unchanged
    assert rows["withdrawn"] == ["1", "0", "1"]


def test_the_page_follows_live_data(app, client, auth, trial):
    auth.login("researcher@example.org")
    before = rows_by_label(client.get("/research/").data)
    assert before["Received the intervention (at least one intervention event after "
                  "randomisation)"] == ["3", "1", "2"]
    with app.app_context():
        t5 = db.session.scalar(select(Participant).where(Participant.study_code == "T-0005"))
        event(t5, "reaction_given", NOW - timedelta(hours=1))
    after = rows_by_label(client.get("/research/").data)
    assert after["Received the intervention (at least one intervention event after "
                 "randomisation)"] == ["4", "2", "2"]
    assert after["Stopped using (no use for 14 days)"] == ["1", "0", "1"]


def test_the_number_of_days_can_be_changed_on_the_page(app, client, auth, trial):
    auth.login("researcher@example.org")
    page = client.get("/research/?stopped_after=30")
    assert rows_by_label(page.data)["Stopped using (no use for 30 days)"] == ["0", "0", "0"]
    assert b'value="30"' in page.data
    bad = client.get("/research/?stopped_after=0").get_data(as_text=True)
    assert "Give a whole number of days from 1 to 365." in bad
    assert 'aria-describedby="stopped_after-error"' in bad
    assert "Stopped using (no use for 14 days)" in rows_by_label(bad)
    nonsense = client.get("/research/?stopped_after=abc").get_data(as_text=True)
    assert "Give a whole number of days from 1 to 365." in nonsense


@pytest.mark.parametrize("role, expected", [
    (Role.ADMIN, 200), (Role.CLINICIAN, 403), (Role.PEER_MODERATOR, 403)])
def test_only_research_staff_see_the_dashboard(app, client, auth, trial, role, expected):
    with app.app_context():
        make_staff(role, f"{role.value}@example.org")
    auth.login(f"{role.value}@example.org")
    assert client.get("/research/").status_code == expected


def test_participants_and_visitors_do_not_see_the_dashboard(app, client, auth, trial):
    anonymous = client.get("/research/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    with app.app_context():
        make_participant(code="T-0100", name="Quiet Harbour")
    auth.login("T-0100")
    assert client.get("/research/").status_code == 403


def test_the_page_costs_the_same_number_of_queries_at_two_sizes(app, client, auth, trial):
    auth.login("researcher@example.org")
    client.get("/research/")

    def queries() -> int:
        with app.app_context(), count_queries() as statements:
            assert client.get("/research/").status_code == 200
        return len(statements)

    small = queries()
    with app.app_context():
        for n in range(20):
            who = participant(f"T-1{n:03d}", "active", arm="guided" if n % 2 else "self")
            event(who, "login", R + n * DAY)
            event(who, "post_written", R + n * DAY)
            if n % 5 == 0:
                withdrawal(who, "sms", R + DAY)
    large = queries()
    assert large == small


# --- with the assessment schedule (outcomes.assessments) -------------------------------------

def test_post_treatment_completion_and_dropout_come_from_the_schedule(app, client, auth, trial):
    """A post-treatment timepoint open on days 21 to 27: by day 30 T-0004, who submitted it,
    is analysed; T-0005 and T-0008 missed it and T-0006 withdrew: three dropouts, kept
    apart from the two who stopped using."""
    models = pytest.importorskip("outcomes.assessments.models")
    with app.app_context():
        study = db.session.scalar(select(Study))
        timepoint = models.Timepoint(study_id=study.id, key="post", label="Week 4 (post)",
                                     position=1, instruments=["ucla3"], opens_day=21,
                                     closes_day=27, is_post_treatment=True)
        db.session.add(timepoint)
        db.session.flush()
        t4 = db.session.scalar(select(Participant).where(Participant.study_code == "T-0004"))
        db.session.add(models.AssessmentResponse(
            participant_id=t4.id, timepoint_id=timepoint.id, instrument="ucla3",
            submitted_at=R + 22 * DAY))
        db.session.commit()
        board = services.dashboard(study, now=NOW)
        ids = arm_ids()
    flow = {row.key: row for row in board.flow}
    assert flow["analysed"].by_arm == {ids["guided"]: 1, ids["self"]: 0}
    assert board.attrition[ids["guided"]] == {
        "randomised": 2, "stopped": 1, "dropout": 1, "both": 1, "stopped_not_dropout": 0,
        "dropout_unknown": 0}
    assert board.attrition[ids["self"]]["dropout"] == 2
    assert board.attrition[ids["self"]]["both"] == 1  # T-0006 stopped and withdrew
    post = next(tp for tp in board.timepoints if tp.key == "post")
    assert post.totals == {"due": 3, "completed": 1, "overdue": 0, "missed": 2}
    auth.login("researcher@example.org")
    rows = rows_by_label(client.get("/research/").data)
    assert rows["Completed the post-treatment assessment (analysed)"] == ["1", "1", "0"]
    # by arm: T-0004 done and T-0005 missed; T-0008 missed, T-0006 withdrawn (not due)
    assert rows["Week 4 (post)"] == ["1 of 2", "0 of 1"]
    assert rows["Zebra arm"] == ["2", "1", "1", "1", "0"]


# --- the box plot --------------------------------------------------------------------------

def test_the_box_plot_is_safe_under_the_csp_and_says_what_it_shows():
    from outcomes.adherence import charts, summary

    svg = str(charts.box_plot(
        [("<b>Arm</b>", summary.distribution([0.0, 0.5, 1.0])),
         ("Empty arm", summary.distribution([None]))],
        title="Adherence by arm", low=0.0, high=1.0, chart_id="c",
        show=lambda v: services.show_value("adherence_ratio", v)))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<title id=\"c-title\">Adherence by arm</title>" in svg
    assert "style=" not in svg and "<script" not in svg and "<b>" not in svg
    assert "&lt;b&gt;Arm&lt;/b&gt;: median 50 %, interquartile range 25 % to 75 %" in svg
    assert "Empty arm: no values." in svg and ">no values</text>" in svg
    # the box spans the quartiles: x from 16 + 0.25 * 440 to 16 + 0.75 * 440
    assert '<rect x="126.0" y="' in svg and 'width="220.0"' in svg


def test_the_box_plot_shows_a_long_arm_name_whole_above_its_box():
    """Arm names are the researchers' own: a name that did not fit a left margin was cut
    ("...hip with moderators"); now it sits above its box, shortened only past the width."""
    from outcomes.adherence import charts, summary

    long_name = "Kinship with moderators, weekly check-ins and the peer forum, pilot site B"
    svg = str(charts.box_plot(
        [("Kinship with moderators", summary.distribution([0.2, 0.4])),
         (long_name, summary.distribution([0.1, 0.9]))],
        title="Adherence by arm", low=0.0, high=1.0, chart_id="c",
        show=lambda v: services.show_value("adherence_ratio", v)))
    labels = re.findall(r'<text x="16" y="[0-9.]+" font-weight="600">([^<]+)</text>', svg)
    assert labels[0] == "Kinship with moderators"
    assert labels[1] == long_name[:charts.NAME_CHARACTERS - 1] + "…"
    assert f"{long_name}: median" in svg  # the description keeps it whole
    rows = [float(y) for y in re.findall(r'<rect x="[0-9.]+" y="([0-9.]+)"', svg)]
    assert rows[1] - rows[0] == charts.ROW  # one row each, name above its box


def test_the_page_draws_a_box_plot_per_ratio(app, client, auth, trial):
    auth.login("researcher@example.org")
    page = client.get("/research/").get_data(as_text=True)
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg"') >= 2
    assert "Adherence ratio (steps) by arm" in page
    assert "Zebra arm: median 25 %" in page
