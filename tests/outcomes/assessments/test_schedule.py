"""The schedule as data: checking, export/apply round trip, and the change guard."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from core.audit import AuditEntry
from core.extensions import db
from outcomes import randomisation
from outcomes.assessments import completion, services
from outcomes.assessments.demo import DEMO_SCHEDULE
from outcomes.assessments.schedule import (
    ScheduleError,
    apply_schedule,
    check_schedule,
    export_schedule,
    schedule_change_refusal,
)
from tests.factories import make_study
from tests.outcomes.assessments.helpers import SCHEDULE, consented, make_scheduled_study
from tests.outcomes.trial import researcher


def schedule(**changes) -> list[dict]:
    """SCHEDULE with changes to one timepoint: changes={"week6": {"opens": 3}}."""
    data = copy.deepcopy(SCHEDULE)
    for entry in data:
        entry.update(changes.get(entry["key"], {}))
    return data


def test_the_shipped_schedules_are_valid():
    """It accepts the demo schedule and the tests' schedule."""
    assert check_schedule(DEMO_SCHEDULE) == []
    assert check_schedule(SCHEDULE) == []


@pytest.mark.parametrize(("data", "expected"), [
    ("baseline", "must be a list"),
    (schedule(week6={"key": "Week 6"}), "key must be 1-40 lower-case"),
    (schedule(week6={"key": "baseline"}), "'baseline' is used more than once"),
    (schedule(week6={"instruments": ["ucla21"]}), "'ucla21' is not a known instrument"),
    (schedule(week6={"instruments": []}), "list the instruments"),
    (schedule(week6={"instruments": ["ucla3", "ucla3"]}), "listed twice"),
    (schedule(week6={"closes": 30}), "closes must be a whole number of days, not before opens"),
    (schedule(week6={"opens": -1}), "opens must be a whole number"),
    (schedule(week6={"opens": "35"}), "opens must be a whole number"),
    (schedule(week6={"overdue_after": 30}), "overdue_after (30) goes past closing"),
    (schedule(baseline={"opens": 0}), "takes no opens"),
    (schedule(week6={"reminders": [7, 3]}), "reminders must be in increasing order"),
    (schedule(week6={"sms_reminders": [-1]}), "sms_reminders must be a list of whole numbers"),
    (schedule(week6={"post_treatment": True}), "Only one timepoint can be marked post_treatment"),
    (schedule(week6={"baseline": True}), "Only one timepoint can be the baseline"),
    (schedule(week6={"strata": {"x": {}}}), "put them on the baseline"),
    (schedule(week6={"colour": "red"}), "unknown setting 'colour'"),
    (schedule(week6={"label": ""}), "give a label"),
    (schedule(baseline={"strata": {"baseline_loneliness": {
        "instrument": "lsns6", "score": "total", "cut_off": 1, "at_or_above": "a",
        "below": "b"}}}), "instrument must be one of this timepoint's instruments"),
    (schedule(baseline={"strata": {"baseline_loneliness": {
        "instrument": "ucla20", "score": "family", "cut_off": 50, "at_or_above": "high",
        "below": "low"}}}), "score must be one of total"),
    (schedule(baseline={"strata": {"baseline_loneliness": {
        "instrument": "ucla20", "score": "total", "cut_off": "50", "at_or_above": "high",
        "below": "low"}}}), "cut_off must be a number"),
    (schedule(baseline={"strata": {"baseline_loneliness": {
        "instrument": "ucla20", "score": "total", "cut_off": 50, "at_or_above": "high",
        "below": "high"}}}), "two different level names"),
    (schedule(baseline={"strata": {"support": {"instrument": "mspss", "label": "colour"}}}),
     "label must be one of band"),
])
def test_check_names_each_problem(data, expected):
    """It names what is wrong, and where."""
    problems = check_schedule(data)
    assert any(expected in problem for problem in problems), problems


def test_the_baseline_must_come_first():
    data = schedule()
    data.reverse()
    assert "The baseline must be the first timepoint." in check_schedule(data)


