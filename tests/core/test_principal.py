"""``core.principal``: a signed-in page learns who is asking, and the facts every page needs
(consent, arm features, settings, unread counts), in one statement; the loaded facts agree
with the queries they replace, and a request that writes sees fresh ones."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core import clock, principal, settings
from core.extensions import db
from core.models import SiteSetting, User
from core.notifications import notify
from core.roles import Role
from moderation import messages
from outcomes.models import Withdrawal
from outcomes.services import features_for
from tests.factories import make_consent, make_participant, make_staff, make_study
from tests.sql_count import counting


@pytest.fixture
def people(app) -> dict[str, Any]:
    with app.app_context():
        study = make_study()
        make_consent()
        me = make_participant(study, "T-0001", arm="guided")
        clinician = make_staff(Role.CLINICIAN, "clin@example.org")
        db.session.commit()
        return {"me": me.user_id, "participant": me.id, "clinician": clinician.id}


def test_a_signed_in_page_costs_one_statement_for_everything_the_layout_needs(
        app, client, auth, people):
    """/help (the crisis page) needs the session, user, consent, features, settings and
    both unread counts: one statement in all."""
    auth.login("T-0001")
    client.get("/help")  # the session's last-seen touch may fall on the first request
    with counting(app) as sent:
        client.get("/help")
    assert len(sent) == 1, sent
    assert "user_session" in sent[0] and "site_setting" in sent[0]


def test_the_loaded_facts_agree_with_the_queries_they_replace(app, client, auth, people):
    """Stored settings, unread notifications and an intervention withdrawal show on the
    page as they would without the loader."""
    with app.app_context():
        settings.put("site_name", "Harbour Trial",
                     actor=db.session.get(User, people["clinician"]))
        me = db.session.get(User, people["me"])
        notify(me, kind="system", text="one")
        notify(me, kind="system", text="two")
        db.session.commit()
    auth.login("T-0001")
    page = client.get("/help").get_data(as_text=True)
    assert "Harbour Trial" in page
    assert '(2<span class="visually-hidden"> unread</span>)' in page
    assert 'href="/forum/"' in page  # the guided arm has the forum
    with app.app_context():
        db.session.add(Withdrawal(participant_id=people["participant"], kind="intervention",
                                  at=clock.utcnow(), reason="Too much at once",
                                  recorded_by_id=people["clinician"], recorded_at=clock.utcnow()))
        db.session.commit()
    page = client.get("/help").get_data(as_text=True)
    assert 'href="/forum/"' not in page


def test_a_page_that_marks_messages_read_shows_the_counts_after_reading(
        app, client, auth, people):
    """Opening the inbox marks the moderator's message (and its notification) read in the
    same request: that write drops the loaded counts, so the page's own navigation
    already shows none."""
    with app.app_context():
        me = db.session.get(User, people["me"])
        me.participant.moderator_id = people["clinician"]
        messages.send(me.participant, "How was the walk?",
                      actor=db.session.get(User, people["clinician"]))
        db.session.commit()
    auth.login("T-0001")
    page = client.get("/help").get_data(as_text=True)
    assert page.count('(1<span class="visually-hidden"> unread</span>)') == 2
    page = client.get("/messages").get_data(as_text=True)
    assert "How was the walk?" in page
    assert "unread</span>)" not in page


def test_a_fact_about_someone_else_is_worked_out_not_borrowed(app, client, auth, people):
    """Staff looking at a participant get the participant's features, not their own."""
    with app.test_request_context():
        me = db.session.get(User, people["me"])
        clinician = db.session.get(User, people["clinician"])
        principal.forget()
        assert principal.fact("arm_features", clinician, lambda: "computed") == "computed"
        assert features_for(me)["forum"] is True


def test_a_new_consent_version_still_sends_the_participant_to_reconsent(
        app, client, auth, people):
    auth.login("T-0001")
    assert client.get("/help").status_code == 200
    with app.app_context():
        make_consent("2.0")
        db.session.commit()
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/consent")


def test_the_layout_settings_never_carry_other_packages_rows(app, people):
    """The export pseudonym secret shares the settings table; neither the loaded fact nor
    ``settings.stored`` reads it."""
    with app.app_context():
        db.session.add(SiteSetting(key="export_key:1", value="secret-not-for-pages"))
        db.session.commit()
        assert "export_key:1" not in settings.stored()
    with app.test_request_context():
        loaded = db.session.execute(select(settings.stored_fact())).scalar()
    assert "export_key:1" not in (loaded or {})
