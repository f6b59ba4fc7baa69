"""The participant path: allowed and refused status moves, the three kinds of
withdrawal and what each one does, and lost to follow-up worked out from activity."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from core import accounts, clock
from core.accounts import PermissionDenied
from core.audit import AuditEntry
from core.events import record_event
from core.extensions import db
from core.models import Invite, Participant
from core.roles import Role
from outcomes import participants as path
from outcomes import services
from outcomes.models import StatusChange, Withdrawal
from outcomes.participants import TrialError, transition, withdraw
from outcomes.randomisation import open_enrolment, randomise
from tests.factories import make_participant, make_staff
from tests.outcomes.trial import at_baseline, make_trial, researcher

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
REASON = "Said on the phone that the sessions take too much time."
STORED = ["invited", "consented", "baseline_done", "randomised", "active", "completed",
          "withdrawn"]
ALLOWED = {
    ("invited", "consented"), ("consented", "baseline_done"), ("baseline_done", "randomised"),
    ("randomised", "active"), ("randomised", "completed"), ("active", "completed"),
    *((status, "withdrawn") for status in STORED if status != "withdrawn"),
}


@pytest.fixture
def ctx(app):
    clock.set_time(NOW)
    with app.app_context():
        yield app


def person_at(status: str, *, sms: bool = True) -> Participant:
    """A participant at ``status``, randomised through the real sequence when the status
    is past randomisation."""
    study = make_trial(strata=["site"])
    open_enrolment(study, actor=researcher(), seed="path-tests")
    person = at_baseline(study, "T-0001", account=True)
    person.phone, person.sms_consent = "+447700900123", sms
    person.enrolled_at = NOW - timedelta(days=30)
    if status in ("randomised", "active", "completed"):
        randomise(person, actor=researcher(), strata={})
        for step in {"randomised": [], "active": ["active"],
                     "completed": ["active", "completed"]}[status]:
            transition(person, step, actor=researcher())
    else:
        person.status = status
    db.session.commit()
    return person


def audit_actions(person: Participant) -> list[tuple[str, dict]]:
    return [(e.action, e.detail) for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.target_type == "participant",
                                 AuditEntry.target_id == person.id).order_by(AuditEntry.seq))]


# --- the transition table ---------------------------------------------------------------

def test_the_table_allows_exactly_the_path():
    """It allows the forward steps of the path, randomised → completed, and withdrawal
    from every status but withdrawn; nothing else."""
    allowed = {(a, b) for a in STORED for b in STORED if path.can_move(a, b)}
    assert allowed == ALLOWED


@pytest.mark.parametrize("current, to", sorted(
    (a, b) for a in STORED for b in STORED if (a, b) not in ALLOWED))
def test_every_move_outside_the_table_is_refused_with_a_reason(ctx, current, to):
    """It refuses the move, says why in a sentence, and changes nothing."""
    person = make_participant(name=None)
    person.status = current
    db.session.commit()
    with pytest.raises(TrialError) as refused:
        transition(person, to, actor=researcher())
    message = str(refused.value)
    assert message.startswith("A participant who ") and " cannot be " in message
    assert message.endswith(".")
    db.session.rollback()
    assert db.session.get(Participant, person.id).status == current
    assert db.session.scalars(select(StatusChange)).all() == []


@pytest.mark.parametrize("current, to, message", [
    ("invited", "randomised",
     "A participant who is invited cannot be randomised: they have not consented yet."),
    ("consented", "randomised", "A participant who has consented cannot be randomised: "
                                "their baseline questionnaires are not complete yet."),
    ("invited", "completed", "A participant who is invited cannot be marked as completed: "
                             "they have not consented yet."),
    ("baseline_done", "active", "A participant who has done the baseline questionnaires "
                                "cannot be marked as active: they have not been randomised yet."),
    ("active", "consented", "A participant who is active cannot be marked as consented: the "
                            "path only moves forward."),
    ("withdrawn", "active", "A participant who has withdrawn from the study cannot be marked "
                            "as active: they have withdrawn from the study."),
    ("completed", "completed", "A participant who has completed the study cannot be marked as "
                               "completed: that is already their status."),
])
def test_refusals_name_the_missing_step(ctx, current, to, message):
    person = make_participant(name=None)
    person.status = current
    with pytest.raises(TrialError) as refused:
        transition(person, to, actor=researcher())
    assert str(refused.value) == message


@pytest.mark.parametrize("current, to", [("invited", "consented"),
                                         ("consented", "baseline_done"),
                                         ("randomised", "active"), ("randomised", "completed"),
                                         ("active", "completed")])
def test_allowed_moves_are_made_dated_and_audited(ctx, current, to):
    """It moves the status, dates it, keeps a history row and audits old and new."""
    person = make_participant(name=None)
    person.status = current
    db.session.commit()
    clock.set_time(NOW + timedelta(hours=3))
    change = transition(person, to, actor=researcher(), reason="Paper questionnaires returned")
    db.session.commit()
    assert (person.status, person.status_changed_at) == (to, NOW + timedelta(hours=3))
    assert (change.from_status, change.to_status, change.at, change.reason) == (
        current, to, NOW + timedelta(hours=3), "Paper questionnaires returned")
    assert audit_actions(person)[-1] == ("participant.status", {"old": current, "new": to})


def test_randomised_and_withdrawn_are_reached_only_through_their_services(ctx):
    """It sends a plain move to "randomised" to the allocation sequence and one to
    "withdrawn" to the withdrawal form, which record what those need."""
    person = make_participant(name=None)
    person.status = "baseline_done"
    with pytest.raises(TrialError, match="through the allocation sequence"):
        transition(person, "randomised", actor=researcher())
    with pytest.raises(TrialError, match="Record a withdrawal from the study"):
        transition(person, "withdrawn", actor=researcher())


def test_lost_to_follow_up_cannot_be_set_by_hand(ctx):
    person = make_participant(name=None)
    with pytest.raises(TrialError, match="worked out from activity"):
        transition(person, "lost_to_follow_up", actor=researcher())
    with pytest.raises(TrialError, match="not a participant status"):
        transition(person, "paused", actor=researcher())


def test_manual_moves_offered_follow_the_table(ctx):
    person = make_participant(name=None)
    expected = {"invited": [], "consented": ["baseline_done"], "baseline_done": [],
                "randomised": ["active", "completed"], "active": ["completed"],
                "completed": [], "withdrawn": []}
    for status, moves in expected.items():
        person.status = status
        assert path.moves_for(person) == moves, status


# --- withdrawal from the intervention -----------------------------------------------------

def test_withdrawing_from_the_intervention_stops_it_but_keeps_follow_up(ctx):
    """It keeps the status, switches modules, points, forum and check-ins off, keeps SMS
    prompts and contact, and records the date and reason."""
    person = person_at("active")
    assert services.features_for(person.user)["forum"] is True
    row = withdraw(person, "intervention", actor=researcher(), reason=REASON)
    db.session.commit()
    assert person.status == "active"
    assert services.features_for(person.user) == {
        "modules": False, "gamification": False, "forum": False, "checkins": False, "sms": True}
    assert person.sms_consent is True
    assert path.may_contact(person) and not path.receives_intervention(person)
    assert (row.kind, row.at, row.reason, row.recorded_by_id) == (
        "intervention", NOW, REASON, researcher().id)
    assert audit_actions(person)[-1] == ("participant.withdrawn", {
        "kind": "intervention", "withdrawal_id": row.id, "at": "2026-03-04"})


def test_only_a_randomised_participant_can_stop_the_intervention(ctx):
    person = person_at("baseline_done")
    with pytest.raises(TrialError, match="no intervention to stop. Record a withdrawal from "
                                         "the study instead."):
        withdraw(person, "intervention", actor=researcher(), reason=REASON)


def test_withdrawing_from_the_intervention_twice_is_refused(ctx):
    person = person_at("randomised")
    withdraw(person, "intervention", actor=researcher(), reason=REASON)
    with pytest.raises(TrialError, match="already withdrawn from the intervention"):
        withdraw(person, "intervention", actor=researcher(), reason=REASON)


# --- withdrawal from the study ------------------------------------------------------------

def test_withdrawing_from_the_study_stops_everything_but_keeps_sign_in(ctx):
    """It sets the status to withdrawn on the date given, switches every feature off,
    clears SMS consent, and leaves the account able to sign in."""
    person = person_at("active")
    when = NOW - timedelta(days=2)
    row = withdraw(person, "study", actor=researcher(), reason=REASON, at=when)
    db.session.commit()
    assert (person.status, person.status_changed_at) == ("withdrawn", when)
    assert services.features_for(person.user) == dict.fromkeys(services.FEATURES, False)
    assert person.sms_consent is False
    assert not path.may_contact(person) and not path.receives_intervention(person)
    assert person.user.is_enabled and person.user.is_active
    history = db.session.scalars(select(StatusChange).order_by(StatusChange.id)).all()
    assert (history[-1].from_status, history[-1].to_status, history[-1].at) == (
        "active", "withdrawn", when)
    assert audit_actions(person)[-2:] == [
        ("participant.status", {"old": "active", "new": "withdrawn"}),
        ("participant.withdrawn", {"kind": "study", "withdrawal_id": row.id,
                                   "at": "2026-03-02"})]


def test_withdrawing_an_invited_participant_revokes_their_invite(ctx):
    """It cancels an open invite link so the account cannot be set up afterwards."""
    study = make_trial(strata=["site"])
    issued = accounts.enrol_participant(study, actor=researcher(), study_code="T-0009")
    db.session.commit()
    person = issued.invite.participant
    withdraw(person, "study", actor=researcher(), reason=REASON)
    db.session.commit()
    assert db.session.get(Invite, issued.invite.id).state(NOW) == "revoked"
    with pytest.raises(accounts.AccountError, match="expired"):
        accounts.find_invite(issued.token)


def test_withdrawing_from_the_study_twice_is_refused(ctx):
    person = person_at("consented")
    withdraw(person, "study", actor=researcher(), reason=REASON)
    for kind in ("study", "intervention"):
        with pytest.raises(TrialError, match="already withdrawn from the study"):
            withdraw(person, kind, actor=researcher(), reason=REASON)


def test_a_participant_withdrawn_from_the_intervention_can_then_leave_the_study(ctx):
    person = person_at("active")
    withdraw(person, "intervention", actor=researcher(), reason=REASON)
    withdraw(person, "study", actor=researcher(), reason="Moved abroad.")
    assert [w.kind for w in path.withdrawals_of(person)] == ["intervention", "study"]
    assert person.status == "withdrawn"


# --- withdrawal from text messages ----------------------------------------------------------

def test_withdrawing_from_sms_only_clears_sms_consent(ctx):
    """It clears SMS consent and nothing else: status, features and contact stay."""
    person = person_at("active")
    before = services.features_for(person.user)
    row = withdraw(person, "sms", actor=researcher(), reason=REASON)
    db.session.commit()
    assert (person.status, person.sms_consent) == ("active", False)
    assert services.features_for(person.user) == before
    assert path.may_contact(person) and path.receives_intervention(person)
    assert audit_actions(person)[-1] == ("participant.withdrawn", {
        "kind": "sms", "withdrawal_id": row.id, "at": "2026-03-04"})


def test_withdrawing_from_sms_without_sms_is_refused(ctx):
    person = person_at("active", sms=False)
    with pytest.raises(TrialError, match="does not receive text messages"):
        withdraw(person, "sms", actor=researcher(), reason=REASON)


# --- rules common to every withdrawal -------------------------------------------------------

@pytest.mark.parametrize("kind, reason, at, field, message", [
    ("holiday", REASON, None, "kind", "Choose what the participant is withdrawing from."),
    ("study", "   ", None, "reason", "Give the reason for the withdrawal."),
    ("study", REASON, NOW + timedelta(minutes=5), "day", "cannot be in the future"),
    ("study", REASON, datetime(2020, 1, 1, tzinfo=UTC), "day",
     "cannot be before the participant was enrolled"),
])
def test_bad_withdrawals_are_refused_naming_the_field(ctx, kind, reason, at, field, message):
    person = person_at("active")
    with pytest.raises(TrialError, match=message) as refused:
        withdraw(person, kind, actor=researcher(), reason=reason, at=at)
    assert refused.value.field == field
    db.session.rollback()
    assert db.session.scalars(select(Withdrawal)).all() == []
    assert db.session.get(Participant, person.id).status == "active"


def test_who_may_record_a_withdrawal(ctx):
    """Researchers, admins and the participant themselves; not moderators."""
    person = person_at("active")
    with pytest.raises(PermissionDenied):
        withdraw(person, "sms", actor=make_staff(Role.CLINICIAN), reason=REASON)
    row = withdraw(person, "sms", actor=person.user, reason="Replied that texts are too many.")
    assert row.recorded_by_id == person.user_id
    withdraw(person, "intervention", actor=make_staff(Role.ADMIN), reason=REASON)


def test_reasons_never_reach_the_audit_log(ctx):
    """It keeps staff-written reasons in their own columns, out of every audit entry."""
    person = person_at("active")
    withdraw(person, "sms", actor=researcher(), reason="Reason one: sister in hospital.")
    withdraw(person, "intervention", actor=researcher(), reason="Reason two.")
    withdraw(person, "study", actor=researcher(), reason="Reason three.")
    everything = json.dumps([e.detail for e in db.session.scalars(select(AuditEntry))])
    assert "Reason" not in everything and "sister" not in everything


def test_withdrawal_dates_are_days_in_the_study_time_zone(ctx):
    """It reads a day given on the form as the start of that day in the study's zone (now
    for today), but never earlier than the enrolment on the day of enrolment."""
    person = person_at("active")
    person.enrolled_at = datetime(2026, 2, 10, 15, 30, tzinfo=UTC)
    assert path.withdrawal_time(person, None, now=NOW) == NOW
    assert path.withdrawal_time(person, date(2026, 3, 4), now=NOW) == NOW
    # 1 March in London is UTC+0; 1 July would be UTC+1
    assert path.withdrawal_time(person, date(2026, 3, 1), now=NOW) == datetime(
        2026, 3, 1, 0, 0, tzinfo=UTC)
    later = datetime(2026, 7, 5, 9, 0, tzinfo=UTC)
    assert path.withdrawal_time(person, date(2026, 7, 1), now=later) == datetime(
        2026, 6, 30, 23, 0, tzinfo=UTC)
    assert path.withdrawal_time(person, date(2026, 2, 10), now=NOW) == person.enrolled_at


# --- lost to follow-up ----------------------------------------------------------------------

def test_lost_to_follow_up_starts_exactly_n_days_after_the_last_activity(ctx):
    """It counts whole 24-hour periods since the last activity event: not lost one
    second before the 28th day is over, lost from that moment on."""
    person = person_at("active")
    last = NOW + timedelta(days=3, hours=5)
    record_event(person, "login", at=last)
    db.session.commit()
    boundary = last + timedelta(days=28)
    assert not path.is_lost_to_follow_up(person, now=boundary - timedelta(seconds=1))
    assert path.is_lost_to_follow_up(person, now=boundary)
    assert not path.is_lost_to_follow_up(person, now=boundary, days=29)


def test_randomisation_starts_the_clock_when_there_is_no_later_activity(ctx):
    person = person_at("randomised")
    assert not path.is_lost_to_follow_up(person, now=NOW + timedelta(days=27, hours=23))
    assert path.is_lost_to_follow_up(person, now=NOW + timedelta(days=28))


@pytest.mark.parametrize("status", ["consented", "baseline_done", "completed"])
def test_only_people_in_follow_up_can_be_lost(ctx, status):
    person = person_at(status)
    assert not path.is_lost_to_follow_up(person, now=NOW + timedelta(days=400))


def test_withdrawn_participants_are_not_lost_but_intervention_withdrawals_can_be(ctx):
    person = person_at("active")
    withdraw(person, "intervention", actor=researcher(), reason=REASON)
    assert path.is_lost_to_follow_up(person, now=NOW + timedelta(days=30))
    withdraw(person, "study", actor=researcher(), reason=REASON)
    assert not path.is_lost_to_follow_up(person, now=NOW + timedelta(days=30))


def test_the_dashboard_counts_lost_to_follow_up_by_arm_at_the_day_boundary(ctx):
    """It works the count out from live activity each time, by arm, and leaves the
    enrolled total alone."""
    study = make_trial(strata=["site"])
    open_enrolment(study, actor=researcher(), seed="dashboard")
    people = []
    for n in range(3):
        person = at_baseline(study, f"T-{n + 1:04d}")
        randomise(person, actor=researcher(), strata={})
        people.append(person)
    record_event(people[2], "login", at=NOW + timedelta(days=10))
    db.session.commit()
    at_boundary = services.dashboard(study, now=NOW + timedelta(days=28))
    assert at_boundary.by_status["lost_to_follow_up"] == 2
    assert at_boundary.total == 3
    by_arm = {arm.id: at_boundary.by_arm_status.get((arm.id, "lost_to_follow_up"), 0)
              for arm in study.arms}
    expected: dict[int, int] = {}
    for person in people[:2]:
        expected[person.arm_id] = expected.get(person.arm_id, 0) + 1
    assert {k: v for k, v in by_arm.items() if v} == expected
    before = services.dashboard(study, now=NOW + timedelta(days=28) - timedelta(seconds=1))
    assert before.by_status.get("lost_to_follow_up", 0) == 0
    later = services.dashboard(study, now=NOW + timedelta(days=38))
    assert later.by_status["lost_to_follow_up"] == 3
