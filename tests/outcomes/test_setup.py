"""The study set-up services: the study as YAML and back, problems with their line, and
the change guard before and after enrolment opens (``outcomes.setup``)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from core.accounts import PermissionDenied
from core.audit import AuditEntry
from core.extensions import db
from core.models import Participant
from core.roles import Role
from outcomes import setup
from outcomes.models import Arm, Study
from outcomes.randomisation import open_enrolment, randomise
from tests.factories import make_consent, make_staff, make_study
from tests.outcomes.trial import at_baseline, make_trial, researcher


@pytest.fixture
def study(app):
    with app.app_context():
        make_consent("1.0")
        make_consent("2.0")
        trial = make_trial()
        researcher()
        yield trial


def current() -> dict[str, Any]:
    return setup.study_data(db.session.scalar(select(Study)))


def save(data: dict[str, Any] | str, **kwargs: Any) -> setup.Plan:
    text = data if isinstance(data, str) else setup.to_yaml(data)
    plan = setup.save(db.session.scalar(select(Study)), setup.read_yaml(text),
                      actor=kwargs.pop("actor", researcher()), **kwargs)
    db.session.commit()
    return plan


def refusal(data: dict[str, Any]) -> list[str]:
    with pytest.raises(setup.SetupError) as caught:
        save(data)
    db.session.rollback()
    assert not isinstance(caught.value, setup.NeedsConfirmation)
    return [p.message for p in caught.value.problems]


def problems(text: str) -> list[tuple[int | None, str]]:
    doc = setup.read_yaml(text)
    setup.check(doc)
    return [(p.line, p.message) for p in doc.problems]


def audits(action: str = "study.setup_changed") -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(AuditEntry.seq)))


def open_it() -> None:
    open_enrolment(db.session.scalar(select(Study)), actor=researcher(), seed="setup-tests")
    db.session.commit()


# --- export and round trip --------------------------------------------------------------

def test_export_has_every_section_and_the_study_as_it_is(study):
    data = yaml.safe_load(setup.to_yaml(current()))
    assert list(data)[:3] == ["study", "strata", "arms"]
    assert data["study"]["sites"] == ["North", "South"]
    assert data["strata"] == [{"factor": "site"},
                              {"factor": "baseline_loneliness", "levels": ["high", "low"]}]
    assert [a["code"] for a in data["arms"]] == ["guided", "self"]
    assert data["arms"][1]["features"] == {"modules": True, "gamification": True,
                                           "forum": False, "checkins": False, "sms": True}
    assert data["study"]["consent_version"] is None
    assert "schedule" in data and "sms_protocol" in data  # H2 and H3 are installed


def test_round_trip_export_import_is_a_no_op(study):
    data = current()
    data["study"]["contact"] = "The team.\nWeekdays 9-17."
    data["study"]["consent_version"] = "1.0"
    save(data)
    before = audits()
    text = setup.to_yaml(current())
    plan = save(text)
    assert plan.changes == []
    assert audits() == before
    assert setup.to_yaml(current()) == text
    assert "contact: |-\n    The team.\n    Weekdays 9-17." in text


def test_round_trip_after_enrolment_opened_is_a_no_op_too(study):
    open_it()
    assert save(setup.to_yaml(current())).changes == []


# --- problems with their line -----------------------------------------------------------

def test_a_yaml_syntax_error_gives_its_line(study):
    text = setup.to_yaml(current()).replace("  name: Test study", "  name: [Test study", 1)
    found = problems(text)
    assert len(found) == 1 and found[0][1].startswith("not valid YAML")
    assert found[0][0] is not None and found[0][0] > 3


def line_of(text: str, needle: str, start: int = 0) -> int:
    return text[:text.index(needle, start)].count("\n") + 1


def test_value_problems_name_the_line_and_the_key(study):
    text = setup.to_yaml(current())
    bad = (text.replace("ratio: 1", "ratio: two", 1)
           .replace("timezone: Europe/London", "timezone: Europe/Atlantis")
           .replace("    forum: false", "    forum: maybe")
           .replace("code: self", "code: guided"))
    found = dict((message.split(":")[0] + ":" + message.split(":")[1], line)
                 for line, message in problems(bad))
    assert found["arms.0.ratio: give a whole number from 1 to 20"] == line_of(bad, "ratio: two")
    assert found["study.timezone: 'Europe/Atlantis' is not a time zone name such as Europe/London"
                 ] == line_of(bad, "timezone:")
    assert found["arms.1.features.forum: give true or false"] == line_of(bad, "forum: maybe")
    assert found["arms: two arms have the code 'guided'"] == line_of(
        bad, "code: guided", bad.index("- code: guided") + 5)


def test_unknown_and_missing_keys_are_reported(study):
    text = setup.to_yaml(current())
    bad = (text.replace("    sms: true\n", "    sms: true\n    chat: true\n", 1)
           .replace("  slug: test\n", "  slug: test\n  colour: blue\n")
           .replace("    gamification: true\n", "", 1)
           + "extras: 1\n")
    found = problems(bad)
    messages = [m for _, m in found]
    assert (line_of(bad, "chat: true"),
            "arms.0.features: unknown feature 'chat' (known: modules, gamification, forum, "
            "checkins, sms)") in found
    assert (line_of(bad, "colour"), "study: unknown key 'colour'") in found
    assert "arms.0.features: say whether gamification is on (true or false)" in messages
    assert (line_of(bad, "extras"), "unknown section 'extras' (expected one of study, strata, "
                                    "arms, schedule, sms_protocol)") in found


def test_a_key_given_twice_is_reported_with_both_lines(study):
    text = setup.to_yaml(current()).replace("  slug: test\n", "  slug: test\n  slug: other\n")
    assert problems(text) == [(line_of(text, "slug: other"),
                               f"slug is given twice (first at line {line_of(text, 'slug: t')})")]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["study"].update(consent_version="9.9"),
     "study.consent_version: no published consent version '9.9' (published: 2.0, 1.0)"),
    (lambda d: d["study"].update(consent_version=1.0),
     'study.consent_version: give the version label as text in quotes, e.g. "1.0"'),
    (lambda d: d["study"].update(code_prefix="kin"),
     "study.code_prefix: use 1 to 10 capital letters or digits"),
    (lambda d: d["study"].update(sites=["North", "North"]),
     "study.sites: 'North' is listed twice"),
    (lambda d: d["study"].update(sites=["North", True]),
     "study.sites: True must be text (put it in quotes)"),
    (lambda d: d["study"].update(name=" "), "study.name: must not be empty"),
    (lambda d: d["study"].update(lost_after_days=0),
     "study.lost_after_days: give a whole number from 1 to 365"),
    (lambda d: d["strata"][0].update(levels=["a"]),
     "strata: the levels of site are the study's sites (study.sites); remove levels here"),
    (lambda d: d["strata"].append({"factor": "site"}), "strata: site is listed twice"),
    (lambda d: d["strata"].append({"factor": "Age Group", "levels": ["x"]}),
     "strata: each factor needs a name (factor:) of lower-case letters, digits and "
     "underscores"),
    (lambda d: d.update(arms=[]), "arms: give a list with at least one arm"),
    (lambda d: d["arms"][0].update(code="Guided Arm"),
     "arms.0.code: use a code of lower-case letters, digits, _ or -, at most 30"),
    (lambda d: d["arms"][0].update(ratio=0), "arms.0.ratio: give a whole number from 1 to 20"),
    (lambda d: d["arms"][0].update(ratio=True),
     "arms.0.ratio: give a whole number from 1 to 20"),
    (lambda d: d["study"].update(sites=["x" * 80, "y"]) or d["strata"][1].update(
        levels=["h" * 80]) or d["strata"].append({"factor": "other", "levels": ["z" * 80]}),
     "strata: the factor and level names are too long together to record a stratum; use "
     "shorter names"),
    (lambda d: d.update(schedule=[{"key": "baseline"}]),
     "schedule: timepoint baseline: give a label of at most 80 characters."),
    (lambda d: d.update(sms_protocol={"prompts": "daily"}), "sms_protocol: "),
])
def test_each_rule_of_the_document_is_checked(study, change, message):
    data = current()
    change(data)
    text = setup.to_yaml(data)
    found = [m for _, m in problems(text)]
    assert any(m.startswith(message) for m in found), found
    with pytest.raises(setup.SetupError):
        save(text)


def test_an_empty_or_non_mapping_document_is_refused(study):
    assert problems("") == [(None, "the document is empty")]
    assert problems("- a\n- b\n") == [(1, "the document must be a mapping with the keys study, "
                                          "strata, arms, schedule, sms_protocol")]


# --- before enrolment opens: everything can change ----------------------------------------

def test_before_enrolment_arms_and_strata_can_change_freely(study):
    data = current()
    data["arms"] = [data["arms"][0] | {"ratio": 2, "code": "full"},
                    {"code": "waitlist", "name": "Waiting list", "description": "",
                     "ratio": 1, "features": dict.fromkeys(data["arms"][0]["features"], False)}]
    data["strata"] = [{"factor": "baseline_loneliness", "levels": ["high"]}]
    data["study"]["sites"] = ["East"]
    plan = save(data)
    assert not plan.locked and all(c.level == "ok" for c in plan.changes)
    trial = db.session.scalar(select(Study))
    assert [(a.code, a.ratio, a.has("forum")) for a in trial.arms] == [
        ("full", 2, True), ("waitlist", 1, False)]
    assert trial.strata == ["baseline_loneliness"]
    assert trial.stratum_levels == {"baseline_loneliness": ["high"]}
    assert trial.sites == ["East"]
    assert db.session.scalar(select(func.count(Arm.id))) == 2


def test_the_consent_version_is_chosen_among_published_ones(study):
    data = current()
    data["study"]["consent_version"] = "1.0"
    save(data)
    trial = db.session.scalar(select(Study))
    assert trial.consent_version_id is not None
    assert current()["study"]["consent_version"] == "1.0"


def test_every_save_is_audited_with_what_changed_not_free_text(study):
    data = current()
    data["study"]["contact"] = "Call Ada on 07700 900123"
    data["study"]["name"] = "Secret name"
    data["arms"][0]["description"] = "Private words"
    data["arms"][0]["ratio"] = 2
    data["study"]["sites"].append("East")
    save(data)
    [entry] = audits()
    assert entry.actor_id == researcher().id and entry.target_type == "study"
    assert entry.detail["via"] == "page" and entry.detail["locked"] is False
    changes = {c["field"]: c for c in entry.detail["changes"]}
    assert changes["study.contact"] == {"field": "study.contact"}
    assert changes["study.name"] == {"field": "study.name"}
    assert changes["arms.guided.description"] == {"field": "arms.guided.description"}
    assert changes["arms.guided.ratio"] == {"field": "arms.guided.ratio", "from": 1, "to": 2}
    assert changes["study.sites"] == {"field": "study.sites", "from": None, "to": "East"}
    for secret in ("07700", "Secret name", "Private words"):
        assert secret not in str(entry.detail)


def test_only_researchers_change_the_set_up(study):
    for role in (Role.ADMIN, Role.CLINICIAN, Role.PEER_MODERATOR):
        with pytest.raises(PermissionDenied):
            save(current(), actor=make_staff(role, f"{role.value}-2@example.org"))


def test_a_slug_another_study_uses_is_refused(study):
    make_study(slug="other")
    data = current()
    data["study"]["slug"] = "other"
    assert refusal(data) == ["study.slug: another study already uses 'other'"]


# --- after enrolment opens: the guard ---------------------------------------------------

@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: d["arms"].pop(), "arms: arm 'self' cannot be removed or have its code changed "
                                "once enrolment has opened"),
    (lambda d: d["arms"][1].update(code="solo"), "arms: arm 'self' cannot be removed"),
    (lambda d: d["arms"].append(d["arms"][1] | {"code": "third"}),
     "arms: arm 'third' cannot be added once enrolment has opened"),
    (lambda d: d["arms"][0].update(ratio=2),
     "arms.guided.ratio: the allocation ratio cannot change once enrolment has opened"),
    (lambda d: d["strata"].pop(), "strata: the stratification factors cannot change"),
    (lambda d: d["strata"].reverse(), "strata: the stratification factors cannot change"),
    (lambda d: d["strata"].append({"factor": "age", "levels": ["young", "old"]}),
     "strata: the stratification factors cannot change"),
    (lambda d: d["study"]["sites"].remove("South"),
     "study.sites: 'South' cannot be removed or renamed: it is a stratum with allocation slots"),
    (lambda d: d["study"].update(sites=["North", "South clinic"]),
     "study.sites: 'South' cannot be removed or renamed"),
    (lambda d: d["strata"][1].update(levels=["high"]),
     "strata.baseline_loneliness: 'low' cannot be removed or renamed"),
])
def test_after_enrolment_opens_changes_that_break_allocation_are_refused(study, change, reason):
    open_it()
    data = current()
    change(data)
    found = refusal(data)
    assert any(message.startswith(reason) for message in found), found
    assert all("allocation sequence is made from" in message for message in found)
    assert audits() == []
    assert current() == setup.study_data(db.session.scalar(select(Study)))


def test_the_same_changes_are_allowed_before_enrolment_opens(study):
    data = current()
    data["arms"][0]["ratio"] = 2
    data["strata"].reverse()
    data["study"]["sites"].remove("South")
    assert all(c.level == "ok" for c in save(data).changes)


def test_a_refusal_gives_the_line_of_the_field(study):
    open_it()
    data = current()
    data["arms"][1]["ratio"] = 3
    text = setup.to_yaml(data)
    with pytest.raises(setup.SetupError) as caught:
        save(text)
    [problem] = caught.value.problems
    assert problem.line == line_of(text, "ratio: 3")


def test_after_enrolment_opens_harmless_changes_are_saved(study):
    open_it()
    data = current()
    data["study"].update(name="Renamed", contact="New contact", consent_version="2.0",
                         code_prefix="NEW", randomise_on_baseline=True)
    data["study"]["sites"].append("East")
    data["strata"][1]["levels"].append("medium")
    data["arms"][0].update(name="Kinship plus", description="Now described.")
    plan = save(data)
    assert plan.locked and {c.level for c in plan.changes} == {"ok"}
    trial = db.session.scalar(select(Study))
    assert trial.sites == ["North", "South", "East"]
    assert trial.stratum_levels["baseline_loneliness"] == ["high", "low", "medium"]
    assert trial.arms[0].name == "Kinship plus"
    # a level added after opening has no slots yet, so it can be taken out again
    data["strata"][1]["levels"].remove("medium")
    data["study"]["sites"].remove("East")
    assert {c.level for c in save(data).changes} == {"ok"}


def test_after_enrolment_opens_a_feature_switch_needs_confirming(study):
    open_it()
    data = current()
    data["arms"][1]["features"]["forum"] = True
    with pytest.raises(setup.NeedsConfirmation) as caught:
        save(data)
    db.session.rollback()
    [problem] = caught.value.problems
    assert problem.message.startswith("arms.self.features.forum: switching a feature changes "
                                      "the intervention")
    assert not db.session.scalar(select(Arm).where(Arm.code == "self")).has("forum")
    assert audits() == []
    save(data, confirmed=True)
    assert db.session.scalar(select(Arm).where(Arm.code == "self")).has("forum")
    [entry] = audits()
    assert entry.detail["confirmed"] is True and entry.detail["locked"] is True
    assert entry.detail["changes"] == [{"field": "arms.self.features.forum", "from": False,
                                        "to": True}]


def test_after_enrolment_opens_lost_after_days_needs_confirming(study):
    open_it()
    data = current()
    data["study"]["lost_after_days"] = 14
    with pytest.raises(setup.NeedsConfirmation):
        save(data)
    db.session.rollback()
    save(data, confirmed=True)
    assert db.session.scalar(select(Study)).lost_after_days == 14


def test_a_refusal_wins_over_a_confirmation(study):
    open_it()
    data = current()
    data["arms"][1]["features"]["forum"] = True
    data["arms"][1]["ratio"] = 2
    with pytest.raises(setup.SetupError) as caught:
        save(data, confirmed=True)
    assert not isinstance(caught.value, setup.NeedsConfirmation)


def test_a_randomised_participant_locks_the_design_even_before_opening(study):
    person = at_baseline(db.session.scalar(select(Study)), "T-0001")
    person.arm_id = db.session.scalar(select(Arm.id).where(Arm.code == "guided"))
    db.session.commit()
    data = current()
    data["arms"].pop()
    assert refusal(data)[0].startswith("arms: arm 'self' cannot be removed")


def test_randomised_participants_keep_their_site_and_stratum(study):
    open_it()
    trial = db.session.scalar(select(Study))
    person = at_baseline(trial, "T-0001", site="North")
    randomise(person, actor=researcher(), strata={"baseline_loneliness": "low"})
    db.session.commit()
    data = current()
    data["study"]["sites"].remove("North")
    assert refusal(data)[0].startswith("study.sites: 'North' cannot be removed")
    assert db.session.get(Participant, person.id).arm_id is not None


# --- the schedule (H3) and the SMS protocol (H2) -------------------------------------------

SCHEDULE = [
    {"key": "baseline", "label": "Baseline", "baseline": True, "instruments": ["ucla20"],
     "overdue_after": 7, "reminders": [0, 3], "sms_reminders": [3]},
    {"key": "week12", "label": "Week 12", "post_treatment": True, "instruments": ["ucla20"],
     "opens": 77, "closes": 98, "overdue_after": 7, "reminders": [0], "sms_reminders": []},
]


def with_sections() -> dict[str, Any]:
    from outcomes.prompts.protocol import default_data

    data = current()
    data["schedule"] = [dict(entry) for entry in SCHEDULE]
    data["sms_protocol"] = default_data()
    return data


def test_the_schedule_and_protocol_are_imported_and_exported(study):
    plan = save(with_sections())
    assert {c.field for c in plan.changes} == {"schedule", "sms_protocol"}
    exported = current()
    assert [tp["key"] for tp in exported["schedule"]] == ["baseline", "week12"]
    assert [p["key"] for p in exported["sms_protocol"]["prompts"]] == ["lonely", "talked",
                                                                       "ucla3"]
    assert save(setup.to_yaml(exported)).changes == []
    [entry] = audits()
    assert entry.detail["changes"] == [{"field": "schedule"}, {"field": "sms_protocol"}]


def test_leaving_out_the_schedule_and_protocol_keeps_them(study):
    save(with_sections())
    data = current()
    del data["schedule"], data["sms_protocol"]
    data["study"]["name"] = "Renamed"
    save(data)
    assert len(current()["schedule"]) == 2 and current()["sms_protocol"] is not None


def test_after_enrolment_opens_scoring_changes_are_refused_with_the_owners_reason(study):
    save(with_sections())
    open_it()
    data = current()
    data["schedule"][1]["closes"] = 120
    [message] = refusal(data)
    assert message.startswith("schedule: The closes of Week 12 (week12) cannot change once "
                              "enrolment has opened")
    data = current()
    data["sms_protocol"]["prompts"] = data["sms_protocol"]["prompts"][:2]
    [message] = refusal(data)
    assert message.startswith("sms_protocol: Enrolment has opened, so prompt ucla3 cannot be "
                              "removed")
    data = current()
    data["schedule"][1]["label"] = "End of treatment"
    data["sms_protocol"]["prompts"][0]["text"] = "Kinship: how lonely today? Reply 0 to 10."
    assert {c.level for c in save(data).changes} == {"ok"}


def test_a_saved_protocol_cannot_be_removed_by_an_import(study):
    save(with_sections())
    data = current()
    data["sms_protocol"] = None
    assert refusal(data)[0].startswith("sms_protocol: the saved protocol cannot be removed")


RULE = {"instrument": "ucla20", "score": "total", "cut_off": 50, "at_or_above": "high",
        "below": "low"}


@pytest.mark.parametrize(("strata", "message"), [
    ({"baseline_loneliness": RULE | {"at_or_above": "very"}},
     "schedule: baseline gives baseline_loneliness the level 'very', which is not one of its "
     "levels (high, low)"),
    ({"age": RULE}, "schedule: baseline works out the stratum age, which is not one of the "
                    "study's strata"),
])
def test_a_schedule_stratum_must_be_one_of_the_study_strata_and_levels(study, strata, message):
    data = with_sections()
    data["schedule"][0]["strata"] = strata
    text = setup.to_yaml(data)
    assert problems(text) == [(line_of(text, f"    {next(iter(strata))}:"), message)]
    data["schedule"][0]["strata"] = {"baseline_loneliness": RULE}
    assert save(data).changes


def test_before_opening_the_schedule_owner_still_guards_answered_timepoints(study):
    from outcomes.assessments.models import AssessmentResponse, Timepoint

    save(with_sections())
    person = at_baseline(db.session.scalar(select(Study)), "T-0001")
    baseline = db.session.scalar(select(Timepoint).where(Timepoint.key == "baseline"))
    db.session.add(AssessmentResponse(participant_id=person.id, timepoint_id=baseline.id,
                                      instrument="ucla20"))
    db.session.commit()
    data = current()
    data["schedule"][0]["instruments"] = ["ucla20", "mspss"]
    [message] = refusal(data)
    assert message.startswith("schedule: The instruments of Baseline (baseline) cannot change")
    assert not setup.is_locked(db.session.scalar(select(Study)))


def test_an_owner_refusing_at_apply_time_becomes_a_setup_error(study, monkeypatch):
    from outcomes.assessments import schedule

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise schedule.ScheduleError(["Week 12 is busy."])

    monkeypatch.setattr(schedule, "apply_schedule", refuse)
    data = with_sections()
    data["study"]["name"] = "Renamed"
    assert refusal(data) == ["schedule: Week 12 is busy."]
    assert db.session.scalar(select(Study)).name == "Test study"
    assert audits() == []
