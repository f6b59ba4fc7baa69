"""What every export table of one study needs: the study, the moment of the snapshot, the
pseudonym of each participant and the moment each was randomised (dates leave as days
since randomisation). Read-only, except that the pseudonym secret is created (flushed) on
the first export of a study."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import String, select, type_coerce

from core.clock import utcnow
from core.extensions import db
from core.models import Participant
from outcomes.exports import pseudonyms
from outcomes.models import Arm, Study
from outcomes.randomisation import assigned_strata

SECONDS_PER_DAY = 86400.0
#: rows read from the driver at a time by :func:`read_frame`
FETCH_ROWS = 200_000


@dataclass(frozen=True)
class Person:
    id: int
    user_id: int
    arm: str
    site: str
    status: str
    randomised_at: datetime | None


@dataclass
class Context:
    study: Study
    now: datetime
    key: bytes
    people: dict[int, Person] = field(default_factory=dict)
    #: participant id -> {stratum factor: level}, from the allocation slot taken
    strata: dict[int, dict[str, str]] = field(default_factory=dict)
    _names: dict[int, str] = field(default_factory=dict)
    #: participant id -> whole-trial adherence figures, worked out on first use
    _adherence: dict[int, Any] | None = None

    def pseudonym(self, participant_id: int) -> str:
        name = self._names.get(participant_id)
        if name is None:
            name = self._names[participant_id] = pseudonyms.pseudonym(self.key, participant_id)
        return name

    def day(self, participant_id: int, at: datetime | None) -> float:
        """Days (fractional) from the participant's randomisation to ``at``; NaN when either
        is unknown."""
        person = self.people.get(participant_id)
        if at is None or person is None or person.randomised_at is None:
            return float("nan")
        seconds = (_aware(at) - _aware(person.randomised_at)).total_seconds()
        return round(seconds / SECONDS_PER_DAY, 4)

    def adherence_figures(self) -> dict[int, Any]:
        """Participant id -> whole-trial adherence figures as of ``now`` (the default
        stopped-using days), worked out once per snapshot: the ``adherence`` table and the
        CONSORT flow both read them."""
        if self._adherence is None:
            from outcomes import adherence

            self._adherence = adherence.for_study(self.study, now=self.now)
        return self._adherence

    def pseudonyms(self, participant_ids: pd.Series) -> pd.Series:
        """The pseudonym of each id of a column (each distinct id is hashed once)."""
        names = {pid: self.pseudonym(int(pid)) for pid in participant_ids.unique()}
        return participant_ids.map(names).astype("str")

    def days(self, participant_ids: pd.Series, ats: pd.Series) -> pd.Series:
        """:meth:`day` for whole columns at once (the large tables)."""
        starts = participant_ids.map(
            {pid: p.randomised_at for pid, p in self.people.items()
             if p.randomised_at is not None})
        seconds = (_utc(ats) - _utc(starts)).dt.total_seconds()
        return (seconds / SECONDS_PER_DAY).round(4).astype("float64")


def _utc(values: pd.Series) -> pd.Series:
    """Aware UTC timestamps from datetimes (naive ones are UTC, as stored) or, for columns
    read raw from SQLite, ISO strings."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values
    return pd.to_datetime(values, utc=True, format="ISO8601")


def read_frame(query: Any, columns: list[str]) -> pd.DataFrame:
    """The rows of ``query`` as a DataFrame, column-wise (the large tables).

    The statement is compiled by SQLAlchemy but run on the session's own DBAPI cursor (same
    transaction), so the driver's tuples go straight to pandas without a ``Row`` object and
    result processing per row: a third of the time of the largest tables. Only for queries
    whose columns need no result processing (numbers, text, :func:`raw_time`) and whose
    parameters need no bind processing (numbers, text)."""
    connection = db.session.connection()
    compiled = query.compile(dialect=connection.dialect,
                             compile_kwargs={"render_postcompile": True})  # IN (...) lists
    params = compiled.construct_params()
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup or ())
    cursor = connection.connection.cursor()
    parts = []
    try:
        cursor.execute(str(compiled), params)
        # in blocks, so that only one block of driver tuples is alive at a time
        while rows := cursor.fetchmany(FETCH_ROWS):
            parts.append(pd.DataFrame.from_records(rows, columns=columns))
    finally:
        cursor.close()
    if not parts:
        return pd.DataFrame.from_records([], columns=columns)
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def raw_time(column: Any) -> Any:
    """A timestamp column read as the driver gives it (no per-row conversion): ISO text on
    SQLite, aware datetimes on PostgreSQL; :func:`_utc` reads both."""
    return type_coerce(column, String)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def for_study(study: Study, *, now: datetime | None = None) -> Context:
    """Load the participants of ``study`` (one query) and their strata (one more)."""
    ctx = Context(study, now or utcnow(), pseudonyms.key_for(study))
    rows = db.session.execute(
        select(Participant.id, Participant.user_id, Arm.code, Participant.site,
               Participant.status, Participant.randomised_at)
        .outerjoin(Arm, Arm.id == Participant.arm_id)
        .where(Participant.study_id == study.id).order_by(Participant.id))
    for pid, user_id, arm, site, status, randomised_at in rows:
        ctx.people[pid] = Person(pid, user_id, arm or "", site or "", status, randomised_at)
    ctx.strata = assigned_strata(study)
    return ctx
