"""Staff notes on a participant's record: add and list, and the "note" timeline source of
the staff page of a participant.

Notes are never shown to participants and never exported. A ``clinician_only`` note is
invisible to peer moderators everywhere (lists, panel, timeline); only clinicians may
write one (a peer could not read back what they wrote). Adding a note is audited with
its id and visibility, never its text.

Transaction contract: :func:`add_note` flushes and leaves the commit to its caller; the
rest only read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import joinedload

from core import audit
from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from core.roles import MODERATORS, Role
from moderation.care_models import StaffNote
from moderation.record import TimelineEntry
from moderation.services import can_view

NOTE_MAX = 4000
#: how much of a note the timeline shows (the notes page has all of it)
PREVIEW_MAX = 200


class NoteError(Exception):
    def __init__(self, message: str, field: str | None = "body") -> None:
        super().__init__(message)
        self.field = field


class PermissionDenied(Exception):
    pass


def may_read_clinician_only(viewer: User) -> bool:
    return viewer.role == Role.CLINICIAN


def _authorise(participant: Participant, actor: User) -> None:
    if actor.role not in MODERATORS or not can_view(actor, participant):
        raise PermissionDenied("not on your caseload")


def clean_body(body: str | None) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise NoteError("Please write the note first.")
    if len(body) > NOTE_MAX:
        raise NoteError(f"Please keep the note under {NOTE_MAX:,} characters "
                        f"(it has {len(body):,}).")
    return body


def add_note(participant: Participant, body: str, *, actor: User,
             clinician_only: bool = False) -> StaffNote:
    """A moderator who may see the participant adds a note."""
    _authorise(participant, actor)
    if clinician_only and not may_read_clinician_only(actor):
        raise NoteError("Only clinicians can write clinician-only notes.", "clinician_only")
    note = StaffNote(participant_id=participant.id, author_id=actor.id,
                     body=clean_body(body), clinician_only=clinician_only, created_at=utcnow())
    db.session.add(note)
    db.session.flush()
    audit.record("moderation.note.added", actor=actor, target=participant.user,
                 note_id=note.id, clinician_only=clinician_only)
    return note


def _visible(participant: Participant, viewer: User) -> Select:
    query = select(StaffNote).where(StaffNote.participant_id == participant.id)
    if not may_read_clinician_only(viewer):
        query = query.where(StaffNote.clinician_only.is_(False))
    return query


def notes_for(participant: Participant, *, viewer: User, limit: int | None = None,
              since: datetime | None = None) -> list[StaffNote]:
    """The notes ``viewer`` may read, newest first (nothing for anyone who may not see
    the participant)."""
    if viewer.role not in MODERATORS or not can_view(viewer, participant):
        return []
    query = _visible(participant, viewer).options(joinedload(StaffNote.author))
    if since is not None:
        query = query.where(StaffNote.created_at >= since)
    query = query.order_by(StaffNote.created_at.desc(), StaffNote.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def count_for(participant: Participant, *, viewer: User) -> int:
    query = _visible(participant, viewer).with_only_columns(func.count(StaffNote.id))
    return db.session.scalar(query) or 0


def preview(body: str) -> str:
    text = " ".join(body.split())
    return text if len(text) <= PREVIEW_MAX else text[:PREVIEW_MAX - 1].rstrip() + "…"


# --------------------------------------------------------------------------- the staff page


def timeline_source(participant: Participant, viewer: User,
                    since: datetime | None) -> list[TimelineEntry]:
    """The "note" source: one entry per note the viewer may read."""
    url = f"/moderation/participants/{participant.id}/notes"
    return [TimelineEntry(
        at=note.created_at, kind="note",
        text=f"Note by {note.author.name}" + (" (clinicians only)" if note.clinician_only
                                              else ""),
        url=f"{url}#note-{note.id}", detail=(preview(note.body),))
        for note in notes_for(participant, viewer=viewer, since=since)]
