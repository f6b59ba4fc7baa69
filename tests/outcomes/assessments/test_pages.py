"""The questionnaire pages: list, one question per screen saved as it is given, resume,
review, submit with required items named, tampered values, scores stored, who may see
what, and the baseline's end (baseline done, randomised when the study says so)."""

from __future__ import annotations

import re

import pytest
from flask_login import login_user
from sqlalchemy import select

from core.audit import AuditEntry
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant
from core.roles import Role
from outcomes import instruments, randomisation, scoring
from outcomes.assessments import services
from outcomes.assessments.models import AssessmentResponse, ItemAnswer
from outcomes.models import Study
from tests.factories import make_staff
from tests.outcomes.assessments.helpers import answers_for, consented, make_scheduled_study
from tests.outcomes.trial import researcher

UCLA = instruments.get("ucla20")


def setup_person(app, code="T-0001", **study):
    with app.app_context():
        made = make_scheduled_study(**study) if not db.session.scalar(select(Study)) else \
            db.session.scalar(select(Study))
        person = consented(made, code)
        return person.id


def start(client, key="baseline", instrument="ucla20"):
    response = client.post(f"/questionnaires/start/{key}/{instrument}")
    assert response.status_code == 302, response.data
    return client.get(response.headers["Location"], follow_redirects=True)


def response_of(app, pid, instrument="ucla20"):
    with app.app_context():
        return db.session.scalar(select(AssessmentResponse).where(
            AssessmentResponse.participant_id == pid,
            AssessmentResponse.instrument == instrument))


def answer(client, rid, number, value, **extra):
    return client.post(f"/questionnaires/{rid}/question/{number}",
                       data={"answer": str(value), "go": "next", **extra})


def answer_all(client, app, pid, instrument, values):
    start(client, instrument=instrument)
    rid = response_of(app, pid, instrument).id
    for number, value in values.items():
        assert answer(client, rid, number, value).status_code == 302
    return rid


def test_the_list_and_the_first_question(app, client, auth):
    """A consented participant sees their baseline questionnaires; a question is a
    fieldset of radio buttons with the published labels and clear progress."""
    setup_person(app)
    auth.login("T-0001")
    page = client.get("/questionnaires/").get_data(as_text=True)
    assert "UCLA-LS v3" in page and "MSPSS" in page and "20 questions" in page
    page = start(client).get_data(as_text=True)
    assert "Question 1 of 20" in page
    assert "<fieldset" in page and "<legend" in page
    assert UCLA.items[0].text.replace('"', "&#34;") in page
    for option in UCLA.options:
        assert f'value="{option.value}"' in page and f">{option.label}</label>" in page
    assert page.count('type="radio"') == 4
    assert 'name="go" value="back"' in page


def test_each_answer_is_saved_and_coming_back_resumes(app, client, auth):
    pid = setup_person(app)
    auth.login("T-0001")
    start(client)
    rid = response_of(app, pid).id
    first = answer(client, rid, 1, 3)
    assert first.headers["Location"].endswith(f"/questionnaires/{rid}/question/2")
    answer(client, rid, 2, 4)
    with app.app_context():
        rows = db.session.execute(select(ItemAnswer.item, ItemAnswer.value)
                                  .where(ItemAnswer.response_id == rid)).all()
        assert sorted(rows) == [(1, 3), (2, 4)]
    auth.logout()
    auth.login("T-0001")
    again = client.get(f"/questionnaires/{rid}")
    assert again.headers["Location"].endswith(f"/questionnaires/{rid}/question/3")
    assert "You have answered 2 of 20" in client.get("/questionnaires/").get_data(as_text=True)
    # Back keeps the answer already given and shows it checked
    back = client.post(f"/questionnaires/{rid}/question/3", data={"go": "back"})
    assert back.headers["Location"].endswith("/question/2")
    page = client.get(f"/questionnaires/{rid}/question/2").get_data(as_text=True)
    assert re.search(r'value="4"\s+checked', page)
    # changing an answer overwrites it
    answer(client, rid, 2, 1)
    with app.app_context():
        assert services.answers_of(db.session.get(AssessmentResponse, rid)) == {1: 3, 2: 1}


