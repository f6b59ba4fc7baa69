"""Randomisation: stratified permuted blocks of randomly varying size, concealed.

When a study opens enrolment (:func:`open_enrolment`) a secret seed is stored and the
allocation sequence of every stratum known then is generated into ``AllocationSlot``
rows. Each stratum's sequence depends only on the seed, the stratum and the arms (codes
and ratios): its random stream is HMAC-SHA256 keyed with ``HMAC(seed, stratum)`` in
counter mode, so

- the whole allocation can be regenerated from the seed and checked
  (:func:`verify_sequence`, ``flask outcomes randomisation verify``);
- a stratum first met later (a new site) gets exactly the sequence it would have had
  at the start; its slots are made when it is first needed.

The stream is our own (not :mod:`random`) so the sequence stays reproducible whatever
Python version regenerates it.

Each block holds every arm ``ratio × k`` times, ``k`` drawn from ``BLOCK_MULTIPLIERS``,
in a random order. :func:`randomise` gives a participant the next free slot of their
stratum. Concealment: nothing here returns a slot that is not yet taken; pages never read
these tables except through :func:`assigned_strata` (the strata of participants already
randomised, for exports and the report); the audit log records the arm and stratum of each
assignment, never the position.

Transaction contract: :func:`open_enrolment` and :func:`randomise` flush and leave the
commit to their caller. A slot is taken with a conditional ``UPDATE ... WHERE
participant_id IS NULL`` checked by its row count, so two transactions can never take
the same slot (on SQLite every transaction starts with ``BEGIN IMMEDIATE`` anyway), and
slots are taken strictly in order.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core import audit
from core.accounts import PermissionDenied
from core.clock import utcnow
from core.events import record_event, register_kind
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from outcomes.models import AllocationSeed, AllocationSlot, Arm, Study
from outcomes.participants import WITHDRAWN, TrialError, transition

register_kind("randomised", "Was randomised")

#: block size = k × (sum of the ratios), k drawn from these for each block
BLOCK_MULTIPLIERS = (1, 2, 3)
#: slots made at a time for a stratum (rounded up to whole blocks)
SLOTS_AT_A_TIME = 120
#: changes the whole sequence; bump only for a new study, never for a running one
DERIVATION = b"kinship-allocation-v1"
_CLAIM_ATTEMPTS = 100


# --- the sequence -----------------------------------------------------------------

class _Stream:
    """Uniform random integers from HMAC-SHA256 in counter mode."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0
        self._buffer = b""

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._buffer += hmac.new(self._key, self._counter.to_bytes(8, "big"),
                                     hashlib.sha256).digest()
            self._counter += 1
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken

    def below(self, n: int) -> int:
        """An integer in [0, n), without modulo bias (rejection sampling)."""
        limit = (1 << 64) // n * n
        while True:
            value = int.from_bytes(self._take(8), "big")
            if value < limit:
                return value % n


def stratum_stream(seed: str, stratum: str) -> _Stream:
    key = hmac.new(seed.encode(), DERIVATION + b"|" + stratum.encode(), hashlib.sha256).digest()
    return _Stream(key)


def allocation_blocks(seed: str, stratum: str, arms: Iterable[tuple[str, int]],
                      length: int) -> list[list[str]]:
    """A stratum's sequence as its blocks of arm codes, at least ``length`` slots in all.

    ``arms`` is (code, ratio) pairs; their order does not matter. A longer sequence
    always starts with the shorter one.
    """
    design = sorted(arms)
    if not design or any(ratio < 1 for _, ratio in design):
        raise TrialError("Every arm needs an allocation ratio of 1 or more.")
    stream = stratum_stream(seed, stratum)
    blocks: list[list[str]] = []
    total = 0
    while total < length:
        k = BLOCK_MULTIPLIERS[stream.below(len(BLOCK_MULTIPLIERS))]
        block = [code for code, ratio in design for _ in range(ratio * k)]
        for i in range(len(block) - 1, 0, -1):  # Fisher-Yates
            j = stream.below(i + 1)
            block[i], block[j] = block[j], block[i]
        blocks.append(block)
        total += len(block)
    return blocks


