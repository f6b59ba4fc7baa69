"""Windows and statuses: local days in the participant's time zone, every boundary,
the baseline's window, and the counts the dashboard and the adherence metrics read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.extensions import db
from core.roles import Role
from outcomes import participants as path
from outcomes.assessments import completion, services
from outcomes.models import Study
from tests.factories import make_participant, make_staff
from tests.outcomes.assessments.helpers import (
    answers_for,
    consented,
    make_scheduled_study,
    randomised,
)

#: randomised late in the evening in London, already the next morning in Auckland
RANDOMISED = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def status(person, key, at):
    timepoint = services.timepoint_by_key(person.study_id, key)
    return services.state_of(person, timepoint, now=at).status


@pytest.mark.parametrize(("timezone", "opens", "overdue", "closes"), [
    # London: day 0 is 1 March; day 35 is 5 April, after the clocks went forward (BST)
    ("Europe/London", datetime(2026, 4, 4, 23, 0, tzinfo=UTC),
     datetime(2026, 4, 11, 23, 0, tzinfo=UTC), datetime(2026, 4, 26, 23, 0, tzinfo=UTC)),
    # Auckland: day 0 is 2 March; day 35 is 6 April, after daylight saving ended (NZST)
    ("Pacific/Auckland", datetime(2026, 4, 5, 12, 0, tzinfo=UTC),
     datetime(2026, 4, 12, 12, 0, tzinfo=UTC), datetime(2026, 4, 27, 12, 0, tzinfo=UTC)),
])
def test_a_follow_up_window_runs_on_the_participants_local_days(app, timezone, opens,
                                                                 overdue, closes):
    """Week 6 (days 35-56, overdue after 7) opens at local midnight of day 35, is overdue
    from local midnight of day 42 and closes at the end of local day 56."""
    with app.app_context():
        study = make_scheduled_study()
        person = randomised(study, at=RANDOMISED, timezone=timezone)
        assert status(person, "week6", opens - SECOND) == services.UPCOMING
        assert status(person, "week6", opens) == services.OPEN
        assert status(person, "week6", overdue - SECOND) == services.OPEN
        assert status(person, "week6", overdue) == services.OVERDUE
        assert status(person, "week6", closes - SECOND) == services.OVERDUE
        assert status(person, "week6", closes) == services.MISSED
        window = services.state_of(person, services.timepoint_by_key(study.id, "week6"),
                                   now=opens).window
        assert window.last_day == (closes - SECOND).astimezone(window.zone).date()


def test_the_same_instant_is_a_different_day_in_each_zone(app):
    """At one instant week 6 is open for the Auckland participant and not yet for the
    London one (their day 0 differs)."""
    with app.app_context():
        study = make_scheduled_study()
        london = randomised(study, "T-0001", at=RANDOMISED)
        auckland = randomised(study, "T-0002", at=RANDOMISED, timezone="Pacific/Auckland")
        at = datetime(2026, 4, 5, 12, 0, tzinfo=UTC)
        assert status(auckland, "week6", at) == services.OPEN
        assert status(london, "week6", at) == services.OPEN  # London opened 13 hours earlier
        at = datetime(2026, 4, 4, 22, 0, tzinfo=UTC)
        assert status(auckland, "week6", at) == services.UPCOMING
        assert status(london, "week6", at) == services.UPCOMING


def test_the_baseline_opens_at_consent_and_closes_at_randomisation(app):
    with app.app_context():
        study = make_scheduled_study()
        invited = make_participant(study, "T-0009", name=None)
        consent = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # 3 March 10:00 in Auckland
        person = consented(study, at=consent, timezone="Pacific/Auckland")
        assert status(invited, "baseline", consent) == services.UPCOMING
        assert status(person, "baseline", consent - SECOND) == services.UPCOMING
        assert status(person, "baseline", consent) == services.OPEN
        # overdue from local midnight of 10 March (7 days after the local day of consent)
        overdue = datetime(2026, 3, 9, 11, 0, tzinfo=UTC)
        assert status(person, "baseline", overdue - SECOND) == services.OPEN
        assert status(person, "baseline", overdue) == services.OVERDUE
        assert status(person, "week6", overdue) == services.UPCOMING  # not randomised
        person.randomised_at = overdue + timedelta(days=1)
        db.session.commit()
        assert status(person, "baseline", overdue + timedelta(days=1)) == services.MISSED


def test_completed_and_withdrawn(app):
    with app.app_context():
        study = make_scheduled_study()
        person = consented(study, at=RANDOMISED)
        baseline = services.timepoint_by_key(study.id, "baseline")
        for name in baseline.instruments:
            response = services.start(person, baseline, name, now=RANDOMISED)
            for number, value in answers_for(name).items():
                services.save_answer(response, person, number, value, now=RANDOMISED)
            services.submit(response, person, now=RANDOMISED)
        db.session.commit()
        assert status(person, "baseline", RANDOMISED) == services.COMPLETED
        other = consented(study, "T-0002", at=RANDOMISED)
        path.withdraw(other, "study", actor=make_staff(Role.RESEARCHER), reason="Moved away")
        db.session.commit()
        assert status(other, "baseline", RANDOMISED + timedelta(days=9)) == services.WITHDRAWN
        assert services.due_for(other, now=RANDOMISED + timedelta(days=2)) == []


def test_due_for_lists_open_questionnaires_in_order_with_progress(app):
    with app.app_context():
        study = make_scheduled_study()
        person = consented(study, at=RANDOMISED)
        baseline = services.timepoint_by_key(study.id, "baseline")
        response = services.start(person, baseline, "ucla20", now=RANDOMISED)
        services.save_answer(response, person, 1, 2, now=RANDOMISED)
        db.session.commit()
        due = services.due_for(person, now=RANDOMISED + timedelta(hours=1))
        assert [(q.timepoint.key, q.instrument.id, q.answered, q.status) for q in due] == [
            ("baseline", "ucla20", 1, "open"), ("baseline", "mspss", 0, "open")]
        assert due[0].response_id == response.id and due[0].items == 20
        assert services.due_for(person, now=RANDOMISED - timedelta(hours=1)) == []


def test_completion_by_timepoint_counts_by_arm(app):
    """Three randomised people 40 days ago: one did week 6, two have not; one more
    consented but no baseline. Counts by status and by arm."""
    with app.app_context():
        study = make_scheduled_study()
        now = datetime(2026, 4, 15, 12, 0, tzinfo=UTC)
        start = now - timedelta(days=40)
        done = randomised(study, "T-0001", at=start, arm="guided")
        randomised(study, "T-0002", at=start, arm="guided")
        randomised(study, "T-0003", at=start - timedelta(days=10), arm="self")
        consented(study, "T-0004", at=now - timedelta(days=1))
        week6 = services.timepoint_by_key(study.id, "week6")
        response = services.start(done, week6, "ucla3", now=now)
        for number, value in answers_for("ucla3").items():
            services.save_answer(response, done, number, value, now=now)
        services.submit(response, done, now=now)
        db.session.commit()
        rows = {row.key: row for row in completion.completion_by_timepoint(study, now=now)}
        assert [row.key for row in completion.completion_by_timepoint(study, now=now)] == [
            "baseline", "week6", "week12"]
        w6 = rows["week6"]
        assert (w6.due, w6.completed, w6.open, w6.overdue, w6.missed, w6.upcoming) == \
            (3, 1, 1, 1, 0, 1)
        assert w6.rate == pytest.approx(1 / 3)
        arms = {arm.code: arm.id for arm in study.arms}
        assert (w6.by_arm[arms["guided"]].completed, w6.by_arm[arms["guided"]].due) == (1, 2)
        assert (w6.by_arm[arms["self"]].overdue, w6.by_arm[None].upcoming) == (1, 1)
        # the three randomised people never filled the baseline here: missed
        assert (rows["baseline"].missed, rows["baseline"].open) == (3, 1)
        assert rows["week12"].is_post_treatment and rows["week12"].due == 0
        counts = completion.assessments_done([done.id, 999], now=now)
        assert counts == {done.id: (1, 2), 999: (0, 0)}


def test_no_schedule_means_nothing_due(app):
    with app.app_context():
        person = make_participant()
        study = db.session.get(Study, person.study_id)
        assert services.due_for(person) == []
        assert completion.post_treatment_key(study) is None
        assert completion.completion_by_timepoint(study) == []
