"""The staff page of a participant: who may open it, the audit entry per view, the merged
timeline (order, kind and period filters, days in the participant's zone), what peer
moderators never see, and the registered panels."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy import select

from core import clock
from core.audit import AuditEntry
from core.events import record_event
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from moderation import history, record, services
from moderation.models import QueueItem
from modules.models import MoodEntry
from outcomes.assessments.models import AssessmentResponse, Timepoint
from outcomes.prompts.models import PromptReply
from tests.factories import make_participant, make_staff, make_study
from tests.moderation.caseload_data import add_alert, add_moods, add_prompt

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_time(NOW)
    yield
    clock.set_time(None)


@pytest.fixture
def cast(app) -> dict[str, int]:
    """A peer with one participant (``mine``), a participant on nobody's caseload
    (``other``), a clinician, a researcher and an admin."""
    with app.app_context():
        study = make_study()
        peer = make_staff(Role.PEER_MODERATOR, "peer@example.org", name="Kit")
        make_staff(Role.CLINICIAN, "clinician@example.org", name="Dr Patel")
        make_staff(Role.RESEARCHER, "researcher@example.org")
        make_staff(Role.ADMIN, "admin@example.org")
        mine = make_participant(study, "T-0001", name="Quiet Harbour", moderator=peer,
                                arm="guided")
        other = make_participant(study, "T-0002", name="Other Person")
        return {"mine": mine.id, "other": other.id, "mine_user": mine.user_id,
                "peer": peer.id}


def views_of(app, participant_id: int) -> list[tuple[int | None, str | None]]:
    """(actor id, target type) of each audited look at the participant's record."""
    with app.app_context():
        return [(e.actor_id, e.target_type) for e in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "participant.viewed",
                                     AuditEntry.target_id == participant_id)
            .order_by(AuditEntry.id))]


# --- who may open it --------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/moderation/", "/moderation/participants/{mine}",
                                 "/moderation/participants/{mine}?show=mood&period=all"])
def test_participants_never_reach_moderation_pages(cast, client, auth, url):
    auth.login("T-0001")
    assert client.get(url.format(**cast)).status_code == 403


@pytest.mark.parametrize("who", ["researcher@example.org", "admin@example.org"])
@pytest.mark.parametrize("url", ["/moderation/", "/moderation/participants/{mine}"])
def test_researchers_and_admins_cannot_open_them(cast, app, client, auth, who, url):
    auth.login(who)
    assert client.get(url.format(**cast)).status_code == 403
    assert views_of(app, cast["mine"]) == []


def test_signed_out_visitors_are_sent_to_sign_in(cast, client):
    response = client.get(f"/moderation/participants/{cast['mine']}")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_a_peer_opens_only_their_own_caseload(cast, app, client, auth):
    """It refuses a peer moderator someone else's participant, and writes no audit entry."""
    auth.login("peer@example.org")
    assert client.get(f"/moderation/participants/{cast['other']}").status_code == 403
    assert views_of(app, cast["other"]) == []
    assert client.get(f"/moderation/participants/{cast['mine']}").status_code == 200


def test_each_view_is_audited(cast, app, client, auth):
    """It writes one ``participant.viewed`` entry per look, filters or not."""
    auth.login("clinician@example.org")
    with app.app_context():
        clinician_id = db.session.scalar(select(User.id).where(User.role == Role.CLINICIAN))
    for query in ("", "?show=mood", "?period=all"):
        assert client.get(f"/moderation/participants/{cast['other']}{query}").status_code == 200
    assert views_of(app, cast["other"]) == [(clinician_id, "participant")] * 3


def test_an_unknown_participant_is_not_found(cast, client, auth):
    auth.login("clinician@example.org")
    assert client.get("/moderation/participants/999999").status_code == 404


# --- the timeline -----------------------------------------------------------------------