@pytest.mark.parametrize("value", ["9", "0", "abc", "2.5", "-1"])
def test_a_tampered_value_is_refused_naming_the_question(app, client, auth, value):
    pid = setup_person(app)
    auth.login("T-0001")
    start(client)
    rid = response_of(app, pid).id
    page = client.post(f"/questionnaires/{rid}/question/5", data={"answer": value, "go": "next"})
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert "Question 5: that answer is not one of the choices" in text
    assert 'aria-invalid="true"' in text and 'aria-describedby="answer-error"' in text
    with app.app_context():
        assert db.session.scalar(select(ItemAnswer.id).where(ItemAnswer.response_id == rid)) \
            is None


def test_a_question_that_does_not_exist_is_404(app, client, auth):
    pid = setup_person(app)
    auth.login("T-0001")
    start(client)
    rid = response_of(app, pid).id
    assert client.get(f"/questionnaires/{rid}/question/21").status_code == 404
    assert answer(client, rid, 0, 1).status_code == 404


def test_review_lists_answers_and_submit_names_each_missing_one(app, client, auth):
    pid = setup_person(app)
    auth.login("T-0001")
    values = {n: v for n, v in answers_for("ucla20", 2).items() if n not in (7, 12)}
    rid = answer_all(client, app, pid, "ucla20", values)
    review = client.get(f"/questionnaires/{rid}/review").get_data(as_text=True)
    assert review.count("Rarely") == 18 and review.count("Not answered yet") == 2
    assert f"/questionnaires/{rid}/question/7?review=1" in review
    refused = client.post(f"/questionnaires/{rid}/submit")
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "Question 7 is not answered yet" in text and "Question 12 is not answered yet" in text
    assert "Question 3 is not answered yet" not in text
    with app.app_context():
        kept = db.session.get(AssessmentResponse, rid)
        assert kept.submitted_at is None and len(services.answers_of(kept)) == 18
    # answering from the review goes back to the review
    back = answer(client, rid, 7, 3, review="1")
    assert back.headers["Location"].endswith(f"/questionnaires/{rid}/review")


def test_submit_stores_the_engines_score_with_version_and_rules(app, client, auth):
    pid = setup_person(app)
    auth.login("T-0001")
    values = {n: (n % 4) + 1 for n in UCLA.item_numbers}
    rid = answer_all(client, app, pid, "ucla20", values)
    done = client.post(f"/questionnaires/{rid}/submit")
    assert done.status_code == 302 and done.headers["Location"].endswith("/questionnaires/")
    expected = scoring.score(UCLA, values)
    with app.app_context():
        row = db.session.get(AssessmentResponse, rid)
        assert row.submitted_at is not None and row.total == expected.total
        assert row.instrument_version == UCLA.version == expected.instrument_version
        assert row.scoring_rule == expected.scoring_rule and "reverse-keyed" in row.scoring_rule
        assert row.missing_rule == expected.missing_rule and row.score_status == "ok"
        assert (row.subscales, row.labels, row.missing) == ({}, {}, 0)
        event = db.session.scalars(select(ActivityEvent).where(
            ActivityEvent.kind == "assessment_completed")).one()
        assert event.detail == {"timepoint": "baseline", "instrument": "ucla20"}
    # a sent questionnaire cannot be changed
    again = answer(client, rid, 1, 1)
    assert again.status_code == 302
    with app.app_context():
        assert services.answers_of(db.session.get(AssessmentResponse, rid))[1] == values[1]


def test_mspss_subscales_and_labels_are_stored(app, client, auth):
    pid = setup_person(app)
    auth.login("T-0001")
    values = {n: 5 + (n % 3) for n in range(1, 13)}
    rid = answer_all(client, app, pid, "mspss", values)
    client.post(f"/questionnaires/{rid}/submit")
    expected = scoring.score(instruments.get("mspss"), values)
    with app.app_context():
        row = db.session.get(AssessmentResponse, rid)
        assert row.subscales == expected.subscales and row.labels == expected.labels
        assert row.extra_totals == expected.extra_totals and row.total == expected.total