def allocation_sequence(seed: str, stratum: str, arms: Iterable[tuple[str, int]],
                        length: int) -> list[str]:
    """A stratum's sequence of arm codes, in whole blocks, at least ``length`` long."""
    return [code for block in allocation_blocks(seed, stratum, arms, length) for code in block]


# --- strata -------------------------------------------------------------------------

def levels_of(study: Study) -> dict[str, list[str]]:
    """Each stratification factor and its levels (the sites for ``site``)."""
    return {factor: list(study.sites if factor == "site" else
                         study.stratum_levels.get(factor, []))
            for factor in study.strata}


def stratum_key(study: Study, values: dict[str, str]) -> str:
    """The canonical key of a stratum: its values in the study's factor order, as JSON."""
    key = json.dumps({factor: values[factor] for factor in study.strata},
                     ensure_ascii=False, separators=(",", ":"))
    if len(key) > AllocationSlot.__table__.c.stratum.type.length:
        raise TrialError("The stratum's names are too long to record; use shorter site or "
                         "level names.")
    return key


def known_strata(study: Study) -> list[dict[str, str]]:
    levels = levels_of(study)
    return [dict(zip(levels, combination, strict=True))
            for combination in itertools.product(*levels.values())]


def assigned_strata(study: Study) -> dict[int, dict[str, str]]:
    """Participant id -> the stratum they were randomised in (taken slots only: never a
    future allocation, never a position or the seed)."""
    strata: dict[int, dict[str, str]] = {}
    for pid, stratum in db.session.execute(
            select(AllocationSlot.participant_id, AllocationSlot.stratum)
            .where(AllocationSlot.study_id == study.id,
                   AllocationSlot.participant_id.is_not(None))):
        try:
            strata[pid] = {str(k): str(v) for k, v in json.loads(stratum).items()}
        except (ValueError, AttributeError):
            strata[pid] = {}
    return strata


def _check_design(study: Study) -> None:
    if len(study.arms) < 2:
        raise TrialError("A trial needs at least two arms before enrolment opens.")
    if any(arm.ratio < 1 for arm in study.arms):
        raise TrialError("Every arm needs an allocation ratio of 1 or more.")
    if len(set(study.strata)) != len(study.strata):
        raise TrialError("A stratification factor is listed twice.")
    for factor, levels in levels_of(study).items():
        if not levels:
            what = "the study's sites" if factor == "site" else f"the levels of {_label(factor)}"
            raise TrialError(f"List {what} before enrolment opens: it is a stratum.")


def _label(factor: str) -> str:
    return factor.replace("_", " ")


def _design(study: Study) -> list[tuple[str, int]]:
    return [(arm.code, arm.ratio) for arm in study.arms]


# --- opening enrolment ----------------------------------------------------------------

def _require_researcher(actor: User) -> None:
    if actor.role not in (Role.RESEARCHER, Role.ADMIN):
        raise PermissionDenied("only researchers and admins randomise")


def is_open(study: Study) -> bool:
    return study.enrolment_opened_at is not None


def open_enrolment(study: Study, *, actor: User, seed: str | None = None) -> None:
    """Store a secret seed and generate the sequences of the strata known now.

    ``seed`` is for tests and for rebuilding a study elsewhere; by default a random
    256-bit one is made. The audit entry holds the seed's SHA-256 (a commitment an
    auditor can check it against later), never the seed. Flushes; the caller commits.
    """
    _require_researcher(actor)
    db.session.flush()
    db.session.refresh(study, with_for_update=True)  # two researchers pressing at once
    if is_open(study) or _seed_of(study) is not None:
        raise TrialError("Enrolment is already open.")
    _check_design(study)
    seed = seed or secrets.token_hex(32)
    db.session.add(AllocationSeed(study_id=study.id, seed=seed))
    study.enrolment_opened_at = utcnow()
    strata = known_strata(study)
    for values in strata:
        _make_slots(study, stratum_key(study, values), seed, SLOTS_AT_A_TIME)
    db.session.flush()
    audit.record("study.enrolment_opened", actor=actor, target=study, strata=len(strata),
                 arms={code: ratio for code, ratio in _design(study)},
                 seed_sha256=hashlib.sha256(seed.encode()).hexdigest())


