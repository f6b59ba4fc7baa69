"""Suggestions from the staff side: the form (modules, steps grouped by module), the
participant seeing it on their Today page and being told, refusals that keep what was
chosen, authorisation, the "suggest" panel and the "suggestion" timeline source."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from core.models import Participant, User
from core.notifications import Notification
from moderation import record, suggestions
from modules.models import ContentSuggestion, Module, Step
from outcomes.participants import WITHDRAWN
from tests.moderation.message_helpers import (
    ADMIN,
    CLINICIAN,
    MINE,
    NOW,
    OTHER_PEER,
    PEER,
    RESEARCHER,
    audits,
    make_cast,
    signed_in,
    text_of,
)
from tests.modules.content_rows import make_module, steps_of
from tests.pages import form_values
from tests.xss_payloads import PAYLOADS, assert_no_active_markup

SUGGESTION_IDS = re.compile(r"/modules/suggestions/\d+/")


pytestmark = pytest.mark.usefixtures("frozen_clock")


@pytest.fixture
def library(app) -> dict[str, int]:
    """Two active modules and a retired one; returns ids by name."""
    with app.app_context():
        first = make_module("first-steps", title="First steps")
        second = make_module("reaching-out", title="Reaching out", position=1)
        retired = make_module("old-module", title="Old module", active=False)
        ids = {"first": first.id, "second": second.id, "retired": retired.id,
               "first_step": steps_of(first)[0].id, "second_step": steps_of(second)[1].id}
        db.session.commit()
        return ids


def url(cast, *, other: bool = False) -> str:
    pid = cast.other_participant if other else cast.participant
    return f"/moderation/participants/{pid}/suggestions"


def stored() -> list[ContentSuggestion]:
    return list(db.session.scalars(select(ContentSuggestion).order_by(ContentSuggestion.id)))


def post(client, cast, **fields):
    return client.post(url(cast), data={f"suggest-{k}": v for k, v in fields.items()})


# --------------------------------------------------------------------------- end to end


def test_suggested_step_shows_on_their_today_page_and_they_are_told(app, cast, library):
    client = signed_in(app, PEER)
    response = post(client, cast, module=library["first"], step=library["first_step"],
                    note="This one helped others", return_to="page")
    assert response.status_code == 302
    with app.app_context():
        [row] = stored()
        assert (row.module_id, row.step_id, row.note, row.suggested_by_id) == (
            library["first"], library["first_step"], "This one helped others", cast.peer)
        step_title = db.session.get(Step, library["first_step"]).title
        [told] = db.session.scalars(select(Notification).where(
            Notification.user_id == cast.participant_user)).all()
        assert (told.kind, told.url) == ("suggestion", "/modules/today")
        assert told.text == f"Kit suggested “{step_title}” for you"
        [entry] = audits("content.suggested")
        assert entry.actor_id == cast.peer
    home = signed_in(app, MINE).get("/", follow_redirects=True)
    page = text_of(home)
    assert "Suggested for you" in page and step_title in page
    assert "Your moderator says: “This one helped others”" in page


def test_whole_module_suggestion_shows_the_module(app, cast, library):
    post(signed_in(app, CLINICIAN), cast, module=library["second"], step="")
    page = text_of(signed_in(app, MINE).get("/modules/today"))
    assert "Suggested for you" in page and "Reaching out" in page


def test_form_lists_active_modules_and_their_steps_grouped(app, cast, library):
    html = signed_in(app, PEER).get(url(cast)).get_data(as_text=True)
    assert "First steps" in html and "Reaching out" in html and "Old module" not in html
    assert '<optgroup label="First steps">' in html
    with app.app_context():
        [entry] = audits("moderation.suggestions.viewed")
        assert (entry.actor_id, entry.target_id) == (cast.peer, cast.participant_user)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("fields", "error", "field"), [
    ({"module": ""}, "Choose a module.", "module"),
    ({"module": "999999"}, "Choose a module from the library.", "module"),
    ({"module": "retired"}, "Choose a module from the library.", "module"),
    ({"module": "first", "step": "second_step"}, "That step is not part of “First steps”",
     "step"),
    ({"module": "first", "note": "w" * 1001}, "Please keep the note to 1,000 characters.",
     "note"),
])
def test_refusal_is_on_its_field_and_keeps_what_was_chosen(app, cast, library, fields, error,
                                                          field):
    data = {name: str(library.get(value, value)) for name, value in fields.items()}
    response = post(signed_in(app, PEER), cast, **data)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert error in html
    assert f'id="suggest-{field}-error"' in html
    values = form_values(html)
    if data.get("module") and data["module"].isdigit() and int(data["module"]) in (
            library["first"], library["second"]):
        assert values["suggest-module"] == data["module"]
    if "step" in data:
        assert values["suggest-step"] == data["step"]
    if "note" in data:
        assert data["note"] + "</textarea>" in html
    with app.app_context():
        assert stored() == []


def test_no_suggestion_for_an_arm_without_modules(app, library):
    """Nobody would see it: the panel explains and a post is refused."""
    cast = make_cast(app, arm="self")
    with app.app_context():
        from outcomes.models import Arm
        arm = db.session.get(Arm, db.session.get(Participant, cast.participant).arm_id)
        arm.features = {**arm.features, "modules": False}
        db.session.commit()
    client = signed_in(app, PEER)
    assert suggestions.NOT_SHOWN in text_of(client.get(url(cast)))
    response = post(client, cast, module=library["first"])
    assert response.status_code == 200 and suggestions.NOT_SHOWN in text_of(response)
    with app.app_context():
        assert stored() == []


def test_no_suggestion_to_a_withdrawn_participant(app, cast, library):
    with app.app_context():
        db.session.get(Participant, cast.participant).status = WITHDRAWN
        db.session.commit()
        with pytest.raises(suggestions.SuggestError, match="withdrawn"):
            suggestions.make_suggestion(db.session.get(Participant, cast.participant),
                                        actor=db.session.get(User, cast.peer),
                                        module_id=library["first"])


# --------------------------------------------------------------------------- authorisation


@pytest.mark.parametrize("who", [OTHER_PEER, RESEARCHER, ADMIN, MINE])
def test_others_cannot_suggest(app, cast, library, who):
    client = signed_in(app, who)
    assert client.get(url(cast)).status_code == 403
    assert post(client, cast, module=library["first"]).status_code == 403
    with app.app_context():
        assert stored() == []


def test_peer_cannot_suggest_outside_the_caseload_through_the_service(app, cast, library):
    with app.app_context(), pytest.raises(suggestions.PermissionDenied):
        suggestions.make_suggestion(
            db.session.get(Participant, cast.other_participant),
            actor=db.session.get(User, cast.peer), module_id=library["first"])


# --------------------------------------------------------------------------- staff page parts


def test_timeline_has_made_and_dismissed_and_the_panel_offers_the_form(app, cast, library):
    post(signed_in(app, PEER), cast, module=library["second"], note="Try this")
    with app.app_context():
        [row] = stored()
    clock.set_time(NOW + timedelta(hours=2))
    response = signed_in(app, MINE).post(f"/modules/suggestions/{row.id}/dismiss")
    assert response.headers["Location"].endswith("/modules/today")
    with app.app_context():
        participant = db.session.get(Participant, cast.participant)
        peer = db.session.get(User, cast.peer)
        entries = record.SOURCES["suggestion"](participant, peer, None)
        assert sorted((e.at, e.text) for e in entries) == [
            (NOW, "Kit suggested Reaching out"),
            (NOW + timedelta(hours=2), "Put aside the suggestion Reaching out")]
        later = record.SOURCES["suggestion"](participant, peer, NOW + timedelta(hours=1))
        assert [e.text for e in later] == ["Put aside the suggestion Reaching out"]
        other = db.session.scalar(select(User).where(User.email == OTHER_PEER))
        assert record.SOURCES["suggestion"](participant, other, None) == []
        assert record.PANELS["suggest"].load(participant, other) is None
    page = text_of(signed_in(app, PEER).get(f"/moderation/participants/{cast.participant}"))
    assert "put aside" in page and "Suggest" in page


def test_suggesting_from_the_panel_returns_to_the_participant_page(app, cast, library):
    response = post(signed_in(app, PEER), cast, module=library["first"], return_to="record")
    assert response.headers["Location"].endswith(
        f"/moderation/participants/{cast.participant}#panel-suggest")


def test_module_titles_are_escaped_in_the_form(app, cast):
    with app.app_context():
        module = db.session.get(Module, make_module("odd", title="<b>Bold</b> module").id)
        db.session.commit()
        assert module.is_active
    html = signed_in(app, PEER).get(url(cast)).get_data(as_text=True)
    assert "<b>Bold</b>" not in html and "&lt;b&gt;Bold&lt;/b&gt; module" in html


def test_no_payload_in_a_suggestion_note_becomes_active_markup(app, cast, library):
    """The note shows on the participant's Today page and on the staff pages."""
    staff, mine = signed_in(app, PEER), signed_in(app, MINE)

    def render(note: str) -> list[str]:
        with app.app_context():
            for row in stored():
                db.session.delete(row)
            db.session.commit()
        assert post(staff, cast, module=library["first"], note=note[:1000]).status_code == 302
        pages = [mine.get("/modules/today").get_data(as_text=True),
                 staff.get(url(cast)).get_data(as_text=True),
                 staff.get(f"/moderation/participants/{cast.participant}").get_data(as_text=True)]
        # each round makes a new suggestion: its id in the "Not now" form is not markup
        return [SUGGESTION_IDS.sub("/modules/suggestions/N/", page) for page in pages]

    baseline = render("A quiet afternoon")
    failures = []
    for payload, what in PAYLOADS:
        for page, base in zip(render(payload), baseline, strict=True):
            try:
                assert_no_active_markup(page, baseline=base)
            except AssertionError as exc:
                failures.append(f"{what}: {exc}")
    assert failures == []
