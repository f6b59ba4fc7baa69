"""Moderator <-> participant messages: the service both ways with notifications, who a
reply reaches, unread counts, refusals, and the participant's inbox at /messages."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant, User
from core.notifications import Notification
from core.roles import Role
from moderation import messages
from moderation.care_models import ModeratorMessage
from moderation.models import RotaEntry
from outcomes.participants import WITHDRAWN
from tests.factories import make_staff
from tests.moderation.message_helpers import (
    CLINICIAN,
    MINE,
    NOW,
    PEER,
    audits,
    make_cast,
    signed_in,
    text_of,
)

pytestmark = pytest.mark.usefixtures("frozen_clock")


def person(cast) -> Participant:
    return db.session.get(Participant, cast.participant)


def user(user_id: int) -> User:
    return db.session.get(User, user_id)


def notifications_of(user_id: int) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user_id)
                                   .order_by(Notification.id)))


# --------------------------------------------------------------------------- the service


def test_message_to_participant_is_stored_notified_recorded_and_audited(app, cast):
    """It stores the text, tells the participant in the app (by the moderator's display
    name, linking to /messages), records moderator_contact and audits ids only."""
    with app.app_context():
        message = messages.send(person(cast), "How was the walk?", actor=user(cast.peer))
        db.session.commit()
        told = notifications_of(cast.participant_user)
        assert [(n.kind, n.text, n.url) for n in told] == [
            ("moderator_message", "Kit sent you a message", "/messages")]
        event = db.session.scalar(select(ActivityEvent).where(
            ActivityEvent.kind == "moderator_contact"))
        assert event.detail["message_id"] == message.id and event.detail["by_sms"] is False
        [entry] = audits("moderation.message.sent")
        assert entry.actor_id == cast.peer and entry.target_id == cast.participant_user
        assert "How was the walk" not in str(entry.detail)
        assert message.sms_message_id is None


def test_staff_without_a_display_name_is_never_shown_by_email(app, cast):
    with app.app_context():
        nameless = make_staff(Role.CLINICIAN, "nameless@example.org")
        messages.send(person(cast), "Hello", actor=nameless)
        db.session.commit()
        [note] = notifications_of(cast.participant_user)
        assert note.text == "Your moderator sent you a message"
        assert "nameless@" not in note.text


def test_reply_tells_the_caseload_moderator_and_records_the_activity(app, cast):
    with app.app_context():
        messages.reply(person(cast), "It went well, thanks")
        db.session.commit()
        [note] = notifications_of(cast.peer)
        assert note.kind == "participant_message"
        assert note.url == f"/moderation/participants/{cast.participant}/messages"
        assert "Quiet Harbour" in note.text and "It went well" not in note.text
        assert db.session.scalar(select(ActivityEvent.kind).where(
            ActivityEvent.kind == "moderator_message_written")) is not None
        assert notifications_of(cast.clinician) == []


def test_reply_without_caseload_moderator_goes_to_whoever_wrote_last(app, cast):
    with app.app_context():
        participant = person(cast)
        participant.moderator_id = None
        messages.send(participant, "Checking in", actor=user(cast.clinician))
        db.session.commit()
        assert messages.reply_recipient(participant).id == cast.clinician
        messages.reply(participant, "Thanks")
        db.session.commit()
        assert [n.kind for n in notifications_of(cast.clinician)] == ["participant_message"]
        assert notifications_of(cast.peer) == []


def test_last_writer_who_may_no_longer_see_them_is_passed_over(app, cast):
    """A peer who wrote while the participant was on their caseload, then lost them,
    is not told: the on-call clinician is."""
    with app.app_context():
        participant = person(cast)
        messages.send(participant, "Hello", actor=user(cast.peer))
        participant.moderator_id = None
        other_clinician = make_staff(Role.CLINICIAN, "oncall@example.org", name="Dr Ode")
        db.session.add(RotaEntry(user_id=other_clinician.id, position=1))
        db.session.commit()
        assert messages.reply_recipient(participant) is None
        assert [u.id for u in messages.reply_recipients(participant)] == [other_clinician.id]
        messages.reply(participant, "Hi")
        db.session.commit()
        assert notifications_of(cast.peer) == []
        assert len(notifications_of(other_clinician.id)) == 1


def test_message_nobody_answers_for_reaches_every_clinician(app, cast):
    """No caseload moderator, nobody wrote, nobody on call: every clinician is told, so
    a message is never read by no one."""
    with app.app_context():
        participant = person(cast)
        participant.moderator_id = None
        second = make_staff(Role.CLINICIAN, "second@example.org", name="Dr Two")
        db.session.commit()
        messages.reply(participant, "Is anyone there?")
        db.session.commit()
        assert len(notifications_of(cast.clinician)) == 1
        assert len(notifications_of(second.id)) == 1


def test_peer_cannot_write_outside_their_caseload_but_a_clinician_can(app, cast):
    with app.app_context():
        theirs = db.session.get(Participant, cast.other_participant)
        with pytest.raises(messages.PermissionDenied):
            messages.send(theirs, "Hello", actor=user(cast.peer))
        messages.send(theirs, "Hello", actor=user(cast.clinician))
        db.session.commit()
        assert db.session.scalar(select(ModeratorMessage.sender_id)) == cast.clinician


def test_participant_and_researcher_cannot_send_as_staff(app, cast):
    with app.app_context():
        researcher = db.session.scalar(select(User).where(User.role == Role.RESEARCHER))
        for actor in (researcher, person(cast).user):
            with pytest.raises(messages.PermissionDenied):
                messages.send(person(cast), "Hello", actor=actor)


def test_withdrawn_participant_is_not_written_to(app, cast):
    with app.app_context():
        participant = person(cast)
        participant.status = WITHDRAWN
        db.session.commit()
        with pytest.raises(messages.MessageError, match="withdrawn"):
            messages.send(participant, "Hello", actor=user(cast.peer))


@pytest.mark.parametrize(("body", "problem"), [
    ("", "Please write a message first."),
    ("   \n  ", "Please write a message first."),
    ("x" * 2001, "under 2,000 characters (it has 2,001)"),
])
def test_empty_or_long_message_is_refused(app, cast, body, problem):
    with app.app_context():
        with pytest.raises(messages.MessageError, match=problem.replace("(", r"\(")
                           .replace(")", r"\)")):
            messages.send(person(cast), body, actor=user(cast.peer))
        with pytest.raises(messages.MessageError):
            messages.reply(person(cast), body)


def test_unread_counts_on_both_sides(app, cast):
    with app.app_context():
        participant = person(cast)
        messages.send(participant, "One", actor=user(cast.peer))
        messages.send(participant, "Two", actor=user(cast.peer))
        messages.reply(participant, "Back")
        assert messages.unread_for_participant(participant) == 2
        assert messages.unread_for_staff(participant) == 1
        assert messages.mark_read(participant, reader=participant.user) == 2
        assert messages.unread_for_participant(participant) == 0
        assert messages.unread_for_staff(participant) == 1
        assert messages.mark_read(participant, reader=user(cast.peer)) == 1
        assert messages.unread_for_staff(participant) == 0


def test_conversation_is_oldest_first(app, cast):
    with app.app_context():
        participant = person(cast)
        for minutes, body in ((0, "first"), (5, "second"), (9, "third")):
            clock.set_time(NOW + timedelta(minutes=minutes))
            if body == "second":
                messages.reply(participant, body)
            else:
                messages.send(participant, body, actor=user(cast.peer))
        assert [m.body for m in messages.conversation(participant)] == [
            "first", "second", "third"]
        assert [m.body for m in messages.conversation(participant, limit=2)] == [
            "second", "third"]


# --------------------------------------------------------------------------- the inbox


def _send(app, cast, body: str, *, at: datetime = NOW) -> None:
    clock.set_time(at)
    with app.app_context():
        messages.send(person(cast), body, actor=user(cast.peer))
        db.session.commit()


def test_inbox_shows_the_conversation_in_their_time_and_marks_it_read(app, cast):
    """It lists messages oldest first with who wrote them and the participant's local
    time, keeps line breaks, and marks the moderator's messages and their notification
    read."""
    with app.app_context():
        person(cast).timezone = "America/New_York"
        db.session.commit()
    _send(app, cast, "First line\nSecond line", at=NOW)
    with app.app_context():
        clock.set_time(NOW + timedelta(minutes=30))
        messages.reply(person(cast), "My answer")
        db.session.commit()
    client = signed_in(app, MINE)
    response = client.get("/messages")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<p class="sms-body">First line\nSecond line</p>' in html
    page = text_of(response)
    assert page.index("Kit Tue 10 Mar, 08:00 New") < page.index("You Tue 10 Mar, 08:30")
    assert "New" not in text_of(client.get("/messages")).split("Your conversation")[1]
    with app.app_context():
        assert messages.unread_for_participant(person(cast)) == 0
        assert all(n.read_at is not None for n in notifications_of(cast.participant_user))
        assert messages.unread_for_staff(person(cast)) == 1  # their own stays for staff


def test_inbox_without_messages_explains_and_still_lets_them_write(app, cast):
    client = signed_in(app, MINE)
    page = text_of(client.get("/messages"))
    assert "No messages yet" in page and "write to them first" in page
    response = client.post("/messages", data={"body": "Hello, I have a question"})
    assert response.status_code == 302
    with app.app_context():
        [message] = messages.conversation(person(cast))
        assert (message.direction, message.body) == ("from_participant",
                                                     "Hello, I have a question")
        assert len(notifications_of(cast.peer)) == 1


@pytest.mark.parametrize(("body", "error"), [
    ("", "Please write a message first."),
    ("y" * 2500, "Please keep the message under 2,000 characters."),
])
def test_bad_reply_keeps_the_text_and_names_the_problem(app, cast, body, error):
    client = signed_in(app, MINE)
    response = client.post("/messages", data={"body": body})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert error in html and 'aria-invalid="true"' in html
    assert body in html
    with app.app_context():
        assert messages.conversation(person(cast)) == []


def test_messages_entry_in_the_navigation_for_participants(app, cast):
    client = signed_in(app, MINE)
    assert '<a href="/messages"' in client.get("/account").get_data(as_text=True)
    staff = signed_in(app, PEER)
    assert '<a href="/messages"' not in staff.get("/account").get_data(as_text=True)


def test_navigation_count_is_the_participants_unread_messages(app, cast):
    """``unread_count`` (the Messages entry's count): theirs for a participant, 0 for
    staff, once per request."""
    from moderation.message_views import unread_count

    _send(app, cast, "One")
    _send(app, cast, "Two")
    with app.test_request_context():
        assert unread_count(db.session.get(User, cast.participant_user)) == 2
    with app.test_request_context():
        assert unread_count(user(cast.peer)) == 0
        participant_user = db.session.get(User, cast.participant_user)
        messages.open_inbox(participant_user.participant)
        assert unread_count(participant_user) == 0


def test_unguided_arm_has_no_messages_until_a_moderator_writes(app):
    """An arm without moderator check-ins gets no Messages entry and cannot write first;
    once a moderator has written (e.g. for their safety), they can answer."""
    cast = make_cast(app, arm="self")
    client = signed_in(app, MINE)
    assert '<a href="/messages"' not in client.get("/account").get_data(as_text=True)
    assert "does not include messages" in text_of(client.get("/messages"))
    assert client.post("/messages", data={"body": "Hi"}).status_code == 403
    with app.app_context():
        messages.send(person(cast), "Checking you are safe", actor=user(cast.clinician))
        db.session.commit()
    assert '<a href="/messages"' in client.get("/account").get_data(as_text=True)
    assert client.post("/messages", data={"body": "I am, thanks"}).status_code == 302


def test_withdrawn_participant_reads_old_messages_but_cannot_write(app, cast):
    _send(app, cast, "Earlier message")
    with app.app_context():
        person(cast).status = WITHDRAWN
        db.session.commit()
    client = signed_in(app, MINE)
    page = text_of(client.get("/messages"))
    assert "Earlier message" in page and "You have left the study" in page
    assert client.post("/messages", data={"body": "Hi"}).status_code == 403


def test_inbox_is_for_participants_only(app, cast):
    for who in (PEER, CLINICIAN):
        assert signed_in(app, who).get("/messages").status_code == 403
    assert app.test_client().get("/messages").status_code == 302  # to sign in


def test_participant_sees_only_their_own_conversation(app, cast):
    """There is no participant id in /messages: another's messages never show."""
    with app.app_context():
        theirs = db.session.get(Participant, cast.other_participant)
        messages.send(theirs, "Private to Still Meadow", actor=user(cast.clinician))
        db.session.commit()
    page = text_of(signed_in(app, MINE).get("/messages"))
    assert "Private to Still Meadow" not in page and "No messages yet" in page


# --------------------------------------------------------------------------- risk words


@pytest.fixture
def message_channel(monkeypatch):
    """The screening channel for participants' messages, as the report to the lead asks
    core and moderation to list it (a private channel: only risk counts)."""
    from core import screening
    from moderation import content
    from moderation import models as moderation_models
    from moderation.screening import screener

    channel = messages.SCREENING_CHANNEL
    monkeypatch.setattr(screening, "CHANNELS", (*screening.CHANNELS, channel))
    monkeypatch.setitem(moderation_models.CONTENT_TYPES, channel, channel)
    monkeypatch.setattr(screener, "PRIVATE_CHANNELS",
                        frozenset({*screener.PRIVATE_CHANNELS, channel}))
    monkeypatch.setitem(content.SOURCES, channel,
                        ("moderation.care_models", "ModeratorMessage", "body"))


def test_risk_words_to_the_moderator_alert_a_clinician_and_show_crisis_help(
        app, cast, message_channel):
    """The message still reaches the moderator; a risk alert opens for the on-call
    clinician with the words readable on the alert page; the author sees the crisis
    page at once."""
    from moderation.models import QueueItem, RiskAlert

    with app.app_context():
        db.session.add(RotaEntry(user_id=cast.clinician, position=1))
        db.session.commit()
    client = signed_in(app, MINE)
    response = client.post("/messages", data={"body": "I want to kill myself tonight"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/help")
    assert "A clinician from the study team will be in touch" in text_of(client.get("/help"))
    with app.app_context():
        [message] = messages.conversation(person(cast))
        alert = db.session.scalar(select(RiskAlert))
        assert (alert.content_type, alert.content_id, alert.participant_id) == (
            "moderator_message", message.id, cast.participant)
        assert alert.assigned_to_id == cast.clinician
        item = db.session.scalar(select(QueueItem))
        assert item.clinician_only and item.action == "flag"
        assert len(notifications_of(cast.peer)) == 1  # the moderator still hears of it
    page = text_of(signed_in(app, CLINICIAN).get(f"/moderation/alerts/{alert.id}"))
    assert "I want to kill myself tonight" in page


def test_ordinary_words_and_personal_details_are_not_queued(app, cast, message_channel):
    """A phone number or an e-mail to one's own moderator is fine: nothing is queued."""
    from moderation.models import QueueItem

    client = signed_in(app, MINE)
    response = client.post("/messages", data={
        "body": "Call me on 07700 900123 or mail me at sam@example.org"})
    assert response.headers["Location"].startswith("/messages")
    with app.app_context():
        assert db.session.scalars(select(QueueItem)).all() == []



# --------------------------------------------------------------------------- texts


def _inbound(participant_id: int, body: str):
    from core.sms import SmsMessage

    row = SmsMessage(direction="in", participant_id=participant_id, purpose="inbound",
                     body=body, phone="+447700900123", status="received",
                     twilio_sid="SM" + "7" * 32)
    db.session.add(row)
    db.session.flush()
    return row


def test_a_text_answering_no_prompt_is_filed_in_the_conversation(app, cast):
    """Linked to its SMS, told to the moderator like a message; both sides see it was a
    text."""
    with app.app_context():
        sms = _inbound(cast.participant, "  can someone ring me\r\nplease ")
        message = messages.from_text(person(cast), sms)
        db.session.commit()
        assert (message.direction, message.body, message.sms_message_id) == (
            "from_participant", "can someone ring me\nplease", sms.id)
        [note] = notifications_of(cast.peer)
        assert note.kind == "participant_message" and "sent a text message" in note.text
        assert "ring me" not in note.text
    assert "by text" in text_of(signed_in(app, MINE).get("/messages"))
    staff = text_of(signed_in(app, PEER).get(
        f"/moderation/participants/{cast.participant}/messages"))
    assert "sent as a text" in staff and "can someone ring me" in staff


def test_an_empty_text_files_nothing(app, cast):
    with app.app_context():
        assert messages.from_text(person(cast), _inbound(cast.participant, "   ")) is None
        assert messages.conversation(person(cast)) == []
