"""Randomisation: stratified permuted blocks of varying size, generated from a recorded
secret seed when enrolment opens, reproducible, concealed, and safe under concurrency."""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from core.accounts import PermissionDenied
from core.audit import AuditEntry
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant
from core.roles import Role
from outcomes import randomisation
from outcomes.models import AllocationSeed, AllocationSlot, Arm, Study
from outcomes.participants import TrialError
from outcomes.randomisation import (
    allocation_blocks,
    allocation_sequence,
    open_enrolment,
    randomise,
    stratum_key,
    verify_sequence,
)
from tests.factories import make_staff
from tests.outcomes.trial import LONELINESS, SITES, arm_codes, at_baseline, make_trial, researcher

SEED = "a-recorded-test-seed"


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def slots_of(study: Study, stratum: str) -> list[AllocationSlot]:
    return list(db.session.scalars(select(AllocationSlot).where(
        AllocationSlot.study_id == study.id, AllocationSlot.stratum == stratum)
        .order_by(AllocationSlot.position)))


def key(study: Study, site: str, loneliness: str) -> str:
    return stratum_key(study, {"site": site, "baseline_loneliness": loneliness})


def design(study: Study) -> list[tuple[str, int]]:
    return [(arm.code, arm.ratio) for arm in study.arms]


def balanced(counts: Counter, ratios: dict[str, int]) -> bool:
    """Whether arm counts are exactly in proportion to the ratios."""
    unit = sum(counts.values()) / sum(ratios.values())
    return all(counts[code] == ratio * unit for code, ratio in ratios.items())


# --- the sequence itself ---------------------------------------------------------------

def test_each_block_holds_every_arm_ratio_times_k():
    """It builds blocks of k × (sum of ratios) with each arm ratio × k times."""
    for ratios in ({"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 1, "c": 2}):
        for block in allocation_blocks(SEED, "s", ratios.items(), 600):
            k = len(block) // sum(ratios.values())
            assert k in randomisation.BLOCK_MULTIPLIERS
            assert Counter(block) == {code: ratio * k for code, ratio in ratios.items()}


def test_block_sizes_vary():
    """It draws the block size at random for each block: every size occurs."""
    sizes = Counter(len(b) for b in allocation_blocks(SEED, "s", [("a", 1), ("b", 1)], 400))
    assert set(sizes) == {2, 4, 6}
    sizes = {len(b) for b in allocation_blocks(SEED, "s", [("a", 2), ("b", 1)], 400)}
    assert sizes == {3, 6, 9}


def test_block_orders_vary():
    """It shuffles within blocks: a long sequence is not one pattern repeated."""
    blocks = [tuple(b) for b in allocation_blocks(SEED, "s", [("a", 1), ("b", 1)], 600)
              if len(b) == 6]
    assert len(set(blocks)) > 5


def test_same_seed_same_sequence_and_different_seed_different_sequence():
    """It is a pure function of seed, stratum and arms; the arms' order does not matter."""
    arms = [("guided", 1), ("self", 1)]
    first = allocation_sequence(SEED, "s", arms, 200)
    assert first == allocation_sequence(SEED, "s", list(reversed(arms)), 200)
    assert first != allocation_sequence("another-seed", "s", arms, 200)
    assert first != allocation_sequence(SEED, "another stratum", arms, 200)


def test_a_longer_sequence_starts_with_the_shorter_one():
    """It extends a stratum's sequence without changing the slots made before."""
    arms = [("guided", 2), ("self", 1)]
    short = allocation_sequence(SEED, "s", arms, 50)
    assert allocation_sequence(SEED, "s", arms, 500)[:len(short)] == short


def test_the_stream_is_pinned():
    """It keeps generating the same sequence for a given seed in every future version:
    a change here would make running trials irreproducible."""
    blocks = allocation_blocks("pinned", "{}", [("a", 1), ("b", 1)], 24)
    assert ["".join(block) for block in blocks] == PINNED


#: the first blocks of seed "pinned", stratum "{}", arms a:b 1:1
PINNED = ["baba", "baba", "bbaa", "ab", "ba", "ba", "baaabb"]


# --- opening enrolment -----------------------------------------------------------------

def test_opening_stores_the_seed_and_makes_every_known_strata_sequence(ctx):
    """It records the seed, marks enrolment open and makes each stratum's slots from it."""
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    db.session.commit()
    assert db.session.scalar(select(AllocationSeed.seed)) == SEED
    assert study.enrolment_opened_at is not None
    codes = arm_codes(study)
    for site, level in itertools.product(SITES, LONELINESS):
        stratum = key(study, site, level)
        slots = slots_of(study, stratum)
        assert len(slots) >= randomisation.SLOTS_AT_A_TIME
        assert [s.position for s in slots] == list(range(1, len(slots) + 1))
        assert [codes[s.arm_id] for s in slots] == allocation_sequence(
            SEED, stratum, design(study), len(slots))
        assert all(s.participant_id is None for s in slots)
    assert verify_sequence(study)


def test_opening_makes_a_random_seed_by_default(ctx):
    """It makes a fresh 256-bit seed for each study unless one is given."""
    first = make_trial()
    open_enrolment(first, actor=researcher())
    second = Study(slug="second", name="Second", sites=["North"], strata=["site"])
    db.session.add(second)
    db.session.flush()
    db.session.add_all([Arm(study_id=second.id, code="a", name="A"),
                        Arm(study_id=second.id, code="b", name="B")])
    db.session.flush()
    open_enrolment(second, actor=researcher())
    seeds = list(db.session.scalars(select(AllocationSeed.seed)))
    assert len(seeds) == 2 and seeds[0] != seeds[1] and all(len(s) == 64 for s in seeds)


def test_opening_is_audited_with_a_commitment_to_the_seed_not_the_seed(ctx):
    """It logs the arms, the number of strata and the seed's SHA-256, never the seed."""
    study = make_trial(ratios={"guided": 2})
    open_enrolment(study, actor=researcher(), seed=SEED)
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "study.enrolment_opened"))
    assert entry.detail == {"strata": 4, "arms": {"guided": 2, "self": 1},
                            "seed_sha256": hashlib.sha256(SEED.encode()).hexdigest()}
    assert all(SEED not in str(e.detail) for e in db.session.scalars(select(AuditEntry)))


