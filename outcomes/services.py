"""Study look-ups, arm features and the researcher dashboard's counts.

Read-only; enrolment itself is ``core.accounts.enrol_participant``, the participant
path is ``outcomes.participants`` and allocation is ``outcomes.randomisation``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from outcomes import participants as path
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
    """Which platform features a participant has: their arm's, less the intervention once
    they have withdrawn from it, and none once they have withdrawn from the study (all
    for staff and the unrandomised)."""
    participant = user.participant if user.is_authenticated else None
    if participant is not None and participant.status == path.WITHDRAWN:
        return {name: False for name in FEATURES}
    if participant is None or participant.arm_id is None:
        return {name: True for name in FEATURES}
    arm = db.session.get(Arm, participant.arm_id)
    features = {name: arm.has(name) for name in FEATURES}
    if path.has_withdrawn(participant, "intervention"):
        features.update({name: False for name in path.INTERVENTION_FEATURES})
    return features


@dataclass
class Dashboard:
    study: Study
    #: stored statuses, plus lost_to_follow_up (computed, and also counted in its status)
    by_status: dict[str, int]
    by_arm_status: dict[tuple[int | None, str], int]
    arms: list[Arm]
    total: int
    #: (withdrawal kind, arm id) -> participants
    withdrawals: dict[tuple[str, int | None], int] = field(default_factory=dict)
    lost_after_days: int = path.DEFAULT_LOST_AFTER_DAYS


def dashboard(study: Study, *, now: datetime | None = None,
              lost_after_days: int = path.DEFAULT_LOST_AFTER_DAYS) -> Dashboard:
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
    total = sum(by_status.values())
    lost = path.lost_to_follow_up(study, now=now or utcnow(), days=lost_after_days)
    for person in lost:
        by_status[path.LOST] += 1
        key = (person.arm_id, path.LOST)
        by_arm_status[key] = by_arm_status.get(key, 0) + 1
    return Dashboard(study, dict(by_status), by_arm_status, list(study.arms), total,
                     path.withdrawal_counts(study), lost_after_days)


def lost_to_follow_up_ids(study: Study, *, now: datetime | None = None) -> list[int]:
    return [person.participant_id
            for person in path.lost_to_follow_up(study, now=now or utcnow())]