def test_participants_see_only_their_own_responses(app, client, auth):
    owner = setup_person(app, "T-0001")
    setup_person(app, "T-0002")
    auth.login("T-0001")
    start(client)
    rid = response_of(app, owner).id
    answer(client, rid, 1, 2)
    auth.logout()
    auth.login("T-0002")
    for url in (f"/questionnaires/{rid}", f"/questionnaires/{rid}/question/1",
                f"/questionnaires/{rid}/review"):
        assert client.get(url).status_code == 404
    assert answer(client, rid, 1, 4).status_code == 404
    assert client.post(f"/questionnaires/{rid}/submit").status_code == 404
    with app.app_context():
        assert services.answers_of(db.session.get(AssessmentResponse, rid)) == {1: 2}


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.ADMIN, Role.CLINICIAN,
                                  Role.PEER_MODERATOR])
def test_staff_never_fill_questionnaires(app, client, auth, role):
    owner = setup_person(app)
    with app.app_context():
        make_staff(role, "staff@example.org")
        timepoint = services.timepoint_by_key(db.session.get(Participant, owner).study_id,
                                              "baseline")
        rid = services.start(db.session.get(Participant, owner), timepoint, "ucla20").id
        db.session.commit()
    auth.login("staff@example.org")
    assert client.get("/questionnaires/").status_code == 403
    assert client.get(f"/questionnaires/{rid}/question/1").status_code == 403
    assert answer(client, rid, 1, 2).status_code == 403
    assert client.post("/questionnaires/start/baseline/ucla20").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client, app):
    setup_person(app)
    assert client.get("/questionnaires/").status_code == 302
    assert "/login" in client.get("/questionnaires/1/question/1").headers["Location"]


def test_an_instrument_outside_the_timepoint_cannot_be_started(app, client, auth):
    setup_person(app)
    auth.login("T-0001")
    refused = client.post("/questionnaires/start/baseline/lsns6", follow_redirects=True)
    assert "not part of this study&#39;s schedule" in refused.get_data(as_text=True)
    assert client.post("/questionnaires/start/week99/ucla20").status_code == 404
    early = client.post("/questionnaires/start/week6/ucla3", follow_redirects=True)
    assert "The Week 6 questionnaires are not open yet." in early.get_data(as_text=True)


def _ucla(total: int) -> dict[int, int]:
    """UCLA answers with this total: all 3 is 51 (11 items at 3, 9 reversed at 5 - 3),
    and each non-reversed item moved from 3 to 2 takes one off."""
    values = answers_for("ucla20", 3)
    for number in [2, 3, 4, 7, 8, 11, 12, 13, 14, 17, 18][:51 - total]:
        values[number] = 2
    return values


def _finish_baseline(client, app, pid, ucla_total):
    for name, values in (("ucla20", _ucla(ucla_total)), ("mspss", answers_for("mspss", 4))):
        rid = answer_all(client, app, pid, name, values)
        last = client.post(f"/questionnaires/{rid}/submit")
    return last