def test_opening_twice_is_refused(ctx):
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    with pytest.raises(TrialError, match="Enrolment is already open"):
        open_enrolment(study, actor=researcher(), seed="other")


@pytest.mark.parametrize("change, message", [
    ({"sites": []}, "List the study's sites before enrolment opens"),
    ({"stratum_levels": {}}, "List the levels of baseline loneliness before enrolment opens"),
    ({"strata": ["site", "site"]}, "A stratification factor is listed twice"),
])
def test_opening_an_incomplete_design_is_refused(ctx, change, message):
    """It names what is missing and stores no seed."""
    study = make_trial()
    for name, value in change.items():
        setattr(study, name, value)
    with pytest.raises(TrialError, match=message):
        open_enrolment(study, actor=researcher())
    db.session.rollback()
    assert db.session.scalar(select(func.count(AllocationSeed.id))) == 0


def test_opening_needs_two_arms_with_ratios(ctx):
    study = make_trial()
    study.arms[0].ratio = 0
    with pytest.raises(TrialError, match="ratio of 1 or more"):
        open_enrolment(study, actor=researcher())


def test_only_researchers_and_admins_open_enrolment_or_randomise(ctx):
    study = make_trial()
    peer = make_staff(Role.PEER_MODERATOR)
    with pytest.raises(PermissionDenied):
        open_enrolment(study, actor=peer)
    open_enrolment(study, actor=make_staff(Role.ADMIN), seed=SEED)
    person = at_baseline(study, "T-0001")
    with pytest.raises(PermissionDenied):
        randomise(person, actor=peer, strata={"baseline_loneliness": "high"})


def test_a_study_without_strata_has_one_sequence(ctx):
    study = make_trial(strata=[])
    open_enrolment(study, actor=researcher(), seed=SEED)
    assert db.session.scalars(select(AllocationSlot.stratum).distinct()).all() == ["{}"]
    person = at_baseline(study, "T-0001", site=None)
    assert randomise(person, actor=researcher(), strata={}).code == allocation_sequence(
        SEED, "{}", design(study), 1)[0]


# --- randomising --------------------------------------------------------------------------

