"""Watched-words pages (admins), YAML import/export, and who reaches the alert pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from core import clock, screening
from core.extensions import db
from core.roles import Role
from moderation import rules
from moderation.models import RiskAlert, WatchedRule
from tests.factories import make_participant, make_staff

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
RULE = {"kind": "phrase", "text": "buy followers", "category": "spam", "severity": "medium",
        "action": "block", "message": "No ads, please.", "unless": ""}
GOOD_YAML = """rules:
  - {category: spam, severity: low, action: flag, phrase: "free money"}
  - category: self_harm
    severity: high
    action: hold
    phrase: "want to disappear"
    unless: ["disappear for a bit"]
"""
BAD_YAML = """rules:
  - {category: spam, severity: low, action: flag, phrase: "free money"}
  - {category: nonsense, severity: low, action: flag, phrase: "x"}
  - {category: spam, severity: low, action: flag, pattern: "([a-z"}
  - {category: spam, severity: low, action: flag, phrase: "free money"}
"""


@pytest.fixture
def admin(app, auth):
    with app.app_context():
        make_staff(Role.ADMIN)
    auth.login("admin@example.org")


def rule_rows(app) -> list[tuple[str, str, bool]]:
    with app.app_context():
        return [(r.text, r.action, r.is_enabled) for r in
                db.session.scalars(select(WatchedRule).order_by(WatchedRule.id))]


def test_admin_adds_edits_and_disables_a_rule(app, client, admin):
    assert client.get("/moderation/rules").status_code == 200
    response = client.post("/moderation/rules/new", data=RULE)
    assert response.status_code == 302
    assert rule_rows(app) == [("buy followers", "block", True)]
    with app.app_context():
        rule_id = db.session.scalar(select(WatchedRule.id))
    response = client.post(f"/moderation/rules/{rule_id}/edit", data={**RULE, "action": "hold"})
    assert response.status_code == 302
    client.post(f"/moderation/rules/{rule_id}/toggle")
    assert rule_rows(app) == [("buy followers", "hold", False)]


def test_bad_rule_keeps_what_was_typed(app, client, admin):
    response = client.post("/moderation/rules/new",
                           data={**RULE, "kind": "pattern", "text": "([a-z"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "not a valid pattern" in page
    assert 'value="([a-z"' in page
    assert rule_rows(app) == []


def test_yaml_import_errors_name_lines_and_save_nothing(app, client, admin):
    response = client.post("/moderation/rules/import", data={"yaml_text": BAD_YAML})
    page = response.get_data(as_text=True)
    assert "line 3: Choose a category" in page
    assert "line 4: This is not a valid pattern" in page
    assert "line 5: the same phrase as line 2" in page
    assert "nonsense" in page  # the text stays in the box
    assert rule_rows(app) == []
    broken = client.post("/moderation/rules/import", data={"yaml_text": "rules: [\n  - {a: "})
    assert "line" in broken.get_data(as_text=True) and rule_rows(app) == []


def test_yaml_round_trip(app, client, admin):
    client.post("/moderation/rules/import", data={"yaml_text": GOOD_YAML})
    assert rule_rows(app) == [("free money", "flag", True), ("want to disappear", "hold", True)]
    exported = client.get("/moderation/rules/export").get_data(as_text=True)
    with app.app_context():
        parsed = rules.parse_yaml(exported)
    assert [(r["text"], r["unless"]) for r in parsed] == [
        ("want to disappear", ["disappear for a bit"]), ("free money", [])]
    again = client.post("/moderation/rules/import", data={"yaml_text": exported},
                        follow_redirects=True)
    assert "0 new, 0 changed, 2 unchanged" in again.get_data(as_text=True)


def test_shipped_rules_load_and_screen(app, client, admin):
    client.post("/moderation/rules/load-shipped")
    with app.app_context():
        assert rules.rule_count() == len(rules.shipped_specs())
        assert rules.parse_yaml(rules.export_yaml())  # the export of the shipped set is valid


def test_try_a_text_shows_the_verdict(client, admin):
    response = client.post("/moderation/rules/try",
                           data={"sample": "I want to k i l l myself", "channel": "forum_post"})
    assert "hold (risk alert)" in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["participant", "peer_moderator", "clinician", "researcher"])
def test_only_admins_manage_rules(app, client, auth, who):
    with app.app_context():
        if who == "participant":
            make_participant()
        else:
            make_staff(Role(who))
    auth.login("T-0001" if who == "participant" else f"{who}@example.org")
    assert client.get("/moderation/rules").status_code == 403
    assert client.post("/moderation/rules/new", data=RULE).status_code == 403


@pytest.mark.parametrize(("who", "status"), [("participant", 403), ("peer_moderator", 403),
                                             ("researcher", 403), ("clinician", 200)])
def test_alert_pages_are_for_clinicians_only(app, client, auth, who, status):
    """Peer moderators and participants never see a risk alert or its content."""
    clock.set_time(NOW)
    with app.app_context():
        make_staff(Role.CLINICIAN) if who != "clinician" else None
        user = make_participant().user if who == "participant" else make_staff(
            Role(who), f"{who}-me@example.org")
        author = make_participant(code="T-0009", name="Sad Robin")
        verdict = screening.screen("I want to end my life", channel="forum_post",
                                   author=author.user)
        screening.screened(verdict, channel="forum_post", content_id=1, author=author.user)
        db.session.commit()
        alert_id = db.session.scalar(select(RiskAlert.id))
        login = "T-0001" if who == "participant" else user.email
    auth.login(login)
    page = client.get(f"/moderation/alerts/{alert_id}")
    assert page.status_code == status
    assert client.get("/moderation/alerts").status_code == status
    ack = client.post(f"/moderation/alerts/{alert_id}/acknowledge")
    assert ack.status_code == (302 if status == 200 else 403)
    expected_events = 200 if who in ("clinician", "researcher") else 403
    assert client.get("/moderation/adverse-events").status_code == expected_events
    if status == 200:
        resolved = client.post(f"/moderation/alerts/{alert_id}/resolve",
                               data={"actions": ["contacted_participant"],
                                     "adverse_event": "no", "note": ""})
        assert resolved.status_code == 302
        with app.app_context():
            assert db.session.scalar(select(func.count(RiskAlert.id)).where(
                RiskAlert.resolved_at.is_not(None))) == 1


def test_rota_page_adds_and_orders_clinicians(app, client, auth):
    with app.app_context():
        make_staff(Role.ADMIN)
        first = make_staff(Role.CLINICIAN, "a@example.org", name="Dr A").id
        second = make_staff(Role.CLINICIAN, "b@example.org", name="Dr B").id
    auth.login("admin@example.org")
    client.post("/moderation/rota/add", data={"user_id": first, "phone": ""})
    client.post("/moderation/rota/add", data={"user_id": second, "phone": "07400 123456"})
    bad = client.post("/moderation/rota/add", data={"user_id": first, "phone": ""})
    assert "already on the rota" in bad.get_data(as_text=True)
    from moderation import alerts

    with app.app_context():
        entry_id = next(e.id for e in alerts.rota() if e.user_id == second)
    client.post(f"/moderation/rota/{entry_id}/move", data={"direction": "top"})
    with app.app_context():
        assert [e.user_id for e in alerts.rota()] == [second, first]
        assert alerts.rota()[0].phone == "+447400123456"
    assert client.post("/moderation/rota/deadline", data={"minutes": "2"}).status_code == 200
    client.post("/moderation/rota/deadline", data={"minutes": "30"})
    with app.app_context():
        assert alerts.deadline_minutes() == 30


def test_cli_imports_the_shipped_rules_and_reports_bad_lines(app, runner, tmp_path):
    with app.app_context():
        make_staff(Role.ADMIN)
    result = runner.invoke(args=["moderation", "rules-import", "--as", "admin@example.org"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert rules.rule_count() == len(rules.shipped_specs())
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_YAML, encoding="utf-8")
    result = runner.invoke(args=["moderation", "rules-import", str(bad), "--as",
                                 "admin@example.org"])
    assert result.exit_code == 1 and "line 3: Choose a category" in result.output
    exported = runner.invoke(args=["moderation", "rules-export"])
    assert exported.exit_code == 0 and "kill* myself" in exported.output