def seed_timeline(app, participant_id: int) -> None:
    """One entry of each of this package's kinds, an hour apart (newest: moderation)."""
    with app.app_context():
        person = db.session.get(Participant, participant_id)
        record_event(person, "login", at=NOW - timedelta(hours=5))
        add_moods(person, {date(2026, 3, 10): 2}, at=NOW - timedelta(hours=4))
        prompt = add_prompt(person, NOW - timedelta(hours=3, minutes=5), answered=True)
        db.session.add(PromptReply(prompt_id=prompt.id, participant_id=person.id,
                                   prompt_key="lonely", status="answered", value=7, score=7.0,
                                   received_at=NOW - timedelta(hours=3)))
        timepoint = Timepoint(study_id=person.study_id, key="week6", label="Week 6",
                              instruments=["ucla20"])
        db.session.add(timepoint)
        db.session.flush()
        db.session.add(AssessmentResponse(
            participant_id=person.id, timepoint_id=timepoint.id, instrument="ucla20",
            submitted_at=NOW - timedelta(hours=2), total=45.0,
            labels={"severity": "moderate loneliness"}))
        item = QueueItem(channel="forum_post", content_type="forum_post", content_id=1,
                         author_id=person.user_id, participant_id=person.id, action="flag",
                         category="harassment", severity=2)
        db.session.add(item)
        db.session.flush()
        clock.set_time(NOW - timedelta(hours=1))
        history.log("item.flagged", item=item, subject=person.user)
        clock.set_time(NOW)
        db.session.commit()


def entries_on_page(page: str) -> list[tuple[str, str]]:
    """(kind label, text) of each timeline entry on the page, in order."""
    return [(kind, " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).split()))
            for kind, text in re.findall(
                r'<span class="tag tag-\w+">([^<]+)</span>\s*(.*?)\s*(?:<ul>|</li>)', page,
                flags=re.S)]


def test_the_timeline_merges_every_source_newest_first(cast, app, client, auth):
    seed_timeline(app, cast["mine"])
    auth.login("clinician@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}").get_data(as_text=True)
    assert entries_on_page(page) == [
        ("Moderation", "Forum post flagged by screening"),
        ("Questionnaires", "Completed the Week 6 questionnaires"),
        ("SMS answers", "Answered 'Loneliness today (0-10)': 7"),
        ("Moods", "Mood 2 of 5: Low"),
        ("Activity", "Signed in"),
    ]
    assert "UCLA-LS v3: 45 (moderate loneliness)" in page
    assert "Harassment, medium severity" in page


def test_the_service_returns_the_same_order(cast, app):
    seed_timeline(app, cast["mine"])
    with app.app_context():
        person = db.session.get(Participant, cast["mine"])
        peer = db.session.get(User, cast["peer"])
        entries = record.timeline(person, peer)
        kinds = [e.kind for e in entries if e.kind in
                 ("activity", "mood", "sms", "assessment", "moderation")]
        assert kinds == ["moderation", "assessment", "sms", "mood", "activity"]
        assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)


@pytest.mark.parametrize("query", ["?show=mood,sms", "?show=mood&show=sms",
                                   "?show=mood,sms,nonsense"])
def test_kind_filters(cast, app, client, auth, query):
    """It shows only the chosen kinds, with their boxes ticked."""
    seed_timeline(app, cast["mine"])
    auth.login("peer@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}{query}").get_data(as_text=True)
    assert [kind for kind, _ in entries_on_page(page)] == ["SMS answers", "Moods"]
    assert re.search(r'value="mood" checked', page) and re.search(r'value="sms" checked', page)
    assert not re.search(r'value="activity" checked', page)


def test_unknown_kinds_alone_show_everything(cast, app, client, auth):
    seed_timeline(app, cast["mine"])
    auth.login("peer@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}?show=%3Cscript%3E")
    assert len(entries_on_page(page.get_data(as_text=True))) == 5
    assert b"<script>" not in page.data


def test_the_period_hides_older_entries_until_everything_is_asked_for(cast, app, client, auth):
    with app.app_context():
        person = db.session.get(Participant, cast["mine"])
        record_event(person, "login", at=NOW - timedelta(days=100))
        record_event(person, "login", at=NOW - timedelta(days=20))
        db.session.commit()
    auth.login("peer@example.org")
    url = f"/moderation/participants/{cast['mine']}"
    assert len(entries_on_page(client.get(url).get_data(as_text=True))) == 1
    assert len(entries_on_page(client.get(url + "?period=7").get_data(as_text=True))) == 0
    assert len(entries_on_page(client.get(url + "?period=all").get_data(as_text=True))) == 2
    assert len(entries_on_page(client.get(url + "?period=9999").get_data(as_text=True))) == 1


