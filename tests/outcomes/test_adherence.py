"""Adherence and dropout metrics on constructed activity histories: each figure exact,
time-zone day boundaries, period and week boundaries, no activity, withdrawals, the
codebook, and a query count that does not grow with the number of participants."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import clock
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant
from modules.models import Award, StepProgress
from outcomes import adherence
from outcomes.adherence import sources, summary
from outcomes.adherence.definitions import DEFINITIONS, INTERVENTION_KINDS, USE_KINDS
from outcomes.models import Arm, Withdrawal
from tests.factories import make_participant, make_study
from tests.modules.content_rows import count_queries, make_module, steps_of

#: randomisation: Monday 2 March 2026, 15:00 UTC (10:00 in New York, 20:30 in Kolkata)
R = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def ctx(app):
    clock.set_time(R + 30 * DAY)
    with app.app_context():
        make_study()
        yield


def person(code: str = "T-0001", *, arm: str = "guided", tz: str = "UTC",
           randomised_at: datetime | None = R) -> Participant:
    someone = make_participant(code=code, name=None, arm=arm)
    someone.timezone, someone.randomised_at = tz, randomised_at
    someone.status = "active" if randomised_at else "baseline_done"
    someone.enrolled_at = R - 10 * DAY
    db.session.commit()
    return someone


def events(who: Participant, *pairs: tuple[str, datetime], **detail: Any) -> None:
    """Activity rows written directly: some kinds belong to packages not installed here."""
    for kind, at in pairs:
        db.session.add(ActivityEvent(participant_id=who.id, kind=kind, at=at, detail=detail))
    db.session.commit()


def figures(who: Participant, *, now: datetime, **options: Any) -> adherence.Adherence:
    return adherence.adherence([who.id], now=now, **options)[who.id]


def set_feature(code: str, name: str, on: bool) -> None:
    arm = db.session.scalar(db.select(Arm).where(Arm.code == code))
    arm.features = {**arm.features, name: on}
    db.session.commit()


# --- no activity, counts, periods -------------------------------------------------------

def test_a_participant_without_any_activity_has_zeros_and_stops_using_after_14_days(ctx):
    who = person()
    just_before = figures(who, now=R + 14 * DAY - timedelta(seconds=1))
    assert (just_before.active_days, just_before.active_weeks, just_before.logins) == (0, 0, 0)
    assert (just_before.posts, just_before.comments, just_before.reactions) == (0, 0, 0)
    assert just_before.moderator_contacts == 0 and just_before.received_intervention is False
    assert just_before.last_active_at is None and just_before.days_without_use == 13
    assert just_before.stopped_using is False
    # week 3 began at local midnight of 16 March, before R + 14 days (15:00)
    assert just_before.weeks_in_period == 3 and just_before.withdrawn_from == ""
    at_boundary = figures(who, now=R + 14 * DAY)
    assert at_boundary.stopped_using is True and at_boundary.days_without_use == 14


def test_unrandomised_participants_and_the_moment_of_randomisation_are_left_out(ctx):
    waiting = person("T-0002", randomised_at=None)
    who = person()
    assert adherence.adherence([waiting.id, who.id], now=R) == {}
    assert list(adherence.adherence([waiting.id, who.id], now=R + DAY)) == [who.id]
    assert adherence.adherence([], now=R) == {}


def test_each_kind_is_counted_in_the_period_only(ctx):
    """It counts events from randomisation up to the period end, the end excluded, and
    leaves out what happened before randomisation."""
    who = person()
    end = R + 10 * DAY
    events(who, ("login", R - timedelta(minutes=5)), ("login", R), ("login", R + DAY),
           ("post_written", R + 2 * DAY), ("post_written", R + 3 * DAY),
           ("comment_written", R + 3 * DAY), ("reaction_given", R + 4 * DAY),
           ("reaction_given", R + 4 * DAY), ("reaction_given", R + 5 * DAY),
           ("moderator_contact", R + 6 * DAY), ("login", end),
           ("post_written", end + DAY))
    got = figures(who, now=end)
    assert (got.logins, got.posts, got.comments, got.reactions) == (2, 2, 1, 3)
    assert got.moderator_contacts == 1
    assert got.period_start == R and got.period_end == end


def test_system_awards_and_contacts_received_are_not_use(ctx):
    """Points, badges, levels, randomisation, a moderator's contact, SMS replies and
    questionnaires make no day active and do not keep a participant "using"."""
    who = person()
    at = R + DAY
    events(who, ("points_awarded", at), ("badge_awarded", at), ("level_reached", at),
           ("randomised", at), ("moderator_contact", at), ("helpful_received", at),
           ("sms_answered", at), ("assessment_completed", at), ("timepoint_completed", at))
    got = figures(who, now=R + 20 * DAY)
    assert got.active_days == 0 and got.last_active_at is None
    assert got.stopped_using is True and got.days_without_use == 20
    assert got.moderator_contacts == 1
    assert adherence.weekly([who.id], now=R + 2 * DAY)[who.id][0].sms_answered == 1
    assert not {"points_awarded", "badge_awarded", "moderator_contact", "sms_answered",
                "assessment_completed", "randomised"} & USE_KINDS
    assert "login" not in INTERVENTION_KINDS and INTERVENTION_KINDS < USE_KINDS


def test_use_before_randomisation_counts_for_the_last_use_but_not_the_period(ctx):
    who = person()
    events(who, ("login", R - DAY))
    got = figures(who, now=R + 14 * DAY)
    assert got.last_active_at == R - DAY and got.active_days == 0
    assert got.days_without_use == 14 and got.stopped_using is True


def test_stopped_using_counts_from_the_last_use_and_n_is_configurable(ctx):
    who = person()
    events(who, ("mood_logged", R + 5 * DAY))
    assert figures(who, now=R + 19 * DAY - timedelta(seconds=1)).stopped_using is False
    at_14 = figures(who, now=R + 19 * DAY)
    assert at_14.stopped_using is True and at_14.days_without_use == 14
    assert figures(who, now=R + 19 * DAY, stopped_after_days=21).stopped_using is False
    assert figures(who, now=R + 26 * DAY, stopped_after_days=21).stopped_using is True


# --- days and weeks in the participant's time zone ---------------------------------------------

def test_active_days_are_local_calendar_days(ctx):
    """Two events an hour apart on one UTC day fall on two New York days; two events on two
    UTC days fall on one Kolkata day (UTC+5:30)."""
    new_york = person("T-0001", tz="America/New_York")
    kolkata = person("T-0002", tz="Asia/Kolkata")
    in_utc = person("T-0003")
    before_midnight_ny = datetime(2026, 3, 4, 4, 30, tzinfo=UTC)   # 3 Mar 23:30 EST
    after_midnight_ny = datetime(2026, 3, 4, 5, 30, tzinfo=UTC)    # 4 Mar 00:30 EST
    for who in (new_york, in_utc):
        events(who, ("login", before_midnight_ny), ("step_completed", after_midnight_ny))
    late_utc = datetime(2026, 3, 4, 20, 0, tzinfo=UTC)             # 5 Mar 01:30 IST
    next_utc = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)             # 5 Mar 15:30 IST
    events(kolkata, ("login", late_utc), ("mood_logged", next_utc))
    got = adherence.adherence([new_york.id, kolkata.id, in_utc.id], now=R + 8 * DAY)
    assert got[new_york.id].active_days == 2
    assert got[in_utc.id].active_days == 1
    assert got[kolkata.id].active_days == 1


def test_trial_weeks_start_on_the_local_day_of_randomisation(ctx):
    """Week 1 is the local day of randomisation and the six after it: in Kolkata R falls on
    2 March 20:30, so week 2 begins at local midnight of 9 March (18:30 UTC on 8 March)."""
    who = person(tz="Asia/Kolkata")
    week_2_starts = datetime(2026, 3, 8, 18, 30, tzinfo=UTC)
    events(who, ("login", week_2_starts - timedelta(seconds=1)), ("login", week_2_starts),
           ("login", week_2_starts + 7 * DAY))
    weeks = adherence.weekly([who.id], now=week_2_starts + 7 * DAY + timedelta(hours=1))[who.id]
    assert [w.week for w in weeks] == [1, 2, 3]
    assert [w.logins for w in weeks] == [1, 1, 1]
    assert weeks[0].period_start == R and weeks[0].period_end == week_2_starts
    assert weeks[1].period_start == week_2_starts
    assert weeks[1].period_end == week_2_starts + 7 * DAY
    assert weeks[2].period_end == week_2_starts + 7 * DAY + timedelta(hours=1)
    assert [w.active_weeks for w in weeks] == [1, 1, 1]
    assert [w.weeks_in_period for w in weeks] == [1, 1, 1]
    whole = figures(who, now=week_2_starts + 7 * DAY + timedelta(hours=1))
    assert (whole.active_days, whole.active_weeks, whole.weeks_in_period) == (3, 3, 3)


def test_week_boundaries_follow_the_clock_change(ctx):
    """London moves to summer time on 29 March 2026: week 5 begins at local midnight of
    30 March, which is 23:00 UTC on 29 March."""
    who = person(tz="Europe/London")
    week_5 = datetime(2026, 3, 29, 23, 0, tzinfo=UTC)
    half = timedelta(minutes=30)
    events(who, ("login", week_5 - half), ("login", week_5 + half))
    weeks = adherence.weekly([who.id], now=week_5 + DAY)[who.id]
    assert weeks[3].period_end == week_5 == weeks[4].period_start
    assert (weeks[3].logins, weeks[4].logins) == (1, 1)
    assert (weeks[3].active_days, weeks[4].active_days) == (1, 1)
    assert weeks[2].period_end - weeks[2].period_start == 7 * DAY
    assert weeks[3].period_end - weeks[3].period_start == 7 * DAY - timedelta(hours=1)


def test_active_weeks_count_weeks_with_any_use(ctx):
    who = person()
    events(who, ("login", R + DAY), ("login", R + 2 * DAY), ("reaction_given", R + 15 * DAY))
    got = figures(who, now=R + 22 * DAY)
    assert (got.active_days, got.active_weeks, got.weeks_in_period) == (3, 2, 4)


# --- steps and modules -----------------------------------------------------------------------

def done(who: Participant, step, at: datetime) -> None:
    db.session.add(StepProgress(participant_id=who.id, step_id=step.id, completed_at=at))
    db.session.commit()


@pytest.fixture
def library(ctx):
    """A (core, 2 steps, open), B (core, 2 steps, after A), C (not core, 3 steps, week 3),
    D (core, 1 step, level 2)."""
    modules = {
        "a": make_module("mod-a", kinds=("read", "read"), position=1),
        "b": make_module("mod-b", kinds=("read", "read"), position=2, unlock={"after": "mod-a"}),
        "c": make_module("mod-c", kinds=("read", "read", "read"), position=3,
                         unlock={"week": 3}, core=False),
        "d": make_module("mod-d", kinds=("read",), position=4, unlock={"level": 2}),
    }
    db.session.commit()
    return modules


def test_adherence_ratio_is_steps_done_of_steps_open_at_the_period_end(library):
    who = person()
    a, b = steps_of(library["a"]), steps_of(library["b"])
    done(who, a[0], R + DAY)
    done(who, a[1], R + 2 * DAY)
    done(who, b[0], R + 3 * DAY)
    early = figures(who, now=R + 4 * DAY)
    assert (early.steps_completed, early.steps_available) == (3, 4)
    assert early.adherence_ratio == 0.75
    assert (early.modules_completed, early.modules_available) == (1, 2)
    assert early.module_adherence_ratio == 0.5
    assert (early.core_modules_completed, early.core_modules_total) == (1, 3)
    assert early.all_core_completed is False
    assert early.received_intervention is False  # progress rows alone are not events
    # module C opens at the start of trial week 3 (14 days after randomisation)
    assert figures(who, now=R + 14 * DAY - timedelta(seconds=1)).steps_available == 4
    later = figures(who, now=R + 14 * DAY)
    assert (later.steps_available, later.modules_available) == (7, 3)
    assert later.adherence_ratio == pytest.approx(3 / 7)
    # at the end of week 1 only what was done by then counts
    week_1 = adherence.weekly([who.id], now=R + 8 * DAY)[who.id][0]
    assert week_1.steps_completed == 3 and week_1.steps_completed_in_period == 3


def test_a_level_opens_a_module_only_with_gamification(library):
    who = person()
    db.session.add(Award(participant_id=who.id, kind="points", key="x", points=100,
                         at=R + 5 * DAY))
    db.session.commit()
    assert figures(who, now=R + 5 * DAY).steps_available == 2
    assert figures(who, now=R + 6 * DAY).steps_available == 3
    set_feature("guided", "gamification", False)
    who_without = person("T-0002")
    assert figures(who_without, now=R + DAY).steps_available == 3


def test_all_core_modules_completed_by_steps_or_by_the_completion_event(library):
    who = person()
    for step in steps_of(library["a"]) + steps_of(library["b"]):
        done(who, step, R + DAY)
    events(who, ("module_completed", R + 2 * DAY), module="mod-d")
    got = figures(who, now=R + 3 * DAY)
    assert got.core_modules_completed == 3 and got.all_core_completed is True
    assert figures(who, now=R + 2 * DAY).all_core_completed is False


def test_steps_before_randomisation_count_towards_the_ratio_not_the_period(library):
    who = person()
    done(who, steps_of(library["a"])[0], R - DAY)
    got = figures(who, now=R + DAY)
    assert (got.steps_completed, got.steps_completed_in_period) == (1, 0)


def test_an_arm_without_modules_has_no_ratio(library):
    set_feature("self", "modules", False)
    who = person(arm="self")
    got = figures(who, now=R + DAY)
    assert got.steps_available == 0 and got.adherence_ratio is None
    assert got.module_adherence_ratio is None and got.all_core_completed is None


def test_received_intervention_needs_an_intervention_event_after_randomisation(ctx):
    only_logins = person("T-0001")
    events(only_logins, ("login", R + DAY))
    before = person("T-0002")
    events(before, ("step_completed", R - DAY))
    after = person("T-0003")
    events(after, ("reaction_given", R + DAY))
    got = adherence.adherence([only_logins.id, before.id, after.id], now=R + 2 * DAY)
    assert [got[p.id].received_intervention for p in (only_logins, before, after)] == [
        False, False, True]
    assert figures(after, now=R + DAY).received_intervention is False


# --- withdrawals, dropout, outcome sources ------------------------------------------------

def withdraw(who: Participant, kind: str, at: datetime) -> None:
    db.session.add(Withdrawal(participant_id=who.id, kind=kind, at=at, reason="test"))
    if kind == "study":
        who.status = "withdrawn"
    db.session.commit()


def test_withdrawn_participants_keep_their_figures_and_show_their_withdrawals(ctx):
    who = person()
    events(who, ("login", R + DAY), ("step_completed", R + 2 * DAY))
    withdraw(who, "intervention", R + 3 * DAY)
    withdraw(who, "study", R + 5 * DAY)
    got = figures(who, now=R + 20 * DAY)
    assert got.withdrawn_from == "intervention, study"
    assert got.logins == 1 and got.received_intervention is True
    assert got.stopped_using is True and got.days_without_use == 18
    assert figures(who, now=R + 4 * DAY).withdrawn_from == "intervention"
    assert got.post_treatment_completed is None or isinstance(got.post_treatment_completed, bool)


def test_without_a_post_treatment_timepoint_dropout_is_not_known(ctx, monkeypatch):
    monkeypatch.setattr(sources, "_load_post_treatment", lambda *a, **k: None)
    got = figures(person(), now=R + DAY)
    assert got.post_treatment_completed is None and got.study_dropout is None


def fake_schedule(monkeypatch, closes: dict[int, datetime | None] | None,
                  done: set[int] | None = None) -> None:
    """Stand in for the assessment schedule's answers (another package's)."""
    def load(snapshot, ids, *, end, study):
        snapshot.post_treatment_key = "week12"
        snapshot.post_treatment_closes = closes
        snapshot.post_treatment_done = done or set()
    monkeypatch.setattr(sources, "_load_post_treatment", load)


def test_study_dropout_is_kept_apart_from_stopped_using(ctx, monkeypatch):
    """Stopped using but assessed: not a dropout. Assessed by event: completed. Window
    closed without it: dropout. Withdrawn from the study: dropout at once."""
    assessed, missed, withdrawn, pending = (person(f"T-000{n}") for n in range(1, 5))
    closes = R + 90 * DAY
    fake_schedule(monkeypatch, {p.id: closes for p in (assessed, missed, withdrawn, pending)})
    events(assessed, ("timepoint_completed", R + 85 * DAY), timepoint="week12")
    events(missed, ("timepoint_completed", R + 85 * DAY), timepoint="baseline")
    withdraw(withdrawn, "study", R + 10 * DAY)
    ids = [assessed.id, missed.id, withdrawn.id, pending.id]
    got = adherence.adherence(ids, now=closes)
    assert got[assessed.id].stopped_using is True
    assert got[assessed.id].post_treatment_completed is True
    assert got[assessed.id].study_dropout is False
    assert got[missed.id].study_dropout is True
    assert got[withdrawn.id].study_dropout is True
    earlier = adherence.adherence(ids, now=closes - timedelta(seconds=1))
    assert earlier[pending.id].study_dropout is False
    assert earlier[withdrawn.id].study_dropout is True


def test_dropout_is_not_known_when_the_window_cannot_be_worked_out(ctx, monkeypatch):
    fake_schedule(monkeypatch, None)
    who = person()
    assert figures(who, now=R + DAY).study_dropout is None
    withdraw(who, "study", R + 2 * DAY)
    assert figures(who, now=R + 3 * DAY).study_dropout is True


def test_sms_and_assessment_figures_come_from_their_packages(ctx, monkeypatch):
    who = person()
    events(who, ("sms_answered", R + DAY), ("sms_answered", R + 8 * DAY))
    calls = []

    def optional(module: str, name: str):
        if name == "response_rates":
            def response_rates(ids, *, start=None, end=None):
                calls.append((sorted(ids), end))
                return {who.id: (3, 4)}
            return response_rates
        if name == "assessments_done":
            return lambda ids: {who.id: (2, 3)}
        return None

    monkeypatch.setattr(sources, "optional", optional)
    got = figures(who, now=R + 10 * DAY)
    assert (got.sms_answered, got.sms_delivered, got.sms_response_rate) == (3, 4, 0.75)
    assert (got.assessments_completed, got.assessments_due) == (2, 3)
    assert calls == [([who.id], R + 10 * DAY)]
    weeks = adherence.weekly([who.id], now=R + 10 * DAY)[who.id]
    assert [w.sms_answered for w in weeks] == [1, 1]
    assert {w.sms_response_rate for w in weeks} == {None}
    assert {w.assessments_due for w in weeks} == {None}


def test_without_the_sms_package_answers_are_counted_from_events(ctx, monkeypatch):
    monkeypatch.setattr(sources, "optional", lambda module, name: None)
    who = person()
    events(who, ("sms_answered", R + DAY))
    got = figures(who, now=R + 2 * DAY)
    assert got.sms_answered == 1 and got.sms_delivered is None
    assert got.sms_response_rate is None and got.assessments_completed is None


def test_optional_forgives_only_a_missing_package():
    assert sources.optional("outcomes.no_such_package.services", "x") is None
    with pytest.raises(AttributeError, match="outcomes.participants is installed but has no"):
        sources.optional("outcomes.participants", "no_such_name")
    assert sources.optional("outcomes.participants", "withdraw") is not None


# --- codebook and cost -----------------------------------------------------------------------

def test_every_metric_has_a_definition():
    names = {f.name for f in fields(adherence.Adherence)} - {"participant_id"}
    assert names == set(DEFINITIONS)
    for name, item in DEFINITIONS.items():
        assert set(item) == {"label", "type", "values", "definition"}, name
        assert item["type"] in {"integer", "number", "boolean", "datetime", "text"}, name
        assert all(isinstance(v, str) and v.strip() for v in item.values()), name


def history(who: Participant, modules: dict, n: int) -> None:
    events(who, *[("login", R + k * DAY) for k in range(n)],
           ("post_written", R + DAY), ("moderator_contact", R + 2 * DAY))
    events(who, ("module_completed", R + DAY), module="mod-a")
    done(who, steps_of(modules["a"])[0], R + DAY)
    db.session.add(Award(participant_id=who.id, kind="points", key=f"k{who.id}", points=10,
                         at=R + DAY))
    withdraw(who, "sms", R + 3 * DAY)


def test_the_number_of_queries_does_not_grow_with_participants(library):
    few = [person(f"T-{n:04d}") for n in range(2)]
    for n, who in enumerate(few):
        history(who, library, n + 1)
    few_ids = [p.id for p in few]
    db.session.expire_all()
    with count_queries() as small:
        adherence.weekly(few_ids, now=R + 20 * DAY)
    many = [person(f"T-{n:04d}", tz="Asia/Tokyo") for n in range(10, 22)]
    for n, who in enumerate(many):
        history(who, library, n + 1)
    all_ids = few_ids + [p.id for p in many]
    db.session.expire_all()
    with count_queries() as large:
        got = adherence.adherence(all_ids, now=R + 20 * DAY)
    assert len(got) == 14
    assert len(large) == len(small)
    assert len(large) <= 20


# --- summaries ---------------------------------------------------------------------------------

def test_quartiles_match_the_usual_definition():
    """Type 7 (R's default, numpy's linear): 1..4 has Q1 1.75, median 2.5, Q3 3.25."""
    got = summary.distribution([4, None, 1, 3, 2])
    assert (got.n, got.missing, got.minimum, got.maximum) == (4, 1, 1.0, 4.0)
    assert (got.q1, got.median, got.q3) == (1.75, 2.5, 3.25)
    single = summary.distribution([0.5])
    assert (single.q1, single.median, single.q3) == (0.5, 0.5, 0.5)
    empty = summary.distribution([None, None])
    assert (empty.n, empty.missing, empty.median) == (0, 2, None)
    assert summary.distribution([True, False, True]).median == 1.0
    with pytest.raises(ValueError):
        summary.quantile([], 0.5)


def test_histogram_bins_are_half_open_except_the_last():
    got = summary.histogram([0.0, 0.2, 0.19, 0.99, 1.0, None, 1.5, -0.1])
    assert got.counts == [2, 1, 0, 0, 2]
    assert got.edges == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
