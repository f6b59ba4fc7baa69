"""Arm flags on the module pages: an arm without modules sees no module page (403) and
no module navigation; staff never reach them; an arm without gamification sees the
modules but no points, streaks, levels or badges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask, url_for
from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.roles import Role
from modules.models import Module, MoodEntry
from outcomes.models import FEATURES, Arm, Study
from outcomes.services import NOT_OPEN_YET
from tests.factories import make_participant, make_staff, make_study
from tests.modules.content_rows import make_module, make_pathway, steps_of

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
NAV_LABELS = ("Today", "Modules", "Progress")


def add_arm(code: str, **features: bool) -> None:
    study = db.session.scalar(db.select(Study)) or make_study()
    db.session.add(Arm(study_id=study.id, code=code, name=code.title(),
                       features={name: features.get(name, True) for name in FEATURES}))
    db.session.commit()


def module_requests(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every route of the modules blueprint, with real-looking values."""
    values = {"module_key": "first-steps", "step_key": "first-steps-1",
              "relative": "images/p1.svg", "plan_id": 1, "suggestion_id": 1}
    requests = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith("modules."):
                path = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
                requests += [(method, path) for method in sorted(rule.methods - {"HEAD",
                                                                               "OPTIONS"})]
    return requests


@pytest.fixture
def content(app):
    clock.set_time(NOW)
    with app.app_context():
        make_module("first-steps", pathway=make_pathway())
        add_arm("control", modules=False, gamification=False)
        add_arm("no-game", gamification=False)
        db.session.commit()


def nav(response) -> str:
    html = response.get_data(as_text=True)
    return html[html.index('<nav class="site-nav"'):html.index("</nav>")]


def test_every_module_route_is_refused_to_an_arm_without_modules(app, client, auth, content):
    """It answers 403 to every module route, GET and POST alike."""
    with app.app_context():
        make_participant(code="T-0001", arm="control")
    auth.login("T-0001")
    requests = module_requests(app)
    assert len(requests) >= 10
    refused = {(method, path): client.open(path, method=method).status_code
               for method, path in requests}
    assert set(refused.values()) == {403}, refused


def test_an_arm_without_modules_has_no_module_navigation_and_keeps_the_core_home(
        app, client, auth, content):
    with app.app_context():
        make_participant(code="T-0001", arm="control")
    auth.login("T-0001")
    home = client.get("/")
    assert home.status_code == 200
    links = nav(home)
    for label in NAV_LABELS:
        assert f">{label}</a>" not in links
    assert "/modules/" not in links
    assert '<a href="/">Home</a>' in links or '<a href="/" aria-current="page">Home</a>' in links


def test_an_arm_with_modules_has_the_three_entries(app, client, auth, content):
    with app.app_context():
        make_participant(code="T-0001", arm="guided")
    auth.login("T-0001")
    links = nav(client.get("/modules/today"))
    for label, path in zip(NAV_LABELS, ("/modules/today", "/modules/", "/modules/progress"),
                           strict=True):
        assert f'<a href="{path}"' in links and f">{label}</a>" in links
    assert links.index(">Today<") < links.index(">Modules<") < links.index(">Progress<")
    assert ">Home</a>" not in links  # Today is their home; no second entry for it


def test_an_unrandomised_participant_has_no_intervention_yet(app, client, auth, content):
    """Before randomisation nothing of the intervention (``features_for``): every module
    route sends them home, which says why and what happens next; no module or forum entry
    in the navigation; nothing they post is stored."""
    with app.app_context():
        participant_id = make_participant(code="T-0001").id
    auth.login("T-0001")
    for method, path in module_requests(app):
        response = client.open(path, method=method, data={"score": "4"})
        assert (response.status_code, response.headers.get("Location")) == (302, "/"), \
            (method, path)
    for path in ("/forum/", "/forum/new"):
        assert client.get(path).headers.get("Location") == "/", path
    home = client.get("/").get_data(as_text=True)
    assert NOT_OPEN_YET in home
    assert "What happens next" in home
    links = nav(client.get("/"))
    for label in (*NAV_LABELS, "Forum"):
        assert f">{label}</a>" not in links
    assert ">Home</a>" in links
    with app.app_context():
        assert db.session.scalar(select(func.count(MoodEntry.id)).where(
            MoodEntry.participant_id == participant_id)) == 0


def test_randomisation_opens_the_programme(app, client, auth, content):
    with app.app_context():
        participant = make_participant(code="T-0001")
        participant.arm_id = db.session.scalar(select(Arm.id).where(Arm.code == "guided"))
        db.session.commit()
    auth.login("T-0001")
    assert client.get("/").headers.get("Location") == "/modules/today"
    page = client.get("/modules/today")
    assert page.status_code == 200
    assert "What happens next" not in page.get_data(as_text=True)


def test_a_withdrawn_participant_is_refused_not_sent_home(app, client, auth, content):
    with app.app_context():
        participant = make_participant(code="T-0001")
        participant.status = "withdrawn"
        db.session.commit()
    auth.login("T-0001")
    assert client.get("/modules/today").status_code == 403


@pytest.mark.parametrize("role", [Role.PEER_MODERATOR, Role.CLINICIAN, Role.RESEARCHER,
                                  Role.ADMIN])
def test_staff_never_reach_module_pages(app, client, auth, content, role):
    with app.app_context():
        staff = make_staff(role)
        email = staff.email
    assert auth.login(email).status_code == 302
    for method, path in module_requests(app):
        assert client.open(path, method=method).status_code == 403, (method, path)
    page = client.get("/account").get_data(as_text=True)
    assert "/modules/today" not in page


def test_an_arm_without_gamification_sees_modules_without_points(app, client, auth, content):
    """It shows the pages but no points, streak, level or badges, and completing a step
    says "Step done." with no points."""
    with app.app_context():
        make_participant(code="T-0001", arm="no-game")
        module = db.session.scalar(db.select(Module).where(Module.key == "first-steps"))
        step_path = f"/modules/first-steps/{steps_of(module)[0].key}"
    auth.login("T-0001")
    today = client.get("/modules/today").get_data(as_text=True)
    assert "Your progress" not in today and "points" not in today and "in a row" not in today
    response = client.post(step_path)
    assert response.status_code == 302
    after = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Step done." in after and "points" not in after and "New badge" not in after
    progress = client.get("/modules/progress").get_data(as_text=True)
    assert "Badges" not in progress and "points" not in progress
    assert "modules finished" in progress
