"""The demo study's assessment schedule and made-up questionnaire answers.

``seed_demo_schedule(study)`` gives the demo study its timepoints (baseline, week 6,
week 12 post-treatment with SUS and the acceptability questionnaire, week 24 follow-up),
switches on randomisation on baseline completion (so a participant enrolled in the demo
is randomised as soon as they finish the baseline questionnaires), and fills in answers
for the demo participants who are past a timepoint: every randomised participant did
the baseline before randomisation; most of those whose week-6 window has opened did
week 6. Answers are drawn around a per-person level (lonely people, less so later, a
little more in the guided arm) and scored by ``outcomes.scoring``, like real ones.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select

from core.clock import utcnow
from core.events import record_event
from core.extensions import db
from core.models import Participant
from outcomes import instruments, scoring
from outcomes.assessments import services
from outcomes.assessments.models import AssessmentResponse, ItemAnswer, Timepoint
from outcomes.assessments.schedule import check_schedule, write_schedule
from outcomes.models import Arm, Study

FOLLOW_UP = ["ucla20", "mspss", "lsns6"]
DEMO_SCHEDULE = [
    {"key": "baseline", "label": "Baseline", "baseline": True, "instruments": list(FOLLOW_UP),
     "overdue_after": 7, "reminders": [0, 3, 7], "sms_reminders": [3, 7]},
    {"key": "week6", "label": "Week 6", "instruments": list(FOLLOW_UP),
     "opens": 35, "closes": 56, "overdue_after": 7, "reminders": [0, 3, 7],
     "sms_reminders": [0, 7]},
    {"key": "week12", "label": "Week 12 (end of the programme)", "post_treatment": True,
     "instruments": [*FOLLOW_UP, "sus", "acceptability"],
     "opens": 77, "closes": 98, "overdue_after": 7, "reminders": [0, 3, 7],
     "sms_reminders": [0, 7]},
    {"key": "week24", "label": "Week 24 (follow-up)", "instruments": list(FOLLOW_UP),
     "opens": 161, "closes": 189, "overdue_after": 7, "reminders": [0, 3, 7],
     "sms_reminders": [0, 7]},
]
#: share of people whose week-6 window has opened who have filled it in
WEEK6_DONE = 0.7


def seed_demo_schedule(study: Study, *, rng: random.Random | None = None,
                       now: datetime | None = None) -> None:
    """Give the demo study its schedule and its participants' past answers. Flushes."""
    problems = check_schedule(DEMO_SCHEDULE)
    if problems:  # pragma: no cover - the constant above is checked by the tests
        raise ValueError(problems)
    rng = rng or random.Random(2026)
    now = now or utcnow()
    timepoints = {tp.key: tp for tp in write_schedule(study, DEMO_SCHEDULE)}
    study.randomise_on_baseline = True
    guided = {arm.id for arm in db.session.scalars(select(Arm).where(
        Arm.study_id == study.id, Arm.code == "guided"))}
    people = list(db.session.scalars(select(Participant).where(
        Participant.study_id == study.id, Participant.randomised_at.is_not(None))
        .order_by(Participant.id)))
    facts = {f.id: f for f in services.facts_for(people)}
    for person in people:
        _seed_person(person, facts[person.id], timepoints, rng, now,
                     guided=person.arm_id in guided)
    db.session.flush()


def _seed_person(person: Participant, facts: services.Facts, timepoints: dict[str, Timepoint],
                 rng: random.Random, now: datetime, *, guided: bool) -> None:
    level = {"lonely": rng.uniform(2.4, 3.5), "support": rng.uniform(2.5, 5.5),
             "network": rng.uniform(1.0, 3.0)}
    consented = facts.consented_at or person.enrolled_at
    at = min(consented + timedelta(hours=rng.randint(1, 20)),
             person.randomised_at - timedelta(minutes=30))
    _fill(person, timepoints["baseline"], level, rng, at)
    window = services.window_for(timepoints["week6"], facts)
    if window.opens_at is None or window.opens_at > now or rng.random() > WEEK6_DONE:
        return
    better = rng.uniform(0.2, 0.6) if guided else rng.uniform(0.0, 0.3)
    later = {"lonely": level["lonely"] - better, "support": level["support"] + better / 2,
             "network": level["network"] + better / 2}
    at = window.opens_at + timedelta(days=rng.randint(0, 5), hours=rng.randint(8, 20))
    _fill(person, timepoints["week6"], later, rng, min(at, now - timedelta(hours=1)))


def _answer(instrument_id: str, reverse: bool, level: dict[str, float],
            rng: random.Random) -> int:
    instrument = instruments.get(instrument_id)
    low, high = instrument.min_value, instrument.max_value
    if instrument_id in ("ucla20", "uls8", "ucla3"):
        centre = low + high - level["lonely"] if reverse else level["lonely"]
    elif instrument_id == "mspss":
        centre = level["support"]
    elif instrument_id == "lsns6":
        centre = level["network"]
    else:  # usability and acceptability: mostly positive
        centre = (low + high) / 2 + 0.8 * (-1 if reverse else 1)
    return max(low, min(high, round(rng.gauss(centre, 0.7))))


def _fill(person: Participant, timepoint: Timepoint, level: dict[str, float],
          rng: random.Random, at: datetime) -> None:
    """A submitted response per instrument, scored by the engine, with its events."""
    for offset, instrument_id in enumerate(timepoint.instruments):
        instrument = instruments.get(instrument_id)
        answers = {item.number: _answer(instrument_id, item.reverse, level, rng)
                   for item in instrument.items}
        result = scoring.score(instrument, answers)
        done = at + timedelta(minutes=4 * (offset + 1))
        response = AssessmentResponse(
            participant_id=person.id, timepoint_id=timepoint.id, instrument=instrument_id,
            started_at=done - timedelta(minutes=4), updated_at=done, submitted_at=done,
            instrument_version=result.instrument_version, total=result.total,
            extra_totals=dict(result.extra_totals), subscales=dict(result.subscales),
            labels=dict(result.labels), missing=result.missing, score_status=result.status,
            scoring_rule=result.scoring_rule, missing_rule=result.missing_rule)
        response.answers = [ItemAnswer(item=number, value=value, answered_at=done)
                            for number, value in answers.items()]
        db.session.add(response)
        record_event(person, "assessment_completed", at=done, timepoint=timepoint.key,
                     instrument=instrument_id)
    record_event(person, "timepoint_completed",
                 at=at + timedelta(minutes=4 * len(timepoint.instruments)),
                 timepoint=timepoint.key)