def test_finishing_the_baseline_randomises_when_the_study_says_so(app, client, auth):
    """A UCLA total of 50 is at the cut-off (50): the baseline_loneliness stratum is
    "high"; the participant is randomised by the system."""
    pid = setup_person(app)
    with app.app_context():
        study = db.session.scalar(select(Study))
        study.randomise_on_baseline = True
        randomisation.open_enrolment(study, actor=researcher(), seed="seed")
        db.session.commit()
    auth.login("T-0001")
    last = _finish_baseline(client, app, pid, 50)
    assert response_of(app, pid).total == 50
    assert last.headers["Location"].endswith("/questionnaires/thanks/baseline")
    thanks = client.get(last.headers["Location"]).get_data(as_text=True)
    assert "Thank you" in thanks and "You are now taking part in the study" in thanks
    with app.app_context():
        person = db.session.get(Participant, pid)
        assert person.status == "randomised" and person.arm_id is not None
        entry = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "participant.randomised")).one()
        assert entry.actor_id is None and entry.detail["by"] == "system"
        assert entry.detail["stratum"] == {"site": "North", "baseline_loneliness": "high"}
        moves = db.session.scalars(select(AuditEntry.detail).where(
            AuditEntry.action == "participant.status")).all()
        assert [m["new"] for m in moves][-2:] == ["baseline_done", "randomised"]
        kinds = db.session.scalars(select(ActivityEvent.kind).order_by(ActivityEvent.id)).all()
        assert kinds.count("assessment_completed") == 2 and "timepoint_completed" in kinds


def test_a_score_below_the_cut_off_is_the_low_stratum(app, client, auth):
    """A UCLA total of 49, one below the cut-off, is "low"."""
    pid = setup_person(app)
    with app.app_context():
        study = db.session.scalar(select(Study))
        study.randomise_on_baseline = True
        randomisation.open_enrolment(study, actor=researcher(), seed="seed")
        db.session.commit()
    auth.login("T-0001")
    _finish_baseline(client, app, pid, 49)
    with app.app_context():
        assert response_of(app, pid).total == 49
        entry = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "participant.randomised")).one()
        assert entry.detail["stratum"]["baseline_loneliness"] == "low"


def test_without_automatic_randomisation_the_baseline_is_just_done(app, client, auth):
    pid = setup_person(app)
    auth.login("T-0001")
    last = _finish_baseline(client, app, pid, 40)
    thanks = client.get(last.headers["Location"]).get_data(as_text=True)
    assert "The study team will now set up your place" in thanks
    with app.app_context():
        person = db.session.get(Participant, pid)
        assert person.status == "baseline_done" and person.arm_id is None
    assert "nothing to fill in right now" in client.get("/questionnaires/").get_data(as_text=True)


def test_a_stratum_that_cannot_be_worked_out_leaves_it_to_the_researcher(app, client, auth):
    """A stratum without a rule: baseline done, not randomised, and the reason audited."""
    pid = setup_person(app, strata=["site", "employment"],
                       stratum_levels={"employment": ["yes", "no"]})
    with app.app_context():
        study = db.session.scalar(select(Study))
        study.randomise_on_baseline = True
        randomisation.open_enrolment(study, actor=researcher(), seed="seed")
        db.session.commit()
    auth.login("T-0001")
    _finish_baseline(client, app, pid, 40)
    with app.app_context():
        person = db.session.get(Participant, pid)
        assert person.status == "baseline_done" and person.arm_id is None
        entry = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "participant.randomisation_deferred")).one()
        assert entry.detail["reason"] == (
            "The employment stratum cannot be worked out: the assessment schedule has no "
            "rule for it (add one under the baseline's strata).")


def test_home_shows_the_questionnaires_first(app, client, auth):
    """Before randomisation the home page is where a participant lands: the baseline
    questionnaires first, then what happens next."""
    setup_person(app)
    auth.login("T-0001")
    page = client.get("/").get_data(as_text=True)
    assert "Questionnaires to fill" in page
    assert page.index("Questionnaires to fill") < page.index("What happens next")
    assert "Before you start, please answer a few questionnaires" in page


def test_other_packages_templates_can_ask_what_is_due(app):
    """The ``questionnaires_due()`` template global (for pages outside this package, such
    as the core home page) gives the signed-in participant's due questionnaires."""
    pid = setup_person(app)
    with app.test_request_context():
        assert app.jinja_env.globals["questionnaires_due"]() == []  # nobody signed in
    with app.app_context():
        person = db.session.get(Participant, pid)
        with app.test_request_context():
            login_user(person.user)
            due = app.jinja_env.globals["questionnaires_due"]()
            assert [q.instrument.id for q in due] == ["ucla20", "mspss"]
