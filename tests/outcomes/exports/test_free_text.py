"""The identifiable export right: admins give and take it away (audited), only researchers
holding it may download free text, the download is pseudonymised, neutralised and
audit-logged without the text."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from core import clock
from core.audit import AuditEntry
from core.extensions import db
from core.models import User
from core.roles import Role
from outcomes.exports import freetext
from outcomes.models import Study
from tests.factories import make_staff
from tests.outcomes.exports.seed import (
    CODES,
    NAMES,
    NOW,
    PHONES,
    POST_TEXT,
    REFLECTION,
    SMS_REPLY,
    STAFF_EMAIL,
    seed_study,
)

FREE = "/research/exports/free-text"


@pytest.fixture
def seeded(app):
    clock.set_time(NOW)
    with app.app_context():
        ids = seed_study()
        ids["admin"] = make_staff(Role.ADMIN).id
        return ids


def grant(app, ids) -> None:
    with app.app_context():
        freetext.set_right(db.session.get(User, ids["researcher"]), True,
                           actor=db.session.get(User, ids["admin"]))
        db.session.commit()


def actions(app) -> list[tuple[str, dict]]:
    with app.app_context():
        return [(e.action, e.detail) for e in db.session.scalars(
            db.select(AuditEntry).where(AuditEntry.action.like("outcomes.export%"))
            .order_by(AuditEntry.seq))]


def test_without_the_right_a_researcher_sees_no_free_text_form_and_is_refused(
        app, client, auth, seeded):
    auth.login(STAFF_EMAIL)
    assert "Free-text export" not in client.get("/research/exports").get_data(as_text=True)
    response = client.post(FREE, data={"source": "forum", "purpose": "safety_review"},
                           follow_redirects=True)
    assert response.request.path == "/research/exports"
    assert "You do not have the identifiable export right" in response.get_data(as_text=True)
    assert actions(app) == []
    with app.app_context(), pytest.raises(freetext.ExportRefused):
        freetext.export(db.session.get(Study, seeded["study"]), "forum", "safety_review",
                        actor=db.session.get(User, seeded["researcher"]))


@pytest.mark.parametrize(("source", "expected"), [
    ("forum", POST_TEXT), ("reflections", REFLECTION), ("sms", SMS_REPLY)])
def test_a_researcher_with_the_right_downloads_one_source(app, client, auth, seeded, source,
                                                          expected):
    grant(app, seeded)
    auth.login(STAFF_EMAIL)
    assert "Free-text export" in client.get("/research/exports").get_data(as_text=True)
    response = client.post(FREE, data={"source": source, "purpose": "qualitative_analysis"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    table = pd.read_csv(io.StringIO(text))
    assert table["text"].tolist() == [expected]
    assert table["pseudonym"].str.startswith("P-").all()
    for identifier in (*NAMES, *CODES, *PHONES, STAFF_EMAIL):
        assert identifier not in text
    (granted, _), (action, detail) = actions(app)
    assert granted == "outcomes.export_right_granted"
    assert action == "outcomes.export_free_text"
    assert (detail["source"], detail["purpose"], detail["rows"]) == (
        source, "qualitative_analysis", 1)
    assert expected not in str(detail)


def test_free_text_is_neutralised_against_formulas(app, seeded):
    grant(app, seeded)
    with app.app_context():
        from modules.models import JournalEntry

        db.session.add(JournalEntry(participant_id=seeded["p1"], body="=1+2"))
        db.session.commit()
        _name, content = freetext.export(db.session.get(Study, seeded["study"]), "reflections",
                                         "safety_review",
                                         actor=db.session.get(User, seeded["researcher"]))
    assert "'=1+2" in content.decode()


def test_bad_choices_are_shown_on_the_form(app, client, auth, seeded):
    grant(app, seeded)
    auth.login(STAFF_EMAIL)
    response = client.post(FREE, data={"source": "passwords"})
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'id="source-error"' in html and 'id="purpose-error"' in html
    assert [a for a, _ in actions(app)] == ["outcomes.export_right_granted"]


def test_admins_give_and_take_away_the_right_on_their_page(app, client, auth, seeded):
    auth.login("admin@example.org")
    page = client.get("/research/exports/rights")
    assert page.status_code == 200 and "Not allowed" in page.get_data(as_text=True)
    url = f"/research/exports/rights/{seeded['researcher']}"
    assert client.post(url, data={"allowed": "1"}).status_code == 302
    with app.app_context():
        assert freetext.has_right(db.session.get(User, seeded["researcher"]))
    client.post(url, data={"allowed": "0"})
    with app.app_context():
        assert not freetext.has_right(db.session.get(User, seeded["researcher"]))
    assert [a for a, _ in actions(app)] == ["outcomes.export_right_granted",
                                            "outcomes.export_right_revoked"]
    # only researchers can hold it
    client.post(f"/research/exports/rights/{seeded['admin']}", data={"allowed": "1"})
    with app.app_context():
        assert freetext.holders() == []


@pytest.mark.parametrize("role", ["researcher", "clinician"])
def test_only_admins_manage_the_right(app, client, auth, seeded, role):
    auth.login(f"{role}@example.org")
    assert client.get("/research/exports/rights").status_code == 403
    assert client.post(f"/research/exports/rights/{seeded['researcher']}",
                       data={"allowed": "1"}).status_code == 403
    with app.app_context():
        assert freetext.holders() == []
        with pytest.raises(freetext.ExportRefused):
            freetext.set_right(db.session.get(User, seeded["researcher"]), True,
                               actor=db.session.get(User, seeded["researcher"]))
