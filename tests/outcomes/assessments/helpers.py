"""Helpers for the assessment tests: a study with a schedule, participants at a step,
and answering through the pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.clock import set_time, utcnow
from core.extensions import db
from core.models import ConsentRecord, Participant
from outcomes import instruments
from outcomes.assessments.schedule import apply_schedule
from outcomes.models import Study
from tests.factories import make_participant, make_study

SCHEDULE = [
    {"key": "baseline", "label": "Baseline", "baseline": True,
     "instruments": ["ucla20", "mspss"], "overdue_after": 7, "reminders": [0, 3, 7],
     "sms_reminders": [3, 7],
     "strata": {"baseline_loneliness": {"instrument": "ucla20", "score": "total",
                                        "cut_off": 50, "at_or_above": "high",
                                        "below": "low"}}},
    {"key": "week6", "label": "Week 6", "instruments": ["ucla3"], "opens": 35, "closes": 56,
     "overdue_after": 7, "reminders": [0, 3, 7], "sms_reminders": [0, 7]},
    {"key": "week12", "label": "Week 12", "post_treatment": True,
     "instruments": ["ucla3", "sus"], "opens": 77, "closes": 98, "overdue_after": 7,
     "reminders": [0], "sms_reminders": []},
]
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_scheduled_study(schedule: list | None = None, **study) -> Study:
    study.setdefault("sites", ["North", "South"])
    study.setdefault("strata", ["site", "baseline_loneliness"])
    study.setdefault("stratum_levels", {"baseline_loneliness": ["high", "low"]})
    made = make_study(**study)
    data = [dict(entry) for entry in (schedule or SCHEDULE)]
    if "baseline_loneliness" not in made.strata:  # its rule would be refused
        data = [{k: v for k, v in entry.items() if k != "strata"} for entry in data]
    apply_schedule(made, data, actor=None)
    db.session.commit()
    return made


def consented(study: Study, code: str = "T-0001", *, at: datetime | None = None,
              timezone: str = "Europe/London", site: str = "North",
              name: str | None = None, phone: str | None = None) -> Participant:
    """A participant who consented at ``at`` (default: now)."""
    person = make_participant(study, code, name=name or f"Person {code[-4:]}")
    person.timezone, person.site = timezone, site
    if phone:
        person.phone, person.sms_consent = phone, True
    record = db.session.scalar(db.select(ConsentRecord).where(
        ConsentRecord.user_id == person.user_id))
    record.agreed_at = at or utcnow()
    db.session.commit()
    return person


def randomised(study: Study, code: str = "T-0001", *, at: datetime, arm: str = "guided",
               **kwargs) -> Participant:
    """A participant randomised (by hand, as the factories do) at ``at``."""
    person = consented(study, code, at=at - timedelta(days=2), **kwargs)
    person.arm_id = next(a.id for a in study.arms if a.code == arm)
    person.status, person.randomised_at = "randomised", at
    db.session.commit()
    return person


def answers_for(instrument_id: str, value: int | None = None) -> dict[int, int]:
    instrument = instruments.get(instrument_id)
    return {item.number: value if value is not None else instrument.min_value
            for item in instrument.items}


def freeze(at: datetime) -> datetime:
    set_time(at)
    return at
