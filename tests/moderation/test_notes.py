"""Staff notes: adding (length, who may mark one clinician-only), visibility by role on
the notes page, the panel and the timeline, never to participants, audit, bad input and
XSS."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import Participant, User
from moderation import notes, record
from moderation.care_models import StaffNote
from tests.moderation.message_helpers import (
    ADMIN,
    CLINICIAN,
    MINE,
    OTHER_PEER,
    PEER,
    RESEARCHER,
    audits,
    signed_in,
    text_of,
)
from tests.xss_payloads import PAYLOADS, assert_no_active_markup

SHARED = "Prefers texts in the evening"
SECRET = "Clinical detail about medication"


pytestmark = pytest.mark.usefixtures("frozen_clock")


def url(cast, *, other: bool = False) -> str:
    return f"/moderation/participants/{cast.other_participant if other else cast.participant}/notes"


def person(cast) -> Participant:
    return db.session.get(Participant, cast.participant)


def both_notes(app, cast) -> None:
    with app.app_context():
        notes.add_note(person(cast), SHARED, actor=db.session.get(User, cast.peer))
        notes.add_note(person(cast), SECRET, actor=db.session.get(User, cast.clinician),
                       clinician_only=True)
        db.session.commit()


def stored() -> list[StaffNote]:
    return list(db.session.scalars(select(StaffNote).order_by(StaffNote.id)))


# --------------------------------------------------------------------------- service


def test_note_is_stored_and_audited_without_its_text(app, cast):
    with app.app_context():
        note = notes.add_note(person(cast), "  Likes gardening\r\nand dogs  ",
                              actor=db.session.get(User, cast.peer))
        db.session.commit()
        assert (note.body, note.clinician_only) == ("Likes gardening\nand dogs", False)
        [entry] = audits("moderation.note.added")
        assert (entry.actor_id, entry.target_id) == (cast.peer, cast.participant_user)
        assert entry.detail == {"note_id": note.id, "clinician_only": False}


@pytest.mark.parametrize(("body", "problem"), [
    ("", "Please write the note first."),
    ("n" * 4001, "Please keep the note under 4,000 characters (it has 4,001)."),
])
def test_empty_or_long_note_is_refused(app, cast, body, problem):
    with app.app_context():
        with pytest.raises(notes.NoteError) as caught:
            notes.add_note(person(cast), body, actor=db.session.get(User, cast.peer))
        assert str(caught.value) == problem and caught.value.field == "body"


def test_a_note_of_exactly_4000_characters_is_kept(app, cast):
    with app.app_context():
        note = notes.add_note(person(cast), "n" * 4000, actor=db.session.get(User, cast.peer))
        assert len(note.body) == 4000


def test_only_clinicians_write_clinician_only_notes(app, cast):
    with app.app_context(), pytest.raises(notes.NoteError, match="Only clinicians"):
        notes.add_note(person(cast), "x", actor=db.session.get(User, cast.peer),
                       clinician_only=True)


def test_peer_cannot_add_a_note_outside_their_caseload(app, cast):
    with app.app_context():
        theirs = db.session.get(Participant, cast.other_participant)
        with pytest.raises(notes.PermissionDenied):
            notes.add_note(theirs, "x", actor=db.session.get(User, cast.peer))


def test_clinician_only_notes_are_left_out_for_peers_everywhere(app, cast):
    both_notes(app, cast)
    with app.app_context():
        participant = person(cast)
        peer, clinician = (db.session.get(User, cast.peer),
                           db.session.get(User, cast.clinician))
        assert [n.body for n in notes.notes_for(participant, viewer=peer)] == [SHARED]
        assert [n.body for n in notes.notes_for(participant, viewer=clinician)] == [
            SECRET, SHARED]
        peer_lines = record.SOURCES["note"](participant, peer, None)
        assert [e.detail for e in peer_lines] == [(SHARED,)]
        clinician_lines = record.SOURCES["note"](participant, clinician, None)
        assert {e.text for e in clinician_lines} == {
            "Note by Kit", "Note by Dr Patel (clinicians only)"}
        assert record.PANELS["notes"].load(participant, peer)["total"] == 1
        assert record.PANELS["notes"].load(participant, clinician)["total"] == 2


# --------------------------------------------------------------------------- pages


def test_notes_page_by_role(app, cast):
    both_notes(app, cast)
    peer_page = text_of(signed_in(app, PEER).get(url(cast)))
    assert SHARED in peer_page and SECRET not in peer_page
    assert "Only clinicians may read this note" not in peer_page
    clinician_page = text_of(signed_in(app, CLINICIAN).get(url(cast)))
    assert SHARED in clinician_page and SECRET in clinician_page
    assert "clinicians only" in clinician_page
    with app.app_context():
        assert len(audits("moderation.notes.viewed")) == 2


def test_staff_page_of_the_participant_hides_clinician_notes_from_peers(app, cast):
    both_notes(app, cast)
    page = text_of(signed_in(app, PEER).get(f"/moderation/participants/{cast.participant}"))
    assert SHARED in page and SECRET not in page
    page = text_of(signed_in(app, CLINICIAN).get(f"/moderation/participants/{cast.participant}"))
    assert SHARED in page and SECRET in page


def test_participants_never_see_notes(app, cast):
    both_notes(app, cast)
    client = signed_in(app, MINE)
    assert client.get(url(cast)).status_code == 403
    for path in ("/", "/messages", "/modules/today", "/account", "/notifications"):
        page = client.get(path, follow_redirects=True).get_data(as_text=True)
        assert SHARED not in page and SECRET not in page, path


@pytest.mark.parametrize("who", [OTHER_PEER, RESEARCHER, ADMIN])
def test_others_cannot_read_or_add(app, cast, who):
    both_notes(app, cast)
    client = signed_in(app, who)
    assert client.get(url(cast)).status_code == 403
    assert client.post(url(cast), data={"note-body": "sneaky"}).status_code == 403
    with app.app_context():
        assert len(stored()) == 2


def test_adding_from_the_panel_returns_to_the_participant_page(app, cast):
    client = signed_in(app, CLINICIAN)
    response = client.post(url(cast), data={"note-body": "Seen in clinic",
                                            "note-clinician_only": "y",
                                            "note-return_to": "record"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/moderation/participants/{cast.participant}#panel-notes")
    with app.app_context():
        [note] = stored()
        assert (note.body, note.clinician_only, note.author_id) == (
            "Seen in clinic", True, cast.clinician)


def test_adding_from_the_notes_page_returns_there(app, cast):
    response = signed_in(app, PEER).post(url(cast), data={"note-body": "Hello"})
    with app.app_context():
        [note] = stored()
    assert response.headers["Location"].endswith(f"{url(cast)}#note-{note.id}")


def test_a_made_up_return_address_is_refused(app, cast):
    response = signed_in(app, PEER).post(url(cast), data={
        "note-body": "Hello", "note-return_to": "https://evil.example/"})
    assert response.status_code == 200
    with app.app_context():
        assert stored() == []


@pytest.mark.parametrize(("body", "error"), [
    ("", "Please write the note first."),
    ("q" * 4100, "Please keep the note under 4,000 characters."),
])
def test_bad_note_keeps_the_text(app, cast, body, error):
    response = signed_in(app, PEER).post(url(cast), data={"note-body": body})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert error in html and body + "</textarea>" in html
    with app.app_context():
        assert stored() == []


def test_peer_forcing_clinician_only_gets_an_error_and_keeps_the_text(app, cast):
    response = signed_in(app, PEER).post(url(cast), data={
        "note-body": "My words", "note-clinician_only": "y"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Only clinicians can write clinician-only notes." in html
    assert "My words</textarea>" in html
    with app.app_context():
        assert stored() == []


def test_no_payload_becomes_active_markup_in_notes(app, cast):
    client = signed_in(app, CLINICIAN)
    pages = (url(cast), f"/moderation/participants/{cast.participant}")

    def render(body: str) -> list[str]:
        with app.app_context():
            for row in stored():
                db.session.delete(row)
            notes.add_note(person(cast), body, actor=db.session.get(User, cast.clinician))
            db.session.commit()
        return [client.get(path).get_data(as_text=True) for path in pages]

    baseline = render("A quiet afternoon")
    failures = []
    for payload, what in PAYLOADS:
        for page, base in zip(render(payload), baseline, strict=True):
            try:
                assert_no_active_markup(page, baseline=base)
            except AssertionError as exc:
                failures.append(f"{what}: {exc}")
    assert failures == []
