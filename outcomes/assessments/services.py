"""Assessment windows and statuses, answering and submitting questionnaires (the
completion counts other packages read are in ``outcomes.assessments.completion``).

**Windows.** The baseline opens when the participant consents and closes when they are
randomised. Every other timepoint is counted in the participant's own calendar days
(their IANA time zone) from the local day of randomisation (day 0): it opens at the
start of local day ``opens``, is overdue from the start of local day
``opens + overdue_after`` and closes at the end of local day ``closes``. Status of a
participant at a timepoint, in this order: ``completed`` (every instrument submitted),
``withdrawn`` (withdrew from the study and had not completed it), ``upcoming`` (not open
yet, or not randomised yet), ``missed`` (closed), ``overdue``, else ``open`` (due).

**Answers** are saved one item at a time (:func:`save_answer`); :func:`submit` refuses
while any item is unanswered, naming each one, then stores the score of
``outcomes.scoring.score`` with the instrument version and rules. Completing the baseline
moves the participant to ``baseline_done`` and, when the study says so, randomises them
(``outcomes.assessments.strata``).

Transaction contract: the functions that change something flush and leave the commit to
their caller; the others only read.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, bindparam, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from core.clock import utcnow
from core.events import record_event, register_kind
from core.extensions import db
from core.models import ConsentRecord, Participant
from outcomes import instruments, scoring
from outcomes import participants as path
from outcomes.assessments.models import AssessmentResponse, ItemAnswer, Timepoint
from outcomes.instruments import Instrument

register_kind("assessment_completed", "Filled in a questionnaire")
register_kind("timepoint_completed", "Finished a set of questionnaires")

UPCOMING, OPEN, OVERDUE, MISSED, COMPLETED, WITHDRAWN = (
    "upcoming", "open", "overdue", "missed", "completed", "withdrawn")
STATUSES = (UPCOMING, OPEN, OVERDUE, MISSED, COMPLETED, WITHDRAWN)
#: statuses in which questionnaires can be filled
FILLABLE = (OPEN, OVERDUE)
#: statuses of a timepoint that has opened, so counts as due
OPENED = (OPEN, OVERDUE, MISSED, COMPLETED)


class AssessmentError(ValueError):
    """A questionnaire action that cannot be done; ``item`` is the item at fault."""

    def __init__(self, message: str, item: int | None = None) -> None:
        super().__init__(message)
        self.item = item


class MissingAnswers(AssessmentError):
    """Submit refused: ``items`` are the unanswered item numbers."""

    def __init__(self, items: list[int]) -> None:
        self.items = items
        super().__init__(" ".join(f"Question {n} is not answered yet." for n in items),
                         items[0])


# --------------------------------------------------------------------------- windows

def zone_of(participant: Participant) -> ZoneInfo:
    try:
        return ZoneInfo(participant.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant the local day ``day`` begins in ``zone``."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """When a timepoint opens, becomes overdue and closes for one participant (UTC).
    ``opens_at`` None: not known yet; ``closes_at`` None: open-ended (baseline before
    randomisation)."""

    opens_at: datetime | None = None
    overdue_at: datetime | None = None
    closes_at: datetime | None = None
    #: the local day it opens, from which reminder days count
    open_day: date | None = None
    zone: ZoneInfo = field(default=ZoneInfo("UTC"))

    @property
    def last_day(self) -> date | None:
        """The participant's last local day to fill it in (None: no closing yet)."""
        if self.closes_at is None:
            return None
        return (self.closes_at - timedelta(microseconds=1)).astimezone(self.zone).date()

    @property
    def first_day(self) -> date | None:
        return self.open_day

    def reminder_at(self, days: int) -> datetime | None:
        """When the reminder ``days`` after opening is due: the start of that local day,
        but never before opening."""
        if self.opens_at is None or self.open_day is None:
            return None
        return max(self.opens_at, day_start(self.open_day + timedelta(days=days), self.zone))


