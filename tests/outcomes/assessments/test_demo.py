"""The demo schedule and answers, and the new-user path: a participant enrolled in the
demo study accepts the invite, fills the baseline questionnaires through the pages and
is randomised; the completion counts move."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from core import accounts
from core.extensions import db
from core.models import Participant, User
from outcomes import instruments, scoring
from outcomes.assessments import completion
from outcomes.assessments.demo import DEMO_SCHEDULE, seed_demo_schedule
from outcomes.assessments.models import AssessmentResponse
from outcomes.assessments.schedule import export_schedule, timepoints_of
from outcomes.models import Study
from tests.conftest import PASSWORD


@pytest.fixture
def demo(app, runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        study = db.session.scalar(select(Study))
        if not timepoints_of(study):  # until the demo seed calls it itself
            seed_demo_schedule(study, rng=random.Random(7))
            db.session.commit()
    return app


def test_the_demo_has_a_schedule_and_scored_answers(demo):
    with demo.app_context():
        study = db.session.scalar(select(Study))
        assert export_schedule(study) == DEMO_SCHEDULE
        assert study.randomise_on_baseline
        assert completion.post_treatment_key(study) == "week12"
        rows = {row.key: row for row in completion.completion_by_timepoint(study)}
        randomised = db.session.scalar(select(db.func.count(Participant.id)).where(
            Participant.randomised_at.is_not(None)))
        assert rows["baseline"].completed == randomised == 27
        assert rows["week6"].due >= rows["week6"].completed > 0
        for response in db.session.scalars(select(AssessmentResponse)):
            answers = {a.item: a.value for a in response.answers}
            expected = scoring.score(instruments.get(response.instrument), answers)
            assert (response.total, response.labels) == (expected.total, expected.labels)
            assert response.submitted_at < db.session.get(
                Participant, response.participant_id).randomised_at or \
                response.timepoint.key != "baseline"


def test_a_new_participant_fills_the_baseline_and_is_randomised(demo, client, auth):
    with demo.app_context():
        study = db.session.scalar(select(Study))
        researcher = db.session.scalar(select(User).where(
            User.email == "researcher@demo.kinship.test"))
        issued = accounts.enrol_participant(study, actor=researcher, study_code="DEMO-0100",
                                            site="North clinic")
        db.session.commit()
        token, consent_id = issued.token, accounts.current_consent().id
        before = {row.key: row for row in completion.completion_by_timepoint(study)}
    accepted = client.post(f"/invite/{token}", data={
        "display_name": "New Starter", "password": PASSWORD, "confirm": PASSWORD,
        "timezone": "Europe/London", "consent_version_id": str(consent_id), "consent": "y"})
    assert accepted.status_code == 302
    home = client.get("/").get_data(as_text=True)  # no programme before randomisation
    assert "Questionnaires to fill" in home and 'name="viewport"' in home
    for name in ("ucla20", "mspss", "lsns6"):
        instrument = instruments.get(name)
        page = client.post(f"/questionnaires/start/baseline/{name}", follow_redirects=True)
        for position, _item in enumerate(instrument.items, start=1):
            assert f"Question {position} of {len(instrument.items)}" in page.get_data(
                as_text=True)
            page = client.post(page.request.path, data={
                "answer": str(instrument.options[position % len(instrument.options)].value),
                "go": "next"}, follow_redirects=True)
        assert "Check your answers" in page.get_data(as_text=True)
        done = client.post(page.request.path.replace("/review", "/submit"))
        assert done.status_code == 302
    thanks = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "You are now taking part in the study" in thanks
    with demo.app_context():
        person = db.session.scalar(select(Participant).where(
            Participant.study_code == "DEMO-0100"))
        assert person.status == "randomised" and person.arm_id is not None
        after = {row.key: row for row in completion.completion_by_timepoint(
            db.session.scalar(select(Study)))}
        assert after["baseline"].completed == before["baseline"].completed + 1
        assert after["baseline"].by_arm[person.arm_id].completed == \
            before["baseline"].by_arm[person.arm_id].completed + 1