def test_apply_then_export_gives_the_schedule_back(app):
    with app.app_context():
        study = make_scheduled_study()
        assert export_schedule(study) == SCHEDULE
        assert completion.post_treatment_key(study) == "week12"
        entry = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "study.schedule_changed")).one()
        assert entry.detail == {"timepoints": ["baseline", "week6", "week12"]}


def test_apply_refuses_a_broken_schedule_with_every_problem(app):
    with app.app_context():
        study = make_scheduled_study()
        with pytest.raises(ScheduleError) as caught:
            apply_schedule(study, schedule(week6={"opens": -1, "instruments": ["nope"]}),
                           actor=None)
        assert len(caught.value.problems) == 2
        db.session.rollback()
        assert export_schedule(study) == SCHEDULE


def _with_a_response(study, key="baseline"):
    person = consented(study)
    timepoint = services.timepoint_by_key(study.id, key)
    services.start(person, timepoint, timepoint.instruments[0])
    db.session.commit()
    return person


def test_a_timepoint_with_responses_cannot_be_removed_or_its_instruments_changed(app):
    with app.app_context():
        study = make_scheduled_study()
        _with_a_response(study)
        removed = [entry for entry in schedule() if entry["key"] != "baseline"]
        removed[0]["label"] = "Week 6"
        assert "Baseline (baseline) cannot be removed: 1 questionnaire response(s) exist" in \
            schedule_change_refusal(study, removed)
        changed = schedule(baseline={"instruments": ["ucla20", "mspss", "lsns6"]})
        assert "The instruments of Baseline (baseline) cannot change" in \
            schedule_change_refusal(study, changed)
        with pytest.raises(ScheduleError, match="cannot change"):
            apply_schedule(study, changed, actor=None)


def test_before_enrolment_opens_unanswered_timepoints_can_change(app):
    with app.app_context():
        study = make_scheduled_study()
        _with_a_response(study)
        data = [entry for entry in schedule(week6={"opens": 30, "instruments": ["uls8"]})
                if entry["key"] != "week12"]
        assert schedule_change_refusal(study, data) is None
        apply_schedule(study, data, actor=None)
        assert [tp["key"] for tp in export_schedule(study)] == ["baseline", "week6"]


def test_once_enrolment_opened_windows_and_strata_are_fixed(app):
    with app.app_context():
        study = make_scheduled_study()
        randomisation.open_enrolment(study, actor=researcher(), seed="s")
        db.session.commit()
        assert "The opens of Week 6 (week6) cannot change once enrolment has opened" in \
            schedule_change_refusal(study, schedule(week6={"opens": 30}))
        assert "overdue_after" in schedule_change_refusal(
            study, schedule(week12={"overdue_after": 3}))
        assert "post_treatment" in schedule_change_refusal(
            study, schedule(week12={"post_treatment": False}, week6={"post_treatment": True}))
        rule = dict(SCHEDULE[0]["strata"]["baseline_loneliness"], cut_off=45)
        assert "strata rules of Baseline" in schedule_change_refusal(
            study, schedule(baseline={"strata": {"baseline_loneliness": rule}}))
        assert "cannot be removed: enrolment has opened" in schedule_change_refusal(
            study, SCHEDULE[:2])
        # labels, reminders and a new ordinary timepoint are fine
        calmer = schedule(week6={"label": "Six weeks", "reminders": [0], "sms_reminders": []})
        calmer.append({"key": "week52", "label": "One year", "instruments": ["ucla20"],
                       "opens": 350, "closes": 380})
        assert schedule_change_refusal(study, calmer) is None
        apply_schedule(study, calmer, actor=None)
        assert export_schedule(study)[1]["label"] == "Six weeks"


def test_apply_checks_stratum_rules_against_the_studys_strata(app):
    with app.app_context():
        study = make_study(sites=["North"], strata=["site"])
        with pytest.raises(ScheduleError, match="baseline_loneliness is not one of the study"):
            apply_schedule(study, SCHEDULE, actor=None)
        study.strata = ["site", "baseline_loneliness"]
        study.stratum_levels = {"baseline_loneliness": ["lonely", "not lonely"]}
        with pytest.raises(ScheduleError, match="'high' is not one of its levels"):
            apply_schedule(study, SCHEDULE, actor=None)