@dataclass(frozen=True)
class Facts:
    """What windows are computed from, for one participant."""

    id: int
    user_id: int
    arm_id: int | None
    status: str
    timezone: str | None
    randomised_at: datetime | None
    consented_at: datetime | None


def window_for(timepoint: Timepoint, facts: Facts) -> Window:
    zone = zone_of(facts)  # type: ignore[arg-type]
    if timepoint.is_baseline:
        if facts.consented_at is None:
            return Window(zone=zone)
        opened = facts.consented_at.astimezone(zone).date()
        overdue = day_start(opened + timedelta(days=timepoint.overdue_after_days), zone)
        return Window(facts.consented_at, max(overdue, facts.consented_at), facts.randomised_at,
                      opened, zone)
    if facts.randomised_at is None:
        return Window(zone=zone)
    day0 = facts.randomised_at.astimezone(zone).date()
    opened = day0 + timedelta(days=timepoint.opens_day or 0)
    return Window(day_start(opened, zone),
                  day_start(opened + timedelta(days=timepoint.overdue_after_days), zone),
                  day_start(day0 + timedelta(days=(timepoint.closes_day or 0) + 1), zone),
                  opened, zone)


def status_of(window: Window, *, completed: bool, withdrawn: bool, now: datetime) -> str:
    if completed:
        return COMPLETED
    if withdrawn:
        return WITHDRAWN
    if window.opens_at is None or now < window.opens_at:
        return UPCOMING
    if window.closes_at is not None and now >= window.closes_at:
        return MISSED
    if window.overdue_at is not None and now >= window.overdue_at:
        return OVERDUE
    return OPEN


# --------------------------------------------------------------------------- bulk facts

def facts_for(participants: Iterable[Participant]) -> list[Facts]:
    """Each participant's facts, with their consent time (one query)."""
    people = list(participants)
    consented = consent_times([p.user_id for p in people])
    return [_facts(p, consented.get(p.user_id)) for p in people]


def _facts(p: Participant, consented_at: datetime | None) -> Facts:
    if p.status == "invited":
        consented_at = None
    elif consented_at is None:  # consented, but the record predates consent records
        consented_at = p.enrolled_at
    return Facts(p.id, p.user_id, p.arm_id, p.status, p.timezone, p.randomised_at, consented_at)


def consent_times(user_ids: list[int]) -> dict[int, datetime]:
    if not user_ids:
        return {}
    return dict(db.session.execute(
        select(ConsentRecord.user_id, func.min(ConsentRecord.agreed_at))
        .where(ConsentRecord.user_id.in_(user_ids)).group_by(ConsentRecord.user_id)).all())


def submitted_instruments(participant_ids: list[int]) -> dict[tuple[int, int], set[str]]:
    """(participant id, timepoint id) -> the instruments they have submitted there."""
    if not participant_ids:
        return {}
    found: dict[tuple[int, int], set[str]] = defaultdict(set)
    for pid, tid, instrument in db.session.execute(
            select(AssessmentResponse.participant_id, AssessmentResponse.timepoint_id,
                   AssessmentResponse.instrument)
            .where(AssessmentResponse.participant_id.in_(participant_ids),
                   AssessmentResponse.submitted_at.is_not(None))):
        found[(pid, tid)].add(instrument)
    return found


def is_complete(timepoint: Timepoint, submitted: set[str]) -> bool:
    return set(timepoint.instruments) <= submitted


def statuses(timepoints: list[Timepoint], facts: list[Facts], *, now: datetime
             ) -> dict[tuple[int, int], tuple[str, Window]]:
    """(participant id, timepoint id) -> (status, window), in one query."""
    return _statuses(timepoints, facts, submitted_instruments([f.id for f in facts]), now=now)