def test_randomising_takes_the_next_slot_of_the_stratum(ctx):
    """It gives participants the slots of their stratum in order and records arm and date."""
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    stratum = key(study, "North", "high")
    expected = allocation_sequence(SEED, stratum, design(study), 5)[:5]
    got = []
    for n in range(5):
        person = at_baseline(study, f"T-{n + 1:04d}")
        got.append(randomise(person, actor=researcher(),
                             strata={"baseline_loneliness": "high"}).code)
        db.session.commit()
        assert (person.status, person.arm_id) == ("randomised", person.arm_id)
        assert person.randomised_at is not None
    assert got == expected
    taken = [s.participant_id is not None for s in slots_of(study, stratum)]
    assert taken[:5] == [True] * 5 and not any(taken[5:])
    assert not any(s.participant_id for s in slots_of(study, key(study, "South", "high")))


def test_randomising_is_audited_without_the_position_and_recorded_as_activity(ctx):
    """It logs the arm and the stratum (not the slot), and records a "randomised" event."""
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    person = at_baseline(study, "T-0001", site="South")
    arm = randomise(person, actor=researcher(), strata={"baseline_loneliness": "low"})
    db.session.commit()
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "participant.randomised"))
    assert (entry.target_type, entry.target_id) == ("participant", person.id)
    assert entry.detail == {"arm": arm.code,
                            "stratum": {"site": "South", "baseline_loneliness": "low"}}
    status = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "participant.status"))
    assert status.detail == {"old": "baseline_done", "new": "randomised"}
    kinds = db.session.scalars(select(ActivityEvent.kind).where(
        ActivityEvent.participant_id == person.id)).all()
    assert kinds == ["randomised"]


@pytest.mark.parametrize("status", ["invited", "consented"])
def test_randomising_before_the_baseline_is_done_is_refused(ctx, status):
    """It refuses anyone whose baseline questionnaires are not complete and takes no slot."""
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    person = at_baseline(study, "T-0001")
    person.status = status
    db.session.commit()
    with pytest.raises(TrialError, match="^Baseline questionnaires must be complete before "
                                         "randomisation.$"):
        randomise(person, actor=researcher(), strata={"baseline_loneliness": "high"})
    db.session.rollback()
    assert db.session.scalar(select(func.count(AllocationSlot.participant_id))) == 0
    assert db.session.get(Participant, person.id).arm_id is None


def test_randomising_twice_or_after_withdrawal_is_refused(ctx):
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    person = at_baseline(study, "T-0001")
    randomise(person, actor=researcher(), strata={"baseline_loneliness": "high"})
    db.session.commit()
    with pytest.raises(TrialError, match="T-0001 is already randomised"):
        randomise(person, actor=researcher(), strata={"baseline_loneliness": "high"})
    db.session.rollback()
    other = at_baseline(study, "T-0002")
    other.status = "withdrawn"
    db.session.commit()
    with pytest.raises(TrialError, match="T-0002 has withdrawn from the study"):
        randomise(other, actor=researcher(), strata={"baseline_loneliness": "high"})


def test_randomising_before_enrolment_opens_is_refused(ctx):
    study = make_trial()
    person = at_baseline(study, "T-0001")
    with pytest.raises(TrialError, match="Enrolment is not open yet"):
        randomise(person, actor=researcher(), strata={"baseline_loneliness": "high"})


@pytest.mark.parametrize("strata, site, message", [
    ({}, "North", "Choose the participant's baseline loneliness."),
    ({"baseline_loneliness": "medium"}, "North",
     "medium is not one of the levels of baseline loneliness (high, low)."),
    ({"baseline_loneliness": "high", "age": "old"}, "North", "age is not a stratum"),
    ({"baseline_loneliness": "high", "site": "South"}, "North", "T-0001's site is North."),
    ({"baseline_loneliness": "high"}, None, "Choose the participant's site."),
    ({"baseline_loneliness": "high"}, "West", "Choose the participant's site."),
    ({"baseline_loneliness": "high", "site": "East"}, None,
     "East is not one of the levels of site (North, South)."),
])
def test_bad_stratum_values_are_refused(ctx, strata, site, message):
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    person = at_baseline(study, "T-0001", site=site)
    with pytest.raises(TrialError) as refused:
        randomise(person, actor=researcher(), strata=strata)
    assert message in str(refused.value)