def _seed_of(study: Study) -> str | None:
    return db.session.scalar(select(AllocationSeed.seed)
                             .where(AllocationSeed.study_id == study.id))


def _make_slots(study: Study, stratum: str, seed: str, more: int) -> None:
    """Add ``more`` slots (whole blocks) to a stratum. Slots are a pure function of the
    seed, so a concurrent transaction making the same ones is simply skipped."""
    have = db.session.scalar(select(func.max(AllocationSlot.position)).where(
        AllocationSlot.study_id == study.id, AllocationSlot.stratum == stratum)) or 0
    arm_ids = {arm.code: arm.id for arm in study.arms}
    sequence = allocation_sequence(seed, stratum, _design(study), have + more)
    rows = [{"study_id": study.id, "stratum": stratum, "position": position,
             "arm_id": arm_ids[code]}
            for position, code in enumerate(sequence, start=1) if position > have]
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(insert(AllocationSlot).on_conflict_do_nothing(
        index_elements=["study_id", "stratum", "position"]), rows)


# --- randomising ----------------------------------------------------------------------

def randomise(participant: Participant, *, actor: User | None, strata: dict[str, str]) -> Arm:
    """Allocate a participant whose baseline is done to the next arm of their stratum.

    ``strata`` gives the value of each stratification factor; ``site`` is the
    participant's own when it is one of the study's sites (otherwise the one given
    becomes theirs, audited as a correction). ``actor`` None is the system randomising
    on baseline completion (``Study.randomise_on_baseline``); it is audited with no actor.
    Flushes; the caller commits.
    """
    if actor is not None:
        _require_researcher(actor)
    db.session.flush()
    db.session.refresh(participant, with_for_update=True)  # one randomisation per person
    _check_ready(participant)
    study = db.session.get(Study, participant.study_id)
    seed = _seed_of(study)
    if seed is None:
        raise TrialError("Enrolment is not open yet: open it on the trial dashboard, which "
                         "makes the allocation sequence.")
    values = stratum_values(study, participant, strata)
    stratum = stratum_key(study, values)
    arm_id = _take_slot(study, stratum, seed, participant)
    arm = db.session.get(Arm, arm_id)
    participant.arm_id = arm.id
    participant.randomised_at = utcnow()
    corrected = {}
    if "site" in values and participant.site != values["site"]:
        corrected = {"site_was": participant.site}
        participant.site = values["site"]
    transition(participant, "randomised", actor=actor)
    if actor is None:
        corrected["by"] = "system"  # on baseline completion
    audit.record("participant.randomised", actor=actor, target=participant, arm=arm.code,
                 stratum=values, **corrected)
    record_event(participant, "randomised")
    return arm


def _check_ready(participant: Participant) -> None:
    if participant.arm_id is not None:
        raise TrialError(f"{participant.study_code} is already randomised.")
    if participant.status == WITHDRAWN:
        raise TrialError(f"{participant.study_code} has withdrawn from the study.")
    if participant.status != "baseline_done":
        raise TrialError("Baseline questionnaires must be complete before randomisation.")