def test_days_are_the_participants_own(cast, app, client, auth):
    """It groups entries by the participant's local day: 06:00 UTC is still the 9th in
    Los Angeles, 08:00 UTC is the 10th."""
    with app.app_context():
        person = db.session.get(Participant, cast["mine"])
        person.timezone = "America/Los_Angeles"
        record_event(person, "login", at=datetime(2026, 3, 10, 6, 0, tzinfo=UTC))
        record_event(person, "login", at=datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
        db.session.commit()
    auth.login("peer@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}").get_data(as_text=True)
    days = re.findall(r'<h3><time datetime="([\d-]+)">([^<]+)</time></h3>', page)
    assert days == [("2026-03-10", "Tuesday 10 March 2026"), ("2026-03-09", "Monday 09 March 2026")]
    assert re.findall(r'<span class="time"><time[^>]*>([^<]+)</time>', page) == ["01:00", "23:00"]


# --- what peers never see ----------------------------------------------------------------

def seed_clinical(app, participant_id: int) -> None:
    """A risk alert on a clinician-only item, a flagged private reflection, and a
    questionnaire score."""
    seed_timeline(app, participant_id)
    with app.app_context():
        person = db.session.get(Participant, participant_id)
        risky = QueueItem(channel="forum_post", content_type="forum_post", content_id=2,
                          author_id=person.user_id, participant_id=person.id, action="hold",
                          category="self_harm", severity=3, is_risk=True, clinician_only=True)
        reflection = QueueItem(channel="reflection", content_type="journal_entry",
                               content_id=3, author_id=person.user_id, participant_id=person.id,
                               action="flag", category="self_harm", severity=2,
                               clinician_only=True)
        db.session.add_all([risky, reflection])
        db.session.flush()
        alert = add_alert(person, at=NOW - timedelta(minutes=30), item_id=risky.id)
        history.log("item.held", item=risky, subject=person.user)
        history.log("alert.opened", alert=alert, item=risky, subject=person.user)
        history.log("item.flagged", item=reflection, subject=person.user)
        db.session.commit()


def test_peers_never_see_clinician_only_items_or_scores(cast, app, client, auth):
    seed_clinical(app, cast["mine"])
    auth.login("peer@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}").get_data(as_text=True)
    moderation = [text for kind, text in entries_on_page(page) if kind == "Moderation"]
    assert moderation == ["Forum post flagged by screening"]
    assert "Risk alert" not in page and "Journal reflection" not in page
    assert "Suicide or self-harm" not in page
    assert "/moderation/alerts/" not in page
    assert "<li class=\"muted\">UCLA-LS v3</li>" in page  # which questionnaire, no score
    assert "UCLA-LS v3: 45" not in page and "moderate loneliness" not in page


def test_clinicians_see_the_whole_moderation_history(cast, app, client, auth):
    seed_clinical(app, cast["mine"])
    auth.login("clinician@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}").get_data(as_text=True)
    moderation = [text for kind, text in entries_on_page(page) if kind == "Moderation"]
    assert moderation == ["Journal reflection flagged by screening", "Risk alert opened",
                          "Forum post held by screening for review",
                          "Forum post flagged by screening"]
    assert "/moderation/alerts/" in page
    assert "UCLA-LS v3: 45 (moderate loneliness)" in page


def test_no_participant_words_reach_the_timeline(cast, app, client, auth):
    """It shows the mood score but not the mood note, the SMS answer but not the text."""
    with app.app_context():
        person = db.session.get(Participant, cast["mine"])
        add_moods(person, {date(2026, 3, 10): 4}, at=NOW)
        db.session.scalar(select(MoodEntry)).note = "A private note about my sister"
        db.session.commit()
    auth.login("clinician@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}").get_data(as_text=True)
    assert "Mood 4 of 5: Good" in page
    assert "sister" not in page


# --- panels -------------------------------------------------------------------------------

def test_panels_render_in_order_with_person_viewer_and_data(cast, app, client, auth,
                                                            monkeypatch):
    app.jinja_env.loader = ChoiceLoader([DictLoader({
        "test/panel.html": "<p>{{ data.word }} for {{ person.study_code }} seen by "
                           "{{ viewer.name }}</p>"}), app.jinja_env.loader])
    panels = {
        "second": record.Panel("second", "Second panel", "test/panel.html",
                               lambda person, viewer: {"word": "Two"}, order=20),
        "first": record.Panel("first", "First panel", "test/panel.html",
                              lambda person, viewer: {"word": "One"}, order=10),
        "hidden": record.Panel("hidden", "Never shown", "test/panel.html",
                               lambda person, viewer: None, order=15),
    }
    monkeypatch.setattr(record, "PANELS", panels)
    auth.login("peer@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}").get_data(as_text=True)
    assert page.index("First panel") < page.index("Second panel")
    assert "<p>One for T-0001 seen by Kit</p>" in page
    assert "<p>Two for T-0001 seen by Kit</p>" in page
    assert "Never shown" not in page
    assert '<h2 id="panel-first">First panel</h2>' in page


def test_service_refuses_a_peer_outside_their_caseload(cast, app):
    with app.app_context():
        peer = db.session.get(User, cast["peer"])
        other = db.session.get(Participant, cast["other"])
        with pytest.raises(services.PermissionDenied):
            services.view_participant(other, actor=peer)


# --- whatever a source hands over is shown as text --------------------------------------

def test_entries_are_escaped_and_only_same_site_links_are_followed(cast, app, client, auth,
                                                                   monkeypatch):
    """It escapes every entry's text and detail and links only same-site paths, whatever
    another part of moderation puts in its entries."""
    from tests.xss_payloads import PAYLOADS, assert_no_active_markup

    auth.login("clinician@example.org")
    url = f"/moderation/participants/{cast['mine']}"
    baseline = client.get(url).get_data(as_text=True)
    links = ("javascript:alert(1)", "//evil.example/x", "https://evil.example/x")

    def hostile(person, viewer, since):
        return [record.TimelineEntry(at=NOW - timedelta(minutes=n), kind="note", text=payload,
                                     url=links[n % len(links)], detail=(payload,))
                for n, (payload, _what) in enumerate(PAYLOADS)]

    monkeypatch.setitem(record.SOURCES, "hostile", hostile)
    page = client.get(url).get_data(as_text=True)
    assert_no_active_markup(page, baseline=baseline)
    for link in links:
        assert f'href="{link}"' not in page
    assert html.escape(PAYLOADS[0][0], quote=False) in page


# --- the header -------------------------------------------------------------------------

def facts(page: str) -> dict[str, str]:
    block = page[page.index('<dl class="facts">'):page.index("</dl>")]
    return {dt: " ".join(html.unescape(re.sub(r"<[^>]+>", "", dd)).split())
            for dt, dd in re.findall(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", block, flags=re.S)}


def test_the_header_shows_the_caseload_figures(cast, app, client, auth):
    """It repeats the caseload's figures for the person at the top of their page."""
    with app.app_context():
        person = db.session.get(Participant, cast["mine"])
        record_event(person, "login", at=NOW - timedelta(days=3))
        add_moods(person, {date(2026, 3, 9): 2, date(2026, 3, 2): 4}, at=NOW)
        add_prompt(person, NOW - timedelta(days=1), answered=True)
        add_prompt(person, NOW - timedelta(days=2))
        add_alert(person, at=NOW)
        db.session.commit()
    auth.login("peer@example.org")
    shown = facts(client.get(f"/moderation/participants/{cast['mine']}").get_data(as_text=True))
    assert shown["Last active"].startswith("Active in the last week")
    assert shown["Mood, last 7 days"] == ("2.0 of 5 over 1 day; 4.0 the week before "
                                          "(dropping, -2.0)")
    assert shown["SMS replies, last 14 days"] == "50% (1 of 2 answered)"
    assert shown["Module progress"] == "Nothing open yet; 0 modules completed"
    assert shown["Open work"] == "1 open risk alert · 0 open check-ins · 0 unread replies"
    assert shown["Arm"] == "Guided"


def test_the_header_warns_not_to_contact_a_withdrawn_participant(cast, app, client, auth):
    with app.app_context():
        db.session.get(Participant, cast["mine"]).status = "withdrawn"
        db.session.commit()
    auth.login("peer@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}").get_data(as_text=True)
    assert "Withdrawn from the study: do not contact them" in page


def test_a_long_timeline_shows_the_newest_entries_and_says_so(cast, app, client, auth):
    with app.app_context():
        person = db.session.get(Participant, cast["mine"])
        for n in range(services.LIMIT + 5):
            record_event(person, "login", at=NOW - timedelta(hours=n))
        db.session.commit()
    auth.login("peer@example.org")
    page = client.get(f"/moderation/participants/{cast['mine']}").get_data(as_text=True)
    assert len(entries_on_page(page)) == services.LIMIT
    assert "Only the newest entries are shown" in page
    quiet = client.get(f"/moderation/participants/{cast['mine']}?period=7").get_data(as_text=True)
    assert "Only the newest entries are shown" not in quiet
