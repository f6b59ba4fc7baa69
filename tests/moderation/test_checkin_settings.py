"""Check-in message templates (clinicians and admins edit, peers read) and per-study
rule settings (clinicians and researchers), with validation that keeps what was typed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from moderation import checkins
from moderation.care_models import CheckInRule, CheckInTemplate
from moderation.checkins import RuleSetting, wording
from outcomes.models import Study
from tests.factories import make_participant, make_staff, make_study
from tests.moderation.checkin_data import (
    ADMIN,
    CLINICIAN,
    PEER,
    RESEARCHER,
    audits,
    signed_in,
    text_of,
)
from tests.pages import form_values, table_rows


@pytest.fixture
def staff(app):
    with app.app_context():
        make_study()
        make_staff(Role.PEER_MODERATOR, PEER, name="Kit")
        make_staff(Role.CLINICIAN, CLINICIAN, name="Dr Patel")
        make_staff(Role.RESEARCHER, RESEARCHER)
        make_staff(Role.ADMIN, ADMIN)
        make_participant(code="T-0001")


def titles() -> list[tuple[str, bool]]:
    return [(t.title, t.is_active) for t in db.session.scalars(
        select(CheckInTemplate).order_by(CheckInTemplate.id))]


# --- templates: the rules ----------------------------------------------------------------


@pytest.mark.parametrize(("body", "error"), [
    ("Hi {nmae}, how are you?", "Unknown placeholder: {nmae}. Use only {name} and {moderator}."),
    ("Hi {first} {last}", "Unknown placeholders: {first}, {last}."),
    ("Hi {}", "Unknown placeholder: {}."),
    ("Hi {name", "one is not closed"),
    ("   ", "Write the message."),
    ("x" * 1001, "Keep the message to 1,000 characters (it has 1,001)."),
])
def test_template_bodies_are_checked(body, error):
    """It refuses unknown placeholders by name, stray brackets, empty and long bodies."""
    with pytest.raises(checkins.CheckInError) as caught:
        wording.check(wording.TemplateData("Hello", body))
    assert error in str(caught.value) and caught.value.field == "body"


def test_filling_in_is_plain_replacement(app, staff):
    """It fills {name} and {moderator} and nothing else (no format-string tricks)."""
    with app.app_context():
        person = db.session.scalar(select(Participant))
        kit = db.session.scalar(select(User).where(User.email == PEER))
        assert wording.fill("Hi {name}, {moderator} here. {name}!", person, kit) == \
            "Hi Quiet Harbour, Kit here. Quiet Harbour!"
        staff_without_name = db.session.scalar(select(User).where(User.email == RESEARCHER))
        assert wording.fill("{moderator}", person, staff_without_name) == "your moderator"


def test_seeding_is_idempotent(app, staff):
    """It adds one warm template per rule once; a second run adds nothing."""
    with app.app_context():
        assert wording.seed_default_templates() == 5
        assert wording.seed_default_templates() == 0
        rows = db.session.scalars(select(CheckInTemplate)).all()
        assert sorted(t.reason for t in rows) == sorted(
            r for r in checkins.SPECS)
        for row in rows:
            wording.check(wording.TemplateData(row.title, row.body, row.reason))


# --- templates: the pages ----------------------------------------------------------------


def test_peers_read_templates_but_do_not_edit(app, staff):
    """It shows peers the list without edit controls and refuses them the edit pages."""
    with app.app_context():
        wording.seed_default_templates()
        db.session.commit()
        first = db.session.scalar(select(CheckInTemplate.id))
    kit = signed_in(app, PEER)
    page = kit.get("/moderation/checkins/templates")
    assert page.status_code == 200 and len(table_rows(page.data)) == 5
    assert "Add a template" not in text_of(page)
    assert kit.get("/moderation/checkins/templates/new").status_code == 403
    assert kit.post(f"/moderation/checkins/templates/{first}",
                    data={"title": "x", "body": "y"}).status_code == 403
    assert kit.post(f"/moderation/checkins/templates/{first}/active").status_code == 403
    assert signed_in(app, "T-0001").get("/moderation/checkins/templates").status_code == 403
    assert signed_in(app, RESEARCHER).get("/moderation/checkins/templates").status_code == 403


def test_a_clinician_adds_edits_and_turns_off_a_template(app, staff):
    """It adds, edits and deactivates a template, each audited."""
    doctor = signed_in(app, CLINICIAN)
    response = doctor.post("/moderation/checkins/templates/new", data={
        "title": "Quick hello", "reason": "", "body": "Hi {name}, {moderator} here."})
    assert response.status_code == 302
    with app.app_context():
        template_id = db.session.scalar(select(CheckInTemplate.id))
    assert doctor.post(f"/moderation/checkins/templates/{template_id}", data={
        "title": "Quick hello", "reason": "inactive", "body": "Hello {name}."}
    ).status_code == 302
    assert doctor.post(f"/moderation/checkins/templates/{template_id}/active").status_code \
        == 302
    with app.app_context():
        row = db.session.get(CheckInTemplate, template_id)
        assert (row.body, row.reason, row.is_active) == ("Hello {name}.", "inactive", False)
        assert [len(audits(a)) for a in ("checkin.template_added", "checkin.template_edited",
                                         "checkin.template_deactivated")] == [1, 1, 1]
        assert wording.templates(active_only=True) == []


def test_a_bad_template_keeps_what_was_typed(app, staff):
    """It names the unknown placeholder on the message field and keeps the title and
    text."""
    admin = signed_in(app, ADMIN)
    response = admin.post("/moderation/checkins/templates/new", data={
        "title": "My draft", "reason": "mood_drop", "body": "Dear {nmae}, thinking of you."})
    assert response.status_code == 200
    assert "Unknown placeholder: {nmae}." in text_of(response)
    assert form_values(response.data)["title"] == "My draft"
    assert form_values(response.data)["reason"] == "mood_drop"
    assert "Dear {nmae}, thinking of you." in response.get_data(as_text=True)
    with app.app_context():
        assert titles() == []


def test_an_admin_loads_the_suggested_templates(app, staff):
    """It offers the suggested templates on an empty list and loads them."""
    admin = signed_in(app, ADMIN)
    assert "Load the suggested templates" in text_of(admin.get("/moderation/checkins/templates"))
    assert admin.post("/moderation/checkins/templates/seed").status_code == 302
    with app.app_context():
        assert len(titles()) == 5
        assert len(audits("checkin.templates_seeded")) == 1


# --- rule settings -----------------------------------------------------------------------


def rule_form(**changes: str) -> dict[str, str]:
    data = {"inactive-is_enabled": "y", "inactive-threshold": "7", "inactive-due_hours": "48",
            "missed_prompts-is_enabled": "y", "missed_prompts-threshold": "3",
            "missed_prompts-due_hours": "48", "mood_drop-is_enabled": "y",
            "mood_drop-threshold": "2", "mood_drop-due_hours": "48",
            "high_loneliness-is_enabled": "y", "high_loneliness-threshold": "6",
            "high_loneliness-due_hours": "48", "alert_follow_up-is_enabled": "y",
            "alert_follow_up-due_hours": "24"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_defaults_apply_until_a_study_saves_its_own(app, staff):
    """It reads the defaults (7 days, 3 prompts, 2 points, UCLA-3 of 6, follow-up) when
    nothing is stored."""
    with app.app_context():
        study = db.session.scalar(select(Study))
        settings = checkins.rules_for(study.id)
        assert {r: (s.is_enabled, s.threshold) for r, s in settings.items()} == {
            "inactive": (True, 7), "missed_prompts": (True, 3), "mood_drop": (True, 2),
            "high_loneliness": (True, 6), "alert_follow_up": (True, None)}


def test_a_researcher_changes_the_rules_and_it_is_audited(app, staff):
    """It saves the study's settings and audits the changed rules with their figures."""
    researcher = signed_in(app, RESEARCHER)
    page = researcher.get("/moderation/checkins/rules")
    assert page.status_code == 200
    assert form_values(page.data)["inactive-threshold"] == "7"
    response = researcher.post("/moderation/checkins/rules?study=1", data=rule_form(**{
        "inactive-threshold": "10", "mood_drop-is_enabled": None}))
    assert response.status_code == 302
    with app.app_context():
        settings = checkins.rules_for(1)
        assert (settings["inactive"].threshold, settings["mood_drop"].is_enabled) == (10, False)
        [entry] = audits("checkin.rules_changed")
        assert entry.target_type == "study"
        assert entry.detail["rules"] == {
            "inactive": {"enabled": True, "threshold": 10, "due_hours": 48},
            "mood_drop": {"enabled": False, "threshold": 2, "due_hours": 48}}