def stratum_values(study: Study, participant: Participant,
                   given: dict[str, str]) -> dict[str, str]:
    """Check the stratum values given for a participant; fill in their site."""
    given = {factor: (value or "").strip() for factor, value in given.items()}
    unknown = sorted(set(given) - set(study.strata))
    if unknown:
        raise TrialError(f"{_label(unknown[0])} is not a stratum of this study.")
    levels = levels_of(study)
    # the site recorded at enrolment counts when it is one of the study's sites; otherwise
    # (none, or a typing variant) the researcher chooses one and it becomes the participant's
    if "site" in study.strata and participant.site in levels["site"]:
        if given.get("site", participant.site) != participant.site:
            raise TrialError(f"{participant.study_code}'s site is {participant.site}.", "site")
        given["site"] = participant.site
    for factor in study.strata:
        value = given.get(factor, "")
        if not value:
            raise TrialError(f"Choose the participant's {_label(factor)}.", factor)
        if value not in levels[factor]:
            raise TrialError(f"{value} is not one of the levels of {_label(factor)} "
                             f"({', '.join(levels[factor])}).", factor)
    return {factor: given[factor] for factor in study.strata}


def _take_slot(study: Study, stratum: str, seed: str, participant: Participant) -> int:
    """Take the first free slot of the stratum and return its arm id."""
    for _ in range(_CLAIM_ATTEMPTS):
        position = db.session.scalar(select(func.min(AllocationSlot.position)).where(
            AllocationSlot.study_id == study.id, AllocationSlot.stratum == stratum,
            AllocationSlot.participant_id.is_(None)))
        if position is None:
            _make_slots(study, stratum, seed, SLOTS_AT_A_TIME)
            continue
        # on PostgreSQL this waits for a transaction that holds the row, then sees its
        # outcome: 0 rows if it took the slot (we try the next), 1 if it rolled back
        taken = db.session.execute(
            update(AllocationSlot)
            .where(AllocationSlot.study_id == study.id, AllocationSlot.stratum == stratum,
                   AllocationSlot.position == position, AllocationSlot.participant_id.is_(None))
            .values(participant_id=participant.id, assigned_at=utcnow())
            .execution_options(synchronize_session=False))
        if taken.rowcount == 1:
            return db.session.scalar(select(AllocationSlot.arm_id).where(
                AllocationSlot.study_id == study.id, AllocationSlot.stratum == stratum,
                AllocationSlot.position == position))
    raise TrialError("Too many people were randomised at the same moment; please try again.")


# --- checking -------------------------------------------------------------------------

def verify_sequence(study: Study) -> bool:
    """Regenerate every stored stratum's sequence from the seed and compare it, slot by
    slot, with what is stored (positions 1..n without gaps, same arms)."""
    seed = _seed_of(study)
    if seed is None:
        return False
    codes = {arm.id: arm.code for arm in study.arms}
    stored: dict[str, list[tuple[int, int]]] = {}
    for stratum, position, arm_id in db.session.execute(
            select(AllocationSlot.stratum, AllocationSlot.position, AllocationSlot.arm_id)
            .where(AllocationSlot.study_id == study.id)
            .order_by(AllocationSlot.stratum, AllocationSlot.position)):
        stored.setdefault(stratum, []).append((position, arm_id))
    return all(_matches(seed, stratum, _design(study), slots, codes)
               for stratum, slots in stored.items())


def _matches(seed: str, stratum: str, design: Sequence[tuple[str, int]],
             slots: list[tuple[int, int]], codes: dict[int, str]) -> bool:
    expected = allocation_sequence(seed, stratum, design, len(slots))
    return [position for position, _ in slots] == list(range(1, len(slots) + 1)) and all(
        codes.get(arm_id) == expected[position - 1] for position, arm_id in slots)


def sequence_summary(study: Study) -> tuple[int, int, int]:
    """(strata, slots, slots taken) for the CLI: counts only, nothing about the order."""
    strata, slots, taken = db.session.execute(
        select(func.count(func.distinct(AllocationSlot.stratum)), func.count(AllocationSlot.id),
               func.count(AllocationSlot.participant_id))
        .where(AllocationSlot.study_id == study.id)).one()
    return strata, slots, taken
