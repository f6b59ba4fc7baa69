"""Study look-ups, arm features and the researcher dashboard's counts.

Read-only; enrolment itself is ``core.accounts.enrol_participant``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select

from core.extensions import db
from core.models import Participant, User
from outcomes.models import FEATURES, Arm, Study

#: the participant path, in order, as the dashboard shows it
STATUSES = ["invited", "consented", "baseline_done", "randomised", "active", "completed",
            "withdrawn", "lost_to_follow_up"]


class NoStudy(LookupError):
    pass


def current_study() -> Study:
    study = db.session.scalar(select(Study).order_by(Study.id).limit(1))
    if study is None:
        raise NoStudy("No study is set up yet. Run `flask demo seed` or create one.")
    return study


def features_for(user: User) -> dict[str, bool]:
    """Which platform features a participant's arm has (all for staff and the unrandomised)."""
    participant = user.participant if user.is_authenticated else None
    if participant is None or participant.arm_id is None:
        return {name: True for name in FEATURES}
    arm = db.session.get(Arm, participant.arm_id)
    return {name: arm.has(name) for name in FEATURES}


@dataclass
class Dashboard:
    study: Study
    by_status: dict[str, int]
    by_arm_status: dict[tuple[int | None, str], int]
    arms: list[Arm]
    total: int


def dashboard(study: Study) -> Dashboard:
    rows = db.session.execute(
        select(Participant.arm_id, Participant.status, func.count(Participant.id))
        .where(Participant.study_id == study.id)
        .group_by(Participant.arm_id, Participant.status)
    ).all()
    by_status: Counter[str] = Counter()
    by_arm_status: dict[tuple[int | None, str], int] = {}
    for arm_id, status, count in rows:
        by_status[status] += count
        by_arm_status[(arm_id, status)] = count
    return Dashboard(study, dict(by_status), by_arm_status, list(study.arms),
                     sum(by_status.values()))