def _statuses(timepoints: list[Timepoint], facts: list[Facts],
              submitted: dict[tuple[int, int], set[str]], *, now: datetime
              ) -> dict[tuple[int, int], tuple[str, Window]]:
    result = {}
    for person in facts:
        for timepoint in timepoints:
            window = window_for(timepoint, person)
            done = is_complete(timepoint, submitted.get((person.id, timepoint.id), set()))
            result[(person.id, timepoint.id)] = (
                status_of(window, completed=done, withdrawn=person.status == path.WITHDRAWN,
                          now=now), window)
    return result


# --------------------------------------------------------------------------- one participant

@dataclass(frozen=True)
class TimepointState:
    timepoint: Timepoint
    status: str
    window: Window


@dataclass(frozen=True)
class DueQuestionnaire:
    """One questionnaire the participant can fill now."""

    timepoint: Timepoint
    instrument: Instrument
    status: str
    window: Window
    response_id: int | None
    answered: int

    @property
    def items(self) -> int:
        return len(self.instrument.items)


def schedule_for(participant: Participant, *, now: datetime | None = None
                 ) -> list[TimepointState]:
    """Every timepoint of the participant's study with their status there (one query)."""
    return _own_schedule(participant, now or utcnow())[0]


def due_for(participant: Participant, *, now: datetime | None = None) -> list[DueQuestionnaire]:
    """The questionnaires the participant can fill now (open or overdue timepoints, not
    yet submitted), in schedule order. None for anyone who may not be contacted.
    One query (none for anyone who may not be contacted)."""
    if not path.may_contact(participant) or participant.status == "invited":
        return []
    states, responses = _own_schedule(participant, now or utcnow())
    due = []
    for state in states:
        if state.status not in FILLABLE:
            continue
        for name in state.timepoint.instruments:
            response = responses.get((state.timepoint.id, name))
            if response is not None and response.submitted_at is not None:
                continue
            due.append(DueQuestionnaire(
                state.timepoint, instruments.get(name), state.status, state.window,
                response.id if response else None, response.answered if response else 0))
    return due


@dataclass(frozen=True)
class _OwnResponse:
    id: int
    submitted_at: datetime | None
    #: items answered so far (counted only while not submitted)
    answered: int


def _own_schedule(participant: Participant, now: datetime
                  ) -> tuple[list[TimepointState], dict[tuple[int, str], _OwnResponse]]:
    """The participant's timepoints with their statuses, and their responses by
    (timepoint id, instrument), in one query: the timepoints outer-joined to the
    responses, with the consent time and each open response's answer count beside."""
    rows = db.session.execute(_own_schedule_query(), {
        "participant_id": participant.id, "user_id": participant.user_id,
        "study_id": participant.study_id}).all()
    timepoints: dict[int, Timepoint] = {}
    responses: dict[tuple[int, str], _OwnResponse] = {}
    submitted: dict[tuple[int, int], set[str]] = defaultdict(set)
    for timepoint, _consent, rid, instrument, submitted_at, count in rows:
        timepoints.setdefault(timepoint.id, timepoint)
        if rid is None:
            continue
        responses[(timepoint.id, instrument)] = _OwnResponse(rid, submitted_at, int(count or 0))
        if submitted_at is not None:
            submitted[(participant.id, timepoint.id)].add(instrument)
    facts = _facts(participant, rows[0][1] if rows else None)
    found = _statuses(list(timepoints.values()), [facts], submitted, now=now)
    return ([TimepointState(tp, *found[(participant.id, tp.id)]) for tp in timepoints.values()],
            responses)