@pytest.mark.parametrize(("field", "value", "error"), [
    ("inactive-threshold", "0", "Choose a whole number from 1 to 90."),
    ("inactive-threshold", "91", "Choose a whole number from 1 to 90."),
    ("high_loneliness-threshold", "10", "Choose a whole number from 3 to 9."),
    ("mood_drop-threshold", "five", "Not a valid integer value."),
    ("alert_follow_up-due_hours", "0", "Choose from 1 to 336 hours (two weeks)."),
])
def test_rule_settings_out_of_range_are_refused(app, staff, field, value, error):
    """It refuses a number out of the rule's range on its field, keeps what was typed and
    stores nothing."""
    doctor = signed_in(app, CLINICIAN)
    response = doctor.post("/moderation/checkins/rules?study=1", data=rule_form(**{field: value}))
    assert response.status_code == 200
    assert error in text_of(response)
    assert form_values(response.data)[field] == value
    with app.app_context():
        assert db.session.scalar(select(CheckInRule)) is None
        assert audits("checkin.rules_changed") == []


def test_the_service_checks_ranges_too(app, staff):
    """It refuses out-of-range settings and the wrong roles without the form."""
    with app.app_context():
        study = db.session.scalar(select(Study))
        researcher = db.session.scalar(select(User).where(User.email == RESEARCHER))
        with pytest.raises(checkins.CheckInError) as caught:
            checkins.save_rules(study, [RuleSetting("missed_prompts", True, 31, 48)],
                                actor=researcher)
        assert caught.value.field == "missed_prompts-threshold"
        kit = db.session.scalar(select(User).where(User.email == PEER))
        with pytest.raises(checkins.PermissionDenied):
            checkins.save_rules(study, [RuleSetting("inactive", True, 5, 48)], actor=kit)


@pytest.mark.parametrize("who", [PEER, ADMIN, "T-0001"])
def test_only_clinicians_and_researchers_set_rules(app, staff, who):
    """It refuses the settings page to everyone else."""
    client = signed_in(app, who)
    assert client.get("/moderation/checkins/rules").status_code == 403
    assert client.post("/moderation/checkins/rules", data=rule_form()).status_code == 403


def test_an_unknown_study_is_not_found(app, staff):
    assert signed_in(app, CLINICIAN).get("/moderation/checkins/rules?study=99").status_code \
        == 404