def test_a_site_typed_differently_at_enrolment_is_corrected_and_audited(ctx):
    """It lets the researcher choose the right site when the recorded one is not a study
    site, stores it and notes the old value in the audit entry."""
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    person = at_baseline(study, "T-0001", site="north clinic")
    randomise(person, actor=researcher(), strata={"site": "North", "baseline_loneliness": "low"})
    assert person.site == "North"
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "participant.randomised"))
    assert entry.detail["site_was"] == "north clinic"


def test_a_participant_without_a_site_gets_the_one_chosen(ctx):
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    person = at_baseline(study, "T-0001", site=None)
    randomise(person, actor=researcher(), strata={"site": "South", "baseline_loneliness": "low"})
    assert person.site == "South"
    assert db.session.scalar(select(AllocationSlot.stratum).where(
        AllocationSlot.participant_id == person.id)) == key(study, "South", "low")


# --- balance ----------------------------------------------------------------------------

def allocations_by_stratum(study: Study) -> dict[str, list[str]]:
    """Each stratum's arms in the order participants were randomised."""
    codes = arm_codes(study)
    result: dict[str, list[str]] = {}
    for stratum, arm_id in db.session.execute(
            select(AllocationSlot.stratum, AllocationSlot.arm_id)
            .where(AllocationSlot.participant_id.is_not(None))
            .order_by(AllocationSlot.stratum, AllocationSlot.assigned_at,
                      AllocationSlot.position)):
        result.setdefault(stratum, []).append(codes[arm_id])
    return result


def check_balance(study: Study, seed: str, stratum: str, arms: list[str],
                  ratios: dict[str, int]) -> None:
    """After every complete block the arms are exactly in ratio; in between, the
    imbalance never exceeds half the largest block."""
    blocks = allocation_blocks(seed, stratum, ratios.items(), len(arms))
    boundaries = set(itertools.accumulate(len(b) for b in blocks))
    largest = max(len(b) for b in blocks)
    counts: Counter = Counter()
    unit = sum(ratios.values())
    for n, code in enumerate(arms, start=1):
        counts[code] += 1
        if n in boundaries:
            assert balanced(counts, ratios), (stratum, n, counts)
        expected = {c: n * r / unit for c, r in ratios.items()}
        assert max(abs(counts[c] - expected[c]) for c in ratios) <= largest / 2


def test_arms_are_balanced_within_each_stratum(ctx):
    """200 participants over 2 sites × 2 loneliness levels, randomised in mixed order:
    each stratum follows its own sequence and is balanced by blocks."""
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    arrivals = [stratum for stratum in itertools.product(SITES, LONELINESS) for _ in range(50)]
    random.Random(7).shuffle(arrivals)
    for n, (site, level) in enumerate(arrivals):
        person = at_baseline(study, f"T-{n + 1:04d}", site=site)
        randomise(person, actor=researcher(), strata={"baseline_loneliness": level})
        db.session.commit()
    allocated = allocations_by_stratum(study)
    assert sorted(len(a) for a in allocated.values()) == [50, 50, 50, 50]
    for stratum, arms in allocated.items():
        assert arms == allocation_sequence(SEED, stratum, design(study), len(arms))[:len(arms)]
        check_balance(study, SEED, stratum, arms, {"guided": 1, "self": 1})
    total = Counter(a for arms in allocated.values() for a in arms)
    assert abs(total["guided"] - total["self"]) <= 4 * 3


def test_an_unequal_ratio_is_respected(ctx):
    """It allocates 2:1 when the guided arm has ratio 2, block by block."""
    study = make_trial(ratios={"guided": 2, "self": 1}, strata=["site"])
    open_enrolment(study, actor=researcher(), seed=SEED)
    for n in range(60):
        randomise(at_baseline(study, f"T-{n + 1:04d}"), actor=researcher(), strata={})
        db.session.commit()
    [(stratum, arms)] = allocations_by_stratum(study).items()
    check_balance(study, SEED, stratum, arms, {"guided": 2, "self": 1})
    counts = Counter(arms)
    assert abs(counts["guided"] - 40) <= 4 and abs(counts["self"] - 20) <= 4
    long = Counter(allocation_sequence(SEED, stratum, design(study), 3000))
    assert long["guided"] == 2 * long["self"]


