"""The check-in pages: lists by caseload, completing a task by message, by text or by
another contact, the conflict when two moderators complete the same task, cancelling,
adding by hand, and who may do what."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant, User
from core.notifications import Notification
from core.roles import Role
from core.sms import SmsMessage
from moderation import checkins, record
from moderation.care_models import CheckInTask, ModeratorMessage
from moderation.checkins import wording
from tests.factories import make_participant, make_staff, make_study
from tests.moderation.checkin_data import (
    ADMIN,
    CLINICIAN,
    OTHER_PEER,
    PEER,
    RESEARCHER,
    audits,
    signed_in,
    text_of,
)
from tests.pages import table_rows

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_time(NOW)
    yield
    clock.set_time(None)


@dataclass(frozen=True)
class Cast:
    peer: int
    clinician: int
    mine: int
    theirs: int
    nobodys: int
    my_task: int
    their_task: int
    nobodys_task: int


@pytest.fixture
def cast(app) -> Cast:
    """Kit holds Quiet Harbour (T-0001, textable), Lee holds Still Meadow (T-0002), nobody
    holds Open Field (T-0003); each has an open "inactive" task; templates are seeded."""
    with app.app_context():
        study = make_study()
        kit = make_staff(Role.PEER_MODERATOR, PEER, name="Kit")
        lee = make_staff(Role.PEER_MODERATOR, OTHER_PEER, name="Lee")
        clinician = make_staff(Role.CLINICIAN, CLINICIAN, name="Dr Patel")
        make_staff(Role.RESEARCHER, RESEARCHER)
        make_staff(Role.ADMIN, ADMIN)
        people = [make_participant(study, code, name=name, moderator=mod, arm="guided")
                  for code, name, mod in (("T-0001", "Quiet Harbour", kit),
                                          ("T-0002", "Still Meadow", lee),
                                          ("T-0003", "Open Field", None))]
        mine = people[0]
        mine.phone, mine.sms_consent = "+447700900123", True
        for person in people:
            person.status = "active"
        tasks = [checkins.open_task(p, "inactive", due_at=NOW + timedelta(hours=48),
                                    detail={"days": 9, "never_active": False})
                 for p in people]
        wording.seed_default_templates()
        db.session.commit()
        return Cast(kit.id, clinician.id, *(p.id for p in people), *(t.id for t in tasks))


def task(task_id: int) -> CheckInTask:
    db.session.expire_all()
    return db.session.get(CheckInTask, task_id)


def names_listed(client, query: str = "") -> list[str]:
    response = client.get(f"/moderation/checkins{query}")
    assert response.status_code == 200
    return [row[0] for row in table_rows(response.data) if len(row) > 1]


def complete(client, task_id: int, **data):
    form = {"version": "1", "outcome": "no_answer", **data}
    return client.post(f"/moderation/checkins/{task_id}/complete", data=form)


# --- lists -----------------------------------------------------------------------------


def test_a_peer_sees_only_their_caseload(app, cast):
    """It lists a peer's own participants' tasks, whatever the query asks for."""
    kit = signed_in(app, PEER)
    assert names_listed(kit) == ["Quiet Harbour"]
    assert names_listed(kit, "?who=all") == ["Quiet Harbour"]
    assert names_listed(kit, "?who=unassigned") == ["Quiet Harbour"]


def test_a_clinician_sees_everyone_and_the_unassigned(app, cast):
    """It gives clinicians everyone's tasks and a list of the caseless."""
    doctor = signed_in(app, CLINICIAN)
    assert names_listed(doctor) == []
    assert sorted(names_listed(doctor, "?who=all")) == ["Open Field", "Quiet Harbour",
                                                        "Still Meadow"]
    assert names_listed(doctor, "?who=unassigned") == ["Open Field"]


def test_tabs_split_due_overdue_and_done(app, cast):
    """It moves a task from due to overdue at its due time, and to done once completed."""
    kit = signed_in(app, PEER)
    assert names_listed(kit, "?show=due") == ["Quiet Harbour"]
    assert names_listed(kit, "?show=overdue") == []
    clock.set_time(NOW + timedelta(hours=48))
    kit = signed_in(app, PEER)  # the old session has timed out
    assert names_listed(kit, "?show=due") == []
    assert names_listed(kit, "?show=overdue") == ["Quiet Harbour"]
    response = kit.get("/moderation/checkins?show=overdue")
    assert "Overdue (1)" in text_of(response) and "overdue" in text_of(response)
    complete(kit, cast.my_task, channel="phone", outcome="reached")
    assert names_listed(kit, "?show=done") == ["Quiet Harbour"]
    assert "late" in text_of(kit.get("/moderation/checkins?show=done"))