@functools.cache
def _own_schedule_query() -> Any:
    """Built once and reused with new parameters (no statement building or cache-key
    work per request)."""
    consent = (select(func.min(ConsentRecord.agreed_at))
               .where(ConsentRecord.user_id == bindparam("user_id")).scalar_subquery())
    answered = (select(func.count(ItemAnswer.id))
                .where(ItemAnswer.response_id == AssessmentResponse.id).scalar_subquery())
    return (select(Timepoint, consent, AssessmentResponse.id, AssessmentResponse.instrument,
                   AssessmentResponse.submitted_at,
                   case((AssessmentResponse.submitted_at.is_(None), answered), else_=0))
            .outerjoin(AssessmentResponse, and_(
                AssessmentResponse.timepoint_id == Timepoint.id,
                AssessmentResponse.participant_id == bindparam("participant_id")))
            .where(Timepoint.study_id == bindparam("study_id"))
            .order_by(Timepoint.position, Timepoint.id))


def _answer_counts(response_ids: list[int]) -> dict[int, int]:
    if not response_ids:
        return {}
    return dict(db.session.execute(
        select(ItemAnswer.response_id, func.count(ItemAnswer.id))
        .where(ItemAnswer.response_id.in_(response_ids)).group_by(ItemAnswer.response_id)).all())


def timepoint_by_key(study_id: int, key: str) -> Timepoint | None:
    return db.session.scalar(select(Timepoint).where(Timepoint.study_id == study_id,
                                                     Timepoint.key == key))


def state_of(participant: Participant, timepoint: Timepoint, *,
             now: datetime | None = None) -> TimepointState:
    found = statuses([timepoint], facts_for([participant]), now=now or utcnow())
    return TimepointState(timepoint, *found[(participant.id, timepoint.id)])


# --------------------------------------------------------------------------- answering

def _require_fillable(participant: Participant, timepoint: Timepoint, now: datetime) -> None:
    if not path.may_contact(participant):
        raise AssessmentError("You have left the study, so there are no questionnaires to "
                              "fill in. Thank you for your help.")
    state = state_of(participant, timepoint, now=now)
    if state.status == UPCOMING:
        raise AssessmentError(f"The {timepoint.label} questionnaires are not open yet.")
    if state.status == MISSED:
        raise AssessmentError(f"The {timepoint.label} questionnaires have closed.")


def start(participant: Participant, timepoint: Timepoint, instrument_id: str, *,
          now: datetime | None = None) -> AssessmentResponse:
    """The participant's response to ``instrument_id`` at ``timepoint``, made on first use.
    Flushes; the caller commits."""
    now = now or utcnow()
    if timepoint.study_id != participant.study_id or instrument_id not in timepoint.instruments:
        raise AssessmentError("That questionnaire is not part of this study's schedule.")
    existing = _response(participant.id, timepoint.id, instrument_id)
    if existing is not None and existing.submitted_at is not None:
        return existing
    _require_fillable(participant, timepoint, now)
    if existing is None:
        dialect = db.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        db.session.execute(insert(AssessmentResponse).values(
            participant_id=participant.id, timepoint_id=timepoint.id, instrument=instrument_id,
            started_at=now, updated_at=now, extra_totals={}, subscales={}, labels={})
            .on_conflict_do_nothing(
                index_elements=["participant_id", "timepoint_id", "instrument"]))
        existing = _response(participant.id, timepoint.id, instrument_id)
    return existing


def _response(participant_id: int, timepoint_id: int, instrument_id: str
              ) -> AssessmentResponse | None:
    return db.session.scalar(select(AssessmentResponse).where(
        AssessmentResponse.participant_id == participant_id,
        AssessmentResponse.timepoint_id == timepoint_id,
        AssessmentResponse.instrument == instrument_id))


def instrument_of(response: AssessmentResponse) -> Instrument:
    return instruments.get(response.instrument)


def answers_of(response: AssessmentResponse) -> dict[int, int]:
    return dict(db.session.execute(select(ItemAnswer.item, ItemAnswer.value)
                                   .where(ItemAnswer.response_id == response.id)).all())


