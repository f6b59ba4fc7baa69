"""The staff side of the messages: /moderation/participants/<id>/messages (authorisation,
audit, read marks, the SMS copy and its refusal, bad input), the "messages" panel and the
"message" timeline source on the staff page of a participant, and XSS on both sides."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.models import Participant, User
from core.sms import SmsMessage
from moderation import messages, record
from moderation.care_models import ModeratorMessage
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
    signed_in,
    text_of,
)
from tests.xss_payloads import PAYLOADS, assert_no_active_markup

PHONE = "+447700900123"


pytestmark = pytest.mark.usefixtures("frozen_clock")


def url(cast, *, other: bool = False) -> str:
    pid = cast.other_participant if other else cast.participant
    return f"/moderation/participants/{pid}/messages"


def person(cast) -> Participant:
    return db.session.get(Participant, cast.participant)


def textable(app, cast) -> None:
    with app.app_context():
        participant = person(cast)
        participant.phone, participant.sms_consent = PHONE, True
        db.session.commit()


def stored() -> list[ModeratorMessage]:
    return list(db.session.scalars(select(ModeratorMessage).order_by(ModeratorMessage.id)))


# --------------------------------------------------------------------------- authorisation


def test_caseload_peer_and_any_clinician_open_the_conversation(app, cast):
    assert signed_in(app, PEER).get(url(cast)).status_code == 200
    assert signed_in(app, CLINICIAN).get(url(cast, other=True)).status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_peer_cannot_reach_a_participant_of_another_caseload(app, cast, method):
    client = signed_in(app, OTHER_PEER)
    response = client.open(url(cast), method=method, data={"body": "Hello"})
    assert response.status_code == 403
    with app.app_context():
        assert stored() == [] and audits("moderation.messages.viewed") == []


@pytest.mark.parametrize("who", [RESEARCHER, ADMIN, MINE])
def test_other_roles_are_refused(app, cast, who):
    client = signed_in(app, who)
    assert client.get(url(cast)).status_code == 403
    assert client.post(url(cast), data={"body": "Hello"}).status_code == 403
    with app.app_context():
        assert stored() == []


def test_missing_participant_is_404(app, cast):
    assert signed_in(app, CLINICIAN).get("/moderation/participants/999999/messages") \
        .status_code == 404


# --------------------------------------------------------------------------- reading


def test_opening_is_audited_and_marks_their_replies_read(app, cast):
    with app.app_context():
        messages.send(person(cast), "How are you?", actor=db.session.get(User, cast.peer))
        messages.reply(person(cast), "Better today\nthank you")
        db.session.commit()
    response = signed_in(app, PEER).get(url(cast))
    html = response.get_data(as_text=True)
    assert "Better today\nthank you" in html
    page = text_of(response)
    assert page.index("How are you?") < page.index("Better today")
    assert "Quiet Harbour (participant)" in page and "not read yet" in page
    with app.app_context():
        assert messages.unread_for_staff(person(cast)) == 0
        [entry] = audits("moderation.messages.viewed")
        assert (entry.actor_id, entry.target_id) == (cast.peer, cast.participant_user)
        assert entry.detail["marked_read"] == 1


# --------------------------------------------------------------------------- sending


def test_sending_from_the_page_reaches_the_participant(app, cast):
    client = signed_in(app, PEER)
    response = client.post(url(cast), data={"body": "Hello there"})
    assert response.status_code == 302
    with app.app_context():
        [message] = stored()
        assert response.headers["Location"].endswith(f"{url(cast)}#message-{message.id}")
        assert (message.body, message.sender_id, message.sms_message_id) == (
            "Hello there", cast.peer, None)
        assert db.session.scalar(select(func.count()).select_from(SmsMessage)) == 0
    inbox = text_of(signed_in(app, MINE).get("/messages"))
    assert "Kit" in inbox and "Hello there" in inbox


def test_text_copy_offered_and_queued_when_they_may_be_texted(app, cast):
    textable(app, cast)
    client = signed_in(app, PEER)
    assert 'name="by_sms"' in client.get(url(cast)).get_data(as_text=True)
    response = client.post(url(cast), data={"body": "See you Tuesday", "by_sms": "y"})
    assert response.status_code == 302
    with app.app_context():
        [message] = stored()
        sms = db.session.get(SmsMessage, message.sms_message_id)
        assert (sms.participant_id, sms.body, sms.purpose, sms.status) == (
            cast.participant, "See you Tuesday", "moderator_message", "pending")
        [entry] = audits("moderation.message.sent")
        assert entry.detail["by_sms"] is True
    assert "text copy: waiting to go out" in text_of(client.get(url(cast)))


def test_staff_see_when_a_text_copy_was_held_back(app, cast):
    """The dispatcher may still refuse the copy (e.g. the daily limit): staff see it."""
    textable(app, cast)
    client = signed_in(app, PEER)
    client.post(url(cast), data={"body": "See you Tuesday", "by_sms": "y"})
    with app.app_context():
        sms = db.session.scalar(select(SmsMessage))
        sms.status, sms.reason = "cancelled", "daily_limit"
        db.session.commit()
    page = text_of(client.get(url(cast)))
    assert "text copy: not sent (daily limit)" in page


@pytest.mark.parametrize(("change", "reason"), [
    ({"phone": None}, "They have not given a mobile number."),
    ({"sms_consent": False}, "They have not agreed to text messages."),
    ({"sms_opted_out_at": NOW}, "They texted STOP"),
])
def test_text_copy_refused_with_the_reason_when_they_may_not_be_texted(app, cast, change,
                                                                        reason):
    """It explains instead of offering the box; a forced post keeps the text, names the
    reason on the field and sends nothing."""
    textable(app, cast)
    with app.app_context():
        participant = person(cast)
        for name, value in change.items():
            setattr(participant, name, value)
        db.session.commit()
    client = signed_in(app, PEER)
    page = client.get(url(cast)).get_data(as_text=True)
    assert 'name="by_sms"' not in page and reason in page
    response = client.post(url(cast), data={"body": "Typed words", "by_sms": "y"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "This cannot go out as a text" in html and reason in html
    assert "Typed words</textarea>" in html
    with app.app_context():
        assert stored() == [] and db.session.scalar(
            select(func.count()).select_from(SmsMessage)) == 0


@pytest.mark.parametrize(("body", "error"), [
    ("", "Please write a message first."),
    ("z" * 2100, "Please keep the message under 2,000 characters."),
])
def test_bad_message_keeps_the_text(app, cast, body, error):
    response = signed_in(app, PEER).post(url(cast), data={"body": body})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert error in html and body + "</textarea>" in html
    with app.app_context():
        assert stored() == []


def test_withdrawn_participant_gets_no_form_and_no_message(app, cast):
    with app.app_context():
        person(cast).status = WITHDRAWN
        db.session.commit()
    client = signed_in(app, CLINICIAN)
    page = text_of(client.get(url(cast)))
    assert "must not be contacted" in page and "Send message" not in page
    response = client.post(url(cast), data={"body": "Hello"})
    assert response.status_code == 200 and "must not be contacted" in text_of(response)
    with app.app_context():
        assert stored() == []


# --------------------------------------------------------------------------- staff page parts


def test_messages_panel_and_timeline_source(app, cast):
    with app.app_context():
        participant = person(cast)
        peer = db.session.get(User, cast.peer)
        messages.send(participant, "Hello", actor=peer)
        messages.reply(participant, "Hi back")
        messages.reply(participant, "And one more")
        db.session.commit()
        panel = record.PANELS["messages"]
        data = panel.load(participant, peer)
        assert (data["summary"].unread, data["summary"].total) == (2, 3)
        assert [m.body for m in data["summary"].recent] == ["Hello", "Hi back", "And one more"]
        other_peer = db.session.scalar(select(User).where(User.email == OTHER_PEER))
        assert panel.load(participant, other_peer) is None
        entries = record.SOURCES["message"](participant, peer, None)
        assert [e.text for e in entries] == ["Kit wrote to them", "They wrote to their moderators",
                                             "They wrote to their moderators"]
        assert entries[0].url == f"/moderation/participants/{participant.id}/messages#message-1"
        assert record.SOURCES["message"](participant, other_peer, None) == []


def test_panel_shows_on_the_staff_page_of_the_participant(app, cast):
    with app.app_context():
        messages.reply(person(cast), "Anyone there?")
        db.session.commit()
    page = text_of(signed_in(app, PEER).get(f"/moderation/participants/{cast.participant}"))
    assert "1 unread" in page and "Anyone there?" in page
    assert "Open the conversation and reply" in page
    assert "They wrote to their moderators" in page  # the timeline entry


# --------------------------------------------------------------------------- XSS


def _pages(app, cast, body: str, staff, mine) -> list[str]:
    with app.app_context():
        for row in stored():
            db.session.delete(row)
        participant = person(cast)
        messages.send(participant, body, actor=db.session.get(User, cast.peer))
        messages.reply(participant, body)
        db.session.commit()
    return [mine.get("/messages").get_data(as_text=True),
            staff.get(url(cast)).get_data(as_text=True),
            staff.get(f"/moderation/participants/{cast.participant}").get_data(as_text=True)]


def test_no_payload_becomes_active_markup_on_either_side(app, cast):
    staff, mine = signed_in(app, PEER), signed_in(app, MINE)
    baseline = _pages(app, cast, "A quiet afternoon", staff, mine)
    failures = []
    for payload, what in PAYLOADS:
        for page, base in zip(_pages(app, cast, payload, staff, mine), baseline, strict=True):
            try:
                assert_no_active_markup(page, baseline=base)
            except AssertionError as exc:
                failures.append(f"{what}: {exc}")
    assert failures == []
