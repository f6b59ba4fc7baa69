"""The XSS corpus (``tests/xss_payloads.py``) on every place one person's text is shown
to someone else, outside the forum (``tests/forum/test_xss.py``): moderator messages
(both sides), staff notes (ordinary and clinician-only), a journal reflection on the
clinician's queue item page, SMS texts on staff pages (developer inbox, participant
page, queue item for an SMS) and display names in every staff table.

Each payload is stored in all of those at once (straight into the database, past any
rule that would refuse it on the way in); every page must then hold no more active
markup than with harmless text. A second test types them through the real forms.
"""

from __future__ import annotations

import html

from core.extensions import db
from core.models import User
from core.sms import SmsMessage
from moderation.care_models import ModeratorMessage, StaffNote
from moderation.models import QueueItem
from modules.models import JournalEntry
from tests.security.cast import make_cast, sign_in
from tests.xss_payloads import PAYLOADS, assert_no_active_markup

HARMLESS = "Just a quiet afternoon"


def _store(cast, text: str) -> None:
    """``text`` as every message, note, reflection and text of B's, and as the display
    names of B and of B's peer moderator (cut to the 40-character column)."""
    with app_context(cast):
        for model in (ModeratorMessage, StaffNote, JournalEntry):
            for row in db.session.scalars(db.select(model).where(
                    model.participant_id == cast.b_id)):
                row.body = text
        for row in db.session.scalars(db.select(SmsMessage).where(
                SmsMessage.participant_id == cast.b_id)):
            row.body = text
        for user_id in (cast.b_user_id, cast.peer_b_id):
            db.session.get(User, user_id).display_name = text[:40]
        db.session.commit()


def app_context(cast):
    return cast.app.app_context()


def _add_staff_side(cast) -> None:
    """A message from B to the moderator (the cast has one the other way) and a queue
    item for one of B's texts."""
    with app_context(cast):
        db.session.add(ModeratorMessage(participant_id=cast.b_id, sender_id=cast.b_user_id,
                                        direction="from_participant", body=HARMLESS))
        sms_id = db.session.scalar(db.select(SmsMessage.id).where(
            SmsMessage.participant_id == cast.b_id, SmsMessage.direction == "in"))
        item = QueueItem(channel="sms", content_type="sms_message", content_id=sms_id,
                         author_id=cast.b_user_id, participant_id=cast.b_id, action="flag",
                         category="self_harm", severity=3, is_risk=True, clinician_only=True)
        db.session.add(item)
        db.session.commit()
        cast.sms_item_id = item.id


def _pages(cast) -> dict[str, list[str]]:
    b, v = cast.b_id, cast.b_values
    return {
        "participant_b": ["/messages"],
        "peer_b": [f"/moderation/participants/{b}", f"/moderation/participants/{b}/messages",
                   f"/moderation/participants/{b}/notes", "/moderation/",
                   "/moderation/checkins", f"/moderation/checkins/{v['task_id']}"],
        "clinician": [f"/moderation/queue/{v['item_id']}",
                      f"/moderation/queue/{cast.sms_item_id}", "/moderation/queue",
                      "/moderation/alerts", f"/moderation/alerts/{v['alert_id']}",
                      f"/moderation/participants/{b}", f"/moderation/participants/{b}/notes",
                      "/moderation/?all=1"],
        "admin": ["/sms/dev", "/admin/users", "/admin/audit"],
        "researcher": ["/research/participants", f"/research/participants/{b}",
                       "/moderation/adverse-events"],
    }


def _read_all(clients, pages) -> dict[tuple[str, str], str]:
    result = {}
    for who, paths in pages.items():
        for path in paths:
            response = clients[who].get(path)
            assert response.status_code == 200, (who, path, response.status_code)
            result[(who, path)] = response.get_data(as_text=True)
    return result


def _prepared(app):
    with app.app_context():
        cast = make_cast()
        cast.peer_b_id = db.session.scalar(db.select(User.id).where(
            User.email == "peer_b@example.org"))
    cast.app = app
    _add_staff_side(cast)
    pages = _pages(cast)
    clients = {who: sign_in(app, who) for who in pages}
    return cast, pages, clients


def test_no_payload_becomes_markup_on_staff_and_message_pages(app):
    cast, pages, clients = _prepared(app)
    _store(cast, HARMLESS)
    baseline = _read_all(clients, pages)
    assert HARMLESS in baseline[("clinician", f"/moderation/queue/{cast.b_values['item_id']}")]
    assert HARMLESS in baseline[("clinician", f"/moderation/queue/{cast.sms_item_id}")]
    assert HARMLESS in baseline[("participant_b", "/messages")]
    assert HARMLESS in baseline[("admin", "/sms/dev")]
    failures = []
    for payload, what in PAYLOADS:
        _store(cast, payload)
        for key, page in _read_all(clients, pages).items():
            try:
                assert_no_active_markup(page, baseline=baseline[key])
            except AssertionError as exc:
                failures.append(f"{what} on {key}: {exc}")
    assert failures == [], "\n".join(failures[:30])
    first = PAYLOADS[0][0]
    _store(cast, first)
    page = clients["peer_b"].get(f"/moderation/participants/{cast.b_id}/notes")
    assert html.escape(first, quote=False) in page.get_data(as_text=True)


def test_payloads_typed_into_the_message_and_note_forms(app):
    """B writes each payload to the moderator and the moderator writes it back and as a
    note; the moderator's thread, B's inbox and the notes page stay free of markup."""
    cast, pages, clients = _prepared(app)
    b = cast.b_id
    watched = {("participant_b", "/messages"), ("peer_b", f"/moderation/participants/{b}"),
               ("peer_b", f"/moderation/participants/{b}/messages"),
               ("peer_b", f"/moderation/participants/{b}/notes")}
    baseline = {key: clients[key[0]].get(key[1]).get_data(as_text=True) for key in watched}
    failures, sent, staff_sent = [], 0, 0
    for payload, what in PAYLOADS:
        with app.app_context():  # one message and note at a time, like the baseline
            for model in (ModeratorMessage, StaffNote):
                for row in db.session.scalars(db.select(model).where(
                        model.participant_id == b)):
                    row.body = HARMLESS
            db.session.commit()
        sent += clients["participant_b"].post("/messages", data={"body": payload}
                                              ).status_code == 302
        for form in ("messages", "notes"):
            staff_sent += clients["peer_b"].post(f"/moderation/participants/{b}/{form}",
                                                 data={"body": payload}).status_code == 302
        for who, path in watched:
            page = clients[who].get(path).get_data(as_text=True)
            try:
                assert_no_active_markup(page, baseline=baseline[(who, path)])
            except AssertionError as exc:
                failures.append(f"{what} on {path}: {exc}")
    assert sent >= len(PAYLOADS) // 2, "the message form refused most payloads"
    assert staff_sent >= len(PAYLOADS), "the moderator's forms refused the payloads"
    assert failures == [], "\n".join(failures[:30])
