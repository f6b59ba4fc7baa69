"""How far a study's participants are with their questionnaires: per timepoint, how many
are due, completed, open, overdue, missed, upcoming or withdrawn (overall and by arm), each
participant's timepoints completed and due, and which timepoint is post-treatment. The
contract other packages read (``outcomes.adherence`` through ``optional``, the trial
dashboard); the statuses themselves are ``outcomes.assessments.services``'. Read-only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from core.clock import utcnow
from core.extensions import db
from core.models import Participant
from outcomes.assessments.models import Timepoint
from outcomes.assessments.schedule import timepoints_of
from outcomes.assessments.services import COMPLETED, OPENED, facts_for, statuses
from outcomes.models import Study


@dataclass(kw_only=True)
class TimepointCounts:
    #: opened by now (open + overdue + missed + completed)
    due: int = 0
    completed: int = 0
    open: int = 0
    overdue: int = 0
    missed: int = 0
    upcoming: int = 0
    #: withdrew from the study without completing it (not counted as due)
    withdrawn: int = 0

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)
        if status in OPENED:
            self.due += 1

    @property
    def rate(self) -> float | None:
        """Completed / due, or None when nobody is due yet."""
        return self.completed / self.due if self.due else None


@dataclass(kw_only=True)
class TimepointCompletion(TimepointCounts):
    key: str
    label: str
    is_baseline: bool = False
    is_post_treatment: bool = False
    #: arm id (None: not randomised) -> counts
    by_arm: dict[int | None, TimepointCounts] = field(default_factory=dict)


def _study_participants(study_id: int) -> list[Participant]:
    return list(db.session.scalars(select(Participant).where(Participant.study_id == study_id)
                                   .order_by(Participant.id)))


def completion_by_timepoint(study: Study, *, now: datetime | None = None
                            ) -> list[TimepointCompletion]:
    """For each timepoint: how many participants are due, completed, open, overdue,
    missed, upcoming or withdrawn, overall and by arm. Three queries in all."""
    now = now or utcnow()
    timepoints = timepoints_of(study)
    facts = facts_for(_study_participants(study.id))
    found = statuses(timepoints, facts, now=now)
    result = []
    for timepoint in timepoints:
        row = TimepointCompletion(key=timepoint.key, label=timepoint.label,
                                  is_baseline=timepoint.is_baseline,
                                  is_post_treatment=timepoint.is_post_treatment)
        for person in facts:
            status = found[(person.id, timepoint.id)][0]
            row.add(status)
            row.by_arm.setdefault(person.arm_id, TimepointCounts()).add(status)
        result.append(row)
    return result


def assessments_done(participant_ids: Iterable[int], *, now: datetime | None = None
                     ) -> dict[int, tuple[int, int]]:
    """Participant id -> (timepoints completed, timepoints due so far). A timepoint is
    due once it has opened for them (see the module docstring)."""
    ids = list(participant_ids)
    if not ids:
        return {}
    now = now or utcnow()
    people = list(db.session.scalars(select(Participant).where(Participant.id.in_(ids))))
    by_study: dict[int, list[Participant]] = defaultdict(list)
    for person in people:
        by_study[person.study_id].append(person)
    result = {pid: (0, 0) for pid in ids}
    for study_id, members in by_study.items():
        found = statuses(timepoints_of(study_id), facts_for(members), now=now)
        for (pid, _), (status, _) in found.items():
            completed, due = result[pid]
            result[pid] = (completed + (status == COMPLETED), due + (status in OPENED))
    return result


def post_treatment_key(study: Study) -> str | None:
    """The key of the post-treatment timepoint (missing it = study dropout), or None."""
    return db.session.scalar(select(Timepoint.key).where(Timepoint.study_id == study.id,
                                                         Timepoint.is_post_treatment))