def test_a_used_up_stratum_gets_more_slots_from_the_same_sequence(ctx, monkeypatch):
    """It makes more slots when a stratum runs out; they continue the seeded sequence."""
    monkeypatch.setattr(randomisation, "SLOTS_AT_A_TIME", 4)
    study = make_trial(strata=["site"])
    open_enrolment(study, actor=researcher(), seed=SEED)
    stratum = stratum_key(study, {"site": "North"})
    first = len(slots_of(study, stratum))
    for n in range(first + 3):
        randomise(at_baseline(study, f"T-{n + 1:04d}"), actor=researcher(), strata={})
        db.session.commit()
    slots = slots_of(study, stratum)
    assert len(slots) > first
    codes = arm_codes(study)
    assert [codes[s.arm_id] for s in slots] == allocation_sequence(SEED, stratum, design(study),
                                                                   len(slots))
    assert verify_sequence(study)


# --- reproducibility ----------------------------------------------------------------------

def test_a_stratum_first_seen_later_gets_the_seeded_sequence(ctx):
    """A site added after enrolment opened gets the sequence it would have had from the
    start: the same as in a study that listed it from the beginning with the same seed."""
    study = make_trial(sites=["North"])
    open_enrolment(study, actor=researcher(), seed=SEED)
    later = key(study, "South", "high")
    assert slots_of(study, later) == []
    study.sites = ["North", "South"]
    db.session.commit()
    person = at_baseline(study, "T-0001", site="South")
    randomise(person, actor=researcher(), strata={"baseline_loneliness": "high"})
    db.session.commit()
    codes = arm_codes(study)
    made_later = [codes[s.arm_id] for s in slots_of(study, later)]
    assert made_later == allocation_sequence(SEED, later, design(study), len(made_later))
    assert verify_sequence(study)

    twin = Study(slug="twin", name="Twin", sites=["North", "South"],
                 strata=["site", "baseline_loneliness"],
                 stratum_levels={"baseline_loneliness": LONELINESS})
    db.session.add(twin)
    db.session.flush()
    db.session.add_all([Arm(study_id=twin.id, code="guided", name="G"),
                        Arm(study_id=twin.id, code="self", name="S")])
    db.session.flush()
    open_enrolment(twin, actor=researcher(), seed=SEED)
    twin_codes = arm_codes(twin)
    from_start = [twin_codes[s.arm_id] for s in slots_of(twin, later)]
    assert from_start[:len(made_later)] == made_later


def test_the_whole_allocation_is_verified_against_the_seed(ctx):
    """It confirms stored slots match the seed, and notices a changed arm or a missing slot."""
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    randomise(at_baseline(study, "T-0001"), actor=researcher(),
              strata={"baseline_loneliness": "high"})
    db.session.commit()
    assert verify_sequence(study)

    guided, selfguided = study.arms
    slot = slots_of(study, key(study, "South", "low"))[7]
    slot.arm_id = selfguided.id if slot.arm_id == guided.id else guided.id
    db.session.commit()
    assert not verify_sequence(study)
    slot.arm_id = selfguided.id if slot.arm_id == guided.id else guided.id
    db.session.commit()
    assert verify_sequence(study)
    db.session.delete(slot)
    db.session.commit()
    assert not verify_sequence(study)


def test_a_different_seed_gives_a_different_allocation(ctx):
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    db.session.execute(update(AllocationSeed).values(seed="a-different-seed"))
    db.session.commit()
    assert not verify_sequence(study)


def test_verify_command_reports_counts_only(ctx, runner):
    """``flask outcomes randomisation verify`` exits 0 when the sequence matches, 1 when
    not, and prints no allocation."""
    study = make_trial()
    open_enrolment(study, actor=researcher(), seed=SEED)
    db.session.commit()
    result = runner.invoke(args=["outcomes", "randomisation", "verify"])
    assert result.exit_code == 0, result.output
    assert "match the seed" in result.output and "4 strata" in result.output
    assert "guided" not in result.output and SEED not in result.output
    db.session.execute(update(AllocationSeed).values(seed="tampered"))
    db.session.commit()
    result = runner.invoke(args=["outcomes", "randomisation", "verify", "--study", "test"])
    assert result.exit_code == 1
    assert "MISMATCH" in result.output


