"""The researcher's SMS protocol page and the SMS answers on the moderator's page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.extensions import db
from core.roles import Role
from outcomes.prompts import protocol
from outcomes.prompts.models import SmsProtocolVersion
from tests.factories import make_participant, make_staff, make_study
from tests.outcomes.prompts.helpers import at, plan, reply, send_due, setup_trial

PAGE = "/research/sms-protocol"


@pytest.fixture
def researcher(app, auth):
    with app.app_context():
        make_study()
        make_staff(Role.RESEARCHER, "researcher@example.org")
    auth.login("researcher@example.org")


def textarea(html: str) -> str:
    import html as markup

    # a browser drops the newline that starts a textarea's content
    found = re.search(r"<textarea[^>]*>(.*?)</textarea>", html, re.S).group(1)
    return markup.unescape(found.removeprefix("\n").removeprefix("\r\n"))


def test_the_page_offers_the_default_until_one_is_saved(client, researcher):
    page = client.get(PAGE)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "No protocol is saved yet" in body
    assert textarea(body).strip() == protocol.default_text().strip()


def test_saving_makes_a_version_and_shows_its_prompts(app, client, researcher):
    response = client.post(PAGE, data={"text": protocol.default_text()})
    assert response.status_code == 302
    body = client.get(PAGE).get_data(as_text=True)
    assert "Version 1 of the SMS protocol is saved." in body
    assert "version 1</strong>" in body
    assert "Loneliness today (0-10)" in body and "random 17:00" in body
    with app.app_context():
        (row,) = db.session.scalars(select(SmsProtocolVersion)).all()
        assert row.source == protocol.default_text()  # comments kept


def test_bad_yaml_is_reported_with_its_line_and_the_text_is_kept(app, client, researcher):
    text = "name: test\nprompts:\n  - key: [lonely\n"
    response = client.post(PAGE, data={"text": text})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "The protocol was not saved" in body
    assert re.search(r"line \d+: YAML error", body)
    assert textarea(body).replace("\r\n", "\n") == text
    assert 'aria-invalid="true"' in body
    with app.app_context():
        assert db.session.scalar(select(SmsProtocolVersion)) is None


def test_a_bad_definition_is_reported_with_its_line(client, researcher):
    text = protocol.default_text().replace('at: "09:00"', 'at: "22:00"')
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"22:00"' in row)
    body = client.post(PAGE, data={"text": text}).get_data(as_text=True)
    assert f"line {line}: prompt [1].at: at 22:00 is outside the hours" in body
    assert '"22:00"' in textarea(body)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.CLINICIAN, Role.PEER_MODERATOR])
def test_only_researchers_use_the_page(app, client, auth, role):
    with app.app_context():
        make_study()
        make_staff(role, f"{role.value}@example.org")
    auth.login(f"{role.value}@example.org")
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"text": protocol.default_text()}).status_code == 403


def test_participants_cannot_use_the_page(app, client, auth):
    with app.app_context():
        make_participant(make_study(), "T-0001", name="Quiet Harbour")
    auth.login("T-0001")
    assert client.get(PAGE).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get(PAGE).status_code == 302


def test_the_moderator_sees_the_participants_sms_answers(app, client, auth):
    with app.app_context():
        ids = setup_trial()
        moderator = make_staff(Role.CLINICIAN, "clinician@example.org")
        from core.models import Participant

        db.session.get(Participant, ids["participant"]).moderator_id = moderator.id
        db.session.commit()
        plan(at(2026, 12, 1, 8, 45))
        send_due(at(2026, 12, 1, 9, 0))
    reply(app, client, "blah", at(2026, 12, 1, 9, 2))
    reply(app, client, "9", at(2026, 12, 1, 9, 3))
    auth.login("clinician@example.org")
    body = client.get(f"/moderation/participants/{ids['participant']}").get_data(as_text=True)
    section = body[body.index("SMS answers"):]
    assert "Loneliness today (0-10)" in section
    assert re.search(r"<td>9</td>\s*<td><span class=\"tag tag-green\">answered", section)
    assert "unreadable" in section
    assert "blah" not in body  # the text itself is not shown