def parse_answer(instrument: Instrument, number: int, raw: object) -> int:
    """A submitted answer as the item's value; anything else names the item."""
    text = str(raw if raw is not None else "").strip()
    if not text:
        raise AssessmentError(f"Question {number}: choose one of the answers.", number)
    try:
        value = int(text)
    except ValueError:
        value = None
    try:
        if value is None:
            raise scoring.ScoringError(number, "not a whole number")
        scoring.check_answers(instrument, {number: value})
    except scoring.ScoringError:
        choices = ", ".join(option.label for option in instrument.options)
        raise AssessmentError(f"Question {number}: that answer is not one of the choices "
                              f"({choices}). Please choose one of them.", number) from None
    return value


def _require_editable(response: AssessmentResponse, participant: Participant,
                      now: datetime) -> None:
    if response.participant_id != participant.id:
        raise AssessmentError("That questionnaire is not yours.")
    if response.submitted_at is not None:
        raise AssessmentError("You have already sent this questionnaire, so it cannot be "
                              "changed any more.")
    _require_fillable(participant, response.timepoint, now)


def save_answer(response: AssessmentResponse, participant: Participant, number: int,
                raw: object, *, now: datetime | None = None) -> ItemAnswer:
    """Save (or change) one item's answer as soon as it is given. Flushes."""
    now = now or utcnow()
    _require_editable(response, participant, now)
    instrument = instrument_of(response)
    if number not in instrument.item_numbers:
        raise AssessmentError(f"Question {number} is not part of this questionnaire.", number)
    value = parse_answer(instrument, number, raw)
    answer = db.session.scalar(select(ItemAnswer).where(ItemAnswer.response_id == response.id,
                                                        ItemAnswer.item == number))
    if answer is None:
        answer = ItemAnswer(response_id=response.id, item=number, value=value, answered_at=now)
        db.session.add(answer)
    elif answer.value != value:
        answer.value, answer.answered_at = value, now
    response.updated_at = now
    db.session.flush()
    return answer


def first_unanswered(response: AssessmentResponse) -> int | None:
    given = answers_of(response)
    return next((n for n in instrument_of(response).item_numbers if n not in given), None)


# --------------------------------------------------------------------------- submitting

@dataclass
class Submitted:
    response: AssessmentResponse
    timepoint_completed: bool = False
    #: baseline completion: the arm they were randomised to, or why they were not
    randomised_to: str | None = None
    randomisation_problem: str | None = None


def submit(response: AssessmentResponse, participant: Participant, *,
           now: datetime | None = None) -> Submitted:
    """Score and store a complete questionnaire; see the module docstring. Flushes."""
    now = now or utcnow()
    # one submit per participant at a time, so the last of two questionnaires sent from
    # two tabs at once still sees the other and completes the timepoint
    db.session.flush()
    db.session.refresh(participant, with_for_update=True)
    db.session.refresh(response)
    _require_editable(response, participant, now)
    instrument = instrument_of(response)
    given = answers_of(response)
    missing = [n for n in instrument.item_numbers if n not in given]
    if missing:
        raise MissingAnswers(missing)
    result = scoring.score(instrument, given)
    response.submitted_at = response.updated_at = now
    response.instrument_version = result.instrument_version
    response.total = result.total
    response.extra_totals = dict(result.extra_totals)
    response.subscales = dict(result.subscales)
    response.labels = dict(result.labels)
    response.missing = result.missing
    response.score_status = result.status
    response.scoring_rule = result.scoring_rule
    response.missing_rule = result.missing_rule
    db.session.flush()
    timepoint = response.timepoint
    record_event(participant, "assessment_completed", at=now, timepoint=timepoint.key,
                 instrument=instrument.id)
    outcome = Submitted(response)
    done = submitted_instruments([participant.id]).get((participant.id, timepoint.id), set())
    if is_complete(timepoint, done):
        outcome.timepoint_completed = True
        record_event(participant, "timepoint_completed", at=now, timepoint=timepoint.key)
        if timepoint.is_baseline:
            from outcomes.assessments.strata import baseline_completed

            outcome.randomised_to, outcome.randomisation_problem = baseline_completed(
                participant, timepoint)
    return outcome