def test_the_demo_study_has_a_verifiable_sequence(app, runner):
    """It seeds the demo with enrolment open, a seed and a sequence per site."""
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    result = runner.invoke(args=["outcomes", "randomisation", "verify"])
    assert result.exit_code == 0, result.output
    assert "in 2 strata (0 taken)" in result.output


# --- concurrency --------------------------------------------------------------------------

def on_postgresql() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip(reason="concurrency is tested on PostgreSQL")


@pytest.mark.postgres_only
def test_simultaneous_randomisations_in_one_stratum_never_share_a_slot(app):
    """Eight sessions randomise eight participants of the same stratum at once, three
    times over: every participant gets a slot of their own, taken in order, with no gap."""
    with app.app_context():
        on_postgresql()
        study = make_trial(strata=["site"])
        open_enrolment(study, actor=researcher(), seed=SEED)
        db.session.commit()
        ids = [at_baseline(study, f"T-{n + 1:04d}").id for n in range(24)]
        researcher_id = researcher().id
    errors: list[BaseException] = []

    def worker(participant_id: int, barrier: threading.Barrier) -> None:
        try:
            with app.app_context():
                from core.models import User

                actor = db.session.get(User, researcher_id)
                person = db.session.get(Participant, participant_id)
                barrier.wait()
                randomise(person, actor=actor, strata={})
                db.session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    for batch in (ids[:8], ids[8:16], ids[16:]):
        barrier = threading.Barrier(len(batch), timeout=30)
        threads = [threading.Thread(target=worker, args=(pid, barrier)) for pid in batch]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    with app.app_context():
        study = db.session.scalar(select(Study))
        taken = db.session.execute(select(AllocationSlot.position, AllocationSlot.participant_id,
                                          AllocationSlot.arm_id)
                                   .where(AllocationSlot.participant_id.is_not(None))).all()
        assert sorted(p for p, _, _ in taken) == list(range(1, 25))
        assert sorted(pid for _, pid, _ in taken) == sorted(ids)
        arms = dict(db.session.execute(select(Participant.id, Participant.arm_id)).all())
        assert all(arms[pid] == arm_id for _, pid, arm_id in taken)
        assert verify_sequence(study)


@pytest.mark.postgres_only
def test_randomising_one_participant_twice_at_once_allocates_once(app):
    """Two sessions randomise the same participant at once (a double click): one wins,
    the other is told they are already randomised, and only one slot is taken."""
    with app.app_context():
        on_postgresql()
        study = make_trial(strata=["site"])
        open_enrolment(study, actor=researcher(), seed=SEED)
        db.session.commit()
        participant_id = at_baseline(study, "T-0001").id
        researcher_id = researcher().id
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def worker() -> None:
        with app.app_context():
            from core.models import User

            actor = db.session.get(User, researcher_id)
            person = db.session.get(Participant, participant_id)
            barrier.wait()
            try:
                randomise(person, actor=actor, strata={})
                db.session.commit()
                outcomes.append("randomised")
            except TrialError as exc:
                db.session.rollback()
                outcomes.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["T-0001 is already randomised.", "randomised"]
    with app.app_context():
        assert db.session.scalar(select(func.count(AllocationSlot.participant_id))) == 1


def test_sqlite_serialises_randomisations_too(ctx):
    """On SQLite each transaction starts with BEGIN IMMEDIATE; a second participant in
    the same stratum simply gets the next slot (smoke test of the claim loop)."""
    study = make_trial(strata=["site"])
    open_enrolment(study, actor=researcher(), seed=SEED)
    first, second = at_baseline(study, "T-0001"), at_baseline(study, "T-0002")
    randomise(first, actor=researcher(), strata={})
    randomise(second, actor=researcher(), strata={})
    db.session.commit()
    positions = dict(db.session.execute(select(AllocationSlot.participant_id,
                                               AllocationSlot.position)
                                        .where(AllocationSlot.participant_id.is_not(None))).all())
    assert positions == {first.id: 1, second.id: 2}