@pytest.mark.parametrize("who", ["T-0001", RESEARCHER, ADMIN])
def test_participants_researchers_and_admins_do_not_reach_check_ins(app, cast, who):
    """It refuses the list and the task pages to anyone but moderators."""
    client = signed_in(app, who)
    assert client.get("/moderation/checkins").status_code == 403
    assert client.get(f"/moderation/checkins/{cast.my_task}").status_code == 403
    response = complete(client, cast.my_task, channel="phone")
    assert response.status_code == 403
    with app.app_context():
        assert task(cast.my_task).status == "open"


def test_signed_out_visitors_are_sent_to_sign_in(client, cast):
    """It sends an anonymous visitor to the sign-in page."""
    response = client.get("/moderation/checkins")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- the task page -----------------------------------------------------------------------


def test_the_task_page_starts_from_the_template_for_its_reason(app, cast):
    """It fills the template made for the task's reason with their name and the
    moderator's, and offers texting when they may be texted."""
    kit = signed_in(app, PEER)
    response = kit.get(f"/moderation/checkins/{cast.my_task}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Hi Quiet Harbour, it&#39;s Kit from Kinship." in page
    assert 'value="sms"' in page
    assert "9 days without using the platform" in text_of(response)


def test_choosing_another_template_fills_the_message(app, cast):
    """It puts the chosen template's words in the message."""
    with app.app_context():
        chosen = db.session.scalar(select(wording.CheckInTemplate).where(
            wording.CheckInTemplate.title == "A lonely week"))
    kit = signed_in(app, PEER)
    page = kit.get(f"/moderation/checkins/{cast.my_task}?template={chosen.id}")
    assert "Thank you for answering this week&#39;s questions" in page.get_data(as_text=True)


def _template_id(app, title: str) -> int:
    with app.app_context():
        return db.session.scalar(select(wording.CheckInTemplate.id).where(
            wording.CheckInTemplate.title == title))


def test_choosing_a_template_on_a_started_form_keeps_everything_else(app, cast):
    """A template button submits the form: the template's words replace the message, the
    outcome and staff note stay as typed, what the message said is shown beside it, and
    nothing is completed or sent."""
    chosen = _template_id(app, "A lonely week")
    kit = signed_in(app, PEER)
    page = kit.get(f"/moderation/checkins/{cast.my_task}").get_data(as_text=True)
    assert f'form="complete-form" name="template" value="{chosen}"' in page
    response = complete(kit, cast.my_task, template=str(chosen), channel="in_app",
                        outcome="reached", body="My own words for Quiet Harbour",
                        note="Spoke to the care coordinator first.")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Thank you for answering this week&#39;s questions" in page
    assert "What you had written" in page and "My own words for Quiet Harbour" in page
    assert "Spoke to the care coordinator first." in page
    assert 'value="reached" checked' in page
    assert "error" not in text_of(response).lower()
    with app.app_context():
        assert task(cast.my_task).status == "open"
        assert db.session.scalar(select(ModeratorMessage)) is None


def test_switching_templates_does_not_keep_the_first_template_as_earlier_text(app, cast):
    """Words that are only another template's are not offered back as "what you wrote"."""
    first = _template_id(app, "A lonely week")
    kit = signed_in(app, PEER)
    page = complete(kit, cast.my_task, template=str(first)).get_data(as_text=True)
    with app.app_context():
        second = db.session.scalar(select(wording.CheckInTemplate.id).where(
            wording.CheckInTemplate.id != first))
        person = db.session.get(Participant, cast.mine)
        body = wording.fill(db.session.get(wording.CheckInTemplate, first).body, person,
                            db.session.get(User, cast.peer))
    response = complete(kit, cast.my_task, template=str(second), body=body)
    assert response.status_code == 200
    assert "What you had written" not in response.get_data(as_text=True)
    assert "Thank you for answering" in page


def test_an_unknown_template_changes_nothing_and_completes_nothing(app, cast):
    kit = signed_in(app, PEER)
    response = complete(kit, cast.my_task, template="999999", channel="in_app",
                        body="Kept as typed")
    assert response.status_code == 200
    assert "Kept as typed" in response.get_data(as_text=True)
    with app.app_context():
        assert task(cast.my_task).status == "open"


def test_a_peer_cannot_open_or_complete_a_task_of_another_caseload(app, cast):
    """It answers 403 to a peer outside their caseload and changes nothing."""
    kit = signed_in(app, PEER)
    assert kit.get(f"/moderation/checkins/{cast.their_task}").status_code == 403
    assert kit.get(f"/moderation/checkins/{cast.nobodys_task}").status_code == 403
    response = complete(kit, cast.their_task, channel="in_app", body="Hello")
    assert response.status_code == 403
    assert kit.post(f"/moderation/checkins/{cast.their_task}/cancel",
                    data={"cancel-version": "1", "cancel-reason": "no"}).status_code == 403
    with app.app_context():
        assert task(cast.their_task).status == "open"
        assert db.session.scalar(select(ModeratorMessage)) is None


# --- completing ------------------------------------------------------------------------


def test_completing_by_message_in_the_app(app, cast):
    """It sends the message (notification, inbox, activity event), closes the task with
    its channel and outcome, and audits it."""
    kit = signed_in(app, PEER)
    response = complete(kit, cast.my_task, channel="in_app", body="Hi, how are you doing?",
                        outcome="no_answer", note="Left a message.")
    assert response.status_code == 302
    with app.app_context():
        done = task(cast.my_task)
        assert (done.status, done.channel, done.outcome) == ("done", "in_app", "no_answer")
        assert (done.completed_by_id, done.completed_at, done.open_key) == (cast.peer, NOW, None)
        assert done.version == 2 and done.note == "Left a message."
        message = db.session.get(ModeratorMessage, done.message_id)
        assert (message.participant_id, message.body) == (cast.mine, "Hi, how are you doing?")
        assert message.sms_message_id is None
        person = db.session.get(Participant, cast.mine)
        note = db.session.scalar(select(Notification).where(
            Notification.user_id == person.user_id, Notification.kind == "moderator_message"))
        assert note is not None and "Kit" in note.text
        event = db.session.scalar(select(ActivityEvent).where(
            ActivityEvent.kind == "moderator_contact"))
        assert event.detail["task_id"] == cast.my_task
        [entry] = audits("checkin.task_completed")
        assert (entry.actor_id, entry.target_id) == (cast.peer, cast.mine)
        assert entry.detail == {"task_id": cast.my_task, "reason": "inactive",
                                "channel": "in_app", "outcome": "no_answer", "late": False}
        assert "Left a message" not in str(entry.detail)


def test_completing_by_text_queues_an_sms(app, cast):
    """It puts the message in the SMS outbox when the participant may be texted."""
    kit = signed_in(app, PEER)
    assert complete(kit, cast.my_task, channel="sms", body="Thinking of you.").status_code == 302
    with app.app_context():
        sms = db.session.scalar(select(SmsMessage))
        assert (sms.participant_id, sms.body, sms.purpose) == (cast.mine, "Thinking of you.",
                                                               "moderator_message")
        assert db.session.get(ModeratorMessage, task(cast.my_task).message_id).sms_message_id \
            == sms.id


def test_texting_someone_who_cannot_be_texted_is_refused_politely(app, cast):
    """It explains why no text can go, keeps what was typed and leaves the task open; the
    page does not offer texting then."""
    with app.app_context():
        db.session.get(Participant, cast.mine).sms_consent = False
        db.session.commit()
    kit = signed_in(app, PEER)
    page = kit.get(f"/moderation/checkins/{cast.my_task}")
    assert 'value="sms"' not in page.get_data(as_text=True)
    assert "Texting is not offered: They have not agreed to text messages." in text_of(page)
    response = complete(kit, cast.my_task, channel="sms", body="My own words here.")
    assert response.status_code == 200
    assert ("A text cannot be sent: They have not agreed to text messages. Send it in the "
            "app instead.") in text_of(response)
    assert "My own words here." in response.get_data(as_text=True)
    with app.app_context():
        assert task(cast.my_task).status == "open"
        assert db.session.scalar(select(SmsMessage)) is None


def test_recording_another_contact(app, cast):
    """It records a phone call with its outcome and a staff note, and sends nothing."""
    kit = signed_in(app, PEER)
    response = complete(kit, cast.my_task, channel="phone", outcome="reached_support",
                        note="Talked about the walking group.")
    assert response.status_code == 302
    with app.app_context():
        done = task(cast.my_task)
        assert (done.channel, done.outcome, done.message_id) == ("phone", "reached_support",
                                                                 None)
        assert db.session.scalar(select(ModeratorMessage)) is None


@pytest.mark.parametrize(("data", "error"), [
    ({"channel": "in_app", "body": "  "}, "Please write a message first."),
    ({"channel": "none", "outcome": "reached"}, "cannot have been reached"),
    ({"channel": "carrier pigeon"}, "Not a valid choice"),
    ({"channel": "phone", "outcome": ""}, "Choose what came of it."),
])
def test_bad_completions_are_refused_on_their_field(app, cast, data, error):
    """It refuses an empty message, a contradiction and unknown choices, and keeps the
    task open."""
    kit = signed_in(app, PEER)
    response = complete(kit, cast.my_task, **data)
    assert response.status_code == 200
    assert error in text_of(response)
    with app.app_context():
        assert task(cast.my_task).status == "open"


def test_a_second_moderator_learns_who_completed_it_first(app, cast):
    """It lets only the first completion through: the second, from a page loaded before,
    is told who completed it and changes nothing."""
    doctor = signed_in(app, CLINICIAN)
    kit = signed_in(app, PEER)
    assert complete(doctor, cast.my_task, channel="in_app", body="From Dr Patel").status_code \
        == 302
    response = complete(kit, cast.my_task, channel="in_app", body="From Kit")
    assert response.status_code == 302
    page = kit.get(response.headers["Location"])
    assert "Already completed by Dr Patel at 09:00 UTC on 10 Mar 2026." in text_of(page)
    with app.app_context():
        done = task(cast.my_task)
        assert (done.completed_by_id, done.version) == (cast.clinician, 2)
        bodies = db.session.scalars(select(ModeratorMessage.body)).all()
        assert bodies == ["From Dr Patel"]
        assert len(audits("checkin.task_completed")) == 1


def test_cancelling_needs_a_reason(app, cast):
    """It cancels with a reason (kept as the staff note, not in the audit log), and refuses
    an empty one."""
    kit = signed_in(app, PEER)
    url = f"/moderation/checkins/{cast.my_task}/cancel"
    response = kit.post(url, data={"cancel-version": "1", "cancel-reason": ""})
    assert response.status_code == 200
    assert "Say why the check-in is not needed." in text_of(response)
    assert kit.post(url, data={"cancel-version": "1",
                               "cancel-reason": "Saw them at the group today."}
                    ).status_code == 302
    with app.app_context():
        done = task(cast.my_task)
        assert (done.status, done.note, done.open_key) == ("cancelled",
                                                           "Saw them at the group today.", None)
        [entry] = audits("checkin.task_cancelled")
        assert "group" not in str(entry.detail)
    again = kit.post(url, data={"cancel-version": "1", "cancel-reason": "twice"})
    assert "Already cancelled by Kit" in text_of(kit.get(again.headers["Location"]))


# --- by hand, panel and timeline -------------------------------------------------------


def test_adding_a_check_in_by_hand(app, cast):
    """It adds one manual task at a time from the participant's page, only for the
    moderator's own caseload."""
    kit = signed_in(app, PEER)
    url = f"/moderation/participants/{cast.mine}/checkins"
    assert kit.get(url).status_code == 200
    response = kit.post(url, data={"due_hours": "24", "note": "Ask about the course."})
    assert response.status_code == 302
    page = kit.get(response.headers["Location"])
    assert "What to check in about Ask about the course." in text_of(page)
    assert "Added by hand by Kit" in text_of(page)
    again = kit.post(url, data={"due_hours": "72", "note": "Second one"})
    assert again.status_code == 200
    assert "There is already an open check-in added by hand" in text_of(again)
    assert "Second one" in again.get_data(as_text=True)
    bad = kit.post(url, data={"due_hours": "5"})
    assert bad.status_code == 200 and "Not a valid choice" in text_of(bad)
    assert kit.post(f"/moderation/participants/{cast.theirs}/checkins",
                    data={"due_hours": "24"}).status_code == 403
    with app.app_context():
        manual = db.session.scalar(select(CheckInTask).where(CheckInTask.reason == "manual"))
        assert (manual.participant_id, manual.due_at, manual.note) == (
            cast.mine, NOW + timedelta(hours=24), "Ask about the course.")
        assert manual.detail == {"added_by": cast.peer}
        assert audits("checkin.task_created")[-1].actor_id == cast.peer


def test_the_panel_and_the_timeline(app, cast):
    """It gives the staff page a panel of open tasks and timeline lines; a peer does not
    read a clinician's note."""
    doctor = signed_in(app, CLINICIAN)
    complete(doctor, cast.my_task, channel="phone", outcome="reached", note="Clinical note.")
    with app.app_context(), app.test_request_context():
        person = db.session.get(Participant, cast.mine)
        kit = db.session.get(User, cast.peer)
        lee = db.session.scalar(select(User).where(User.email == OTHER_PEER))
        panel = record.PANELS["checkins"]
        assert panel.load(person, kit)["tasks"] == []
        assert panel.load(person, lee) is None
        assert "checkin" in record.SOURCES
        lines = checkins.timeline_entries(person, kit, None)
        assert [e.text for e in lines] == ["Check-in to do: Inactive for a while",
                                           "Check-in done by Dr Patel: Phone call, "
                                           "reached, doing all right"]
        assert all(e.detail == () for e in lines)
        clinician = db.session.get(User, cast.clinician)
        assert checkins.timeline_entries(person, clinician, None)[1].detail == (
            "Clinical note.",)


def test_the_staff_page_shows_the_panel(app, cast):
    """It shows open check-ins and the form to add one on the participant's staff page."""
    kit = signed_in(app, PEER)
    response = kit.get(f"/moderation/participants/{cast.mine}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'href="/moderation/checkins/{cast.my_task}"' in page
    assert f'action="/moderation/participants/{cast.mine}/checkins"' in page
