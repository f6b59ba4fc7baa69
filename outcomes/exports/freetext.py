"""The "identifiable" export right and the free-text export it allows.

Free text (forum posts and comments, journal reflections, SMS replies) never leaves in the
ordinary bundle: participants' own words can identify them. A researcher whom an admin has
given the identifiable export right may download one source of free text at a time, under
the study's pseudonyms (never names, study codes or phone numbers), for a stated purpose
(a code, not text). Grants, revocations and every download are audit-logged; the audit
entry holds the source, purpose, row count and checksum, never the text.

The right is a list of user ids in ``site_setting`` (``export_identifiable_users``).
Services flush; the caller commits.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
from sqlalchemy import select

from core import audit
from core.extensions import db
from core.models import Participant, SiteSetting, User
from core.roles import Role
from core.sms.models import IN, SmsMessage
from forum.models import Comment, Post
from modules.models import JournalEntry
from outcomes.exports import formats
from outcomes.exports.context import for_study
from outcomes.models import Study

RIGHT_KEY = "export_identifiable_users"
SOURCES = {
    "forum": "Forum posts and comments",
    "reflections": "Journal reflections",
    "sms": "Text messages participants sent",
}
PURPOSES = {
    "qualitative_analysis": "Qualitative analysis in the approved protocol",
    "safety_review": "Safety or adverse-event review",
    "participant_request": "A participant's request for their data",
}
COLUMNS = ["pseudonym", "source", "kind", "day", "text"]


class ExportRefused(PermissionError):
    """The user may not make this export, or may not change the right."""


def holders() -> list[int]:
    row = db.session.get(SiteSetting, RIGHT_KEY)
    return [int(uid) for uid in (row.value if row is not None else [])]


def has_right(user: Any) -> bool:
    return (getattr(user, "role", None) == Role.RESEARCHER and getattr(user, "is_enabled", False)
            and user.id in holders())


def set_right(user: User, allowed: bool, *, actor: User) -> None:
    """Give or take away the right (admins only; only researchers can hold it). Flushes."""
    if actor.role != Role.ADMIN:
        raise ExportRefused("Only an admin can change who may export free text.")
    if user.role != Role.RESEARCHER:
        raise ExportRefused("Only researchers can hold the identifiable export right.")
    ids = set(holders())
    if (user.id in ids) == allowed:
        return
    ids = ids | {user.id} if allowed else ids - {user.id}
    row = db.session.get(SiteSetting, RIGHT_KEY)
    if row is None:
        row = SiteSetting(key=RIGHT_KEY, value=[])
        db.session.add(row)
    row.value, row.updated_by_id = sorted(ids), actor.id
    audit.record("outcomes.export_right_granted" if allowed else "outcomes.export_right_revoked",
                 actor=actor, target=user)
    db.session.flush()


def _rows(study: Study, source: str) -> list[tuple[int, str, Any, str]]:
    """(participant id, kind, when, text) of one source for the study's participants."""
    in_study = Participant.study_id == study.id
    if source == "forum":
        found = []
        for model, kind in ((Post, "post"), (Comment, "comment")):
            found += [(pid, kind, at, body) for pid, at, body in db.session.execute(
                select(Participant.id, model.created_at, model.body)
                .join(Participant, Participant.user_id == model.author_id)
                .where(in_study, model.deleted_at.is_(None)).order_by(model.created_at))]
        return found
    if source == "reflections":
        return [(pid, "reflection", at, body) for pid, at, body in db.session.execute(
            select(JournalEntry.participant_id, JournalEntry.created_at, JournalEntry.body)
            .join(Participant, Participant.id == JournalEntry.participant_id)
            .where(in_study).order_by(JournalEntry.created_at))]
    return [(pid, "sms_in", at, body) for pid, at, body in db.session.execute(
        select(SmsMessage.participant_id, SmsMessage.created_at, SmsMessage.body)
        .join(Participant, Participant.id == SmsMessage.participant_id)
        .where(in_study, SmsMessage.direction == IN).order_by(SmsMessage.created_at))]


def export(study: Study, source: str, purpose: str, *, actor: User) -> tuple[str, bytes]:
    """One source of free text as CSV (file name, content), audit-logged. Flushes."""
    if not has_right(actor):
        raise ExportRefused("You do not have the identifiable export right.")
    if source not in SOURCES or purpose not in PURPOSES:
        raise ValueError("Choose a source and a purpose from the lists.")
    ctx = for_study(study)
    frame = pd.DataFrame(
        [{"pseudonym": ctx.pseudonym(pid), "source": source, "kind": kind,
          "day": ctx.day(pid, at), "text": text}
         for pid, kind, at, text in _rows(study, source) if pid in ctx.people],
        columns=COLUMNS)
    content = formats.to_csv(frame)
    checksum = hashlib.sha256(content).hexdigest()
    audit.record("outcomes.export_free_text", actor=actor, target=study, source=source,
                 purpose=purpose, rows=len(frame), checksum=checksum)
    return f"kinship-{study.slug}-{ctx.now:%Y%m%dT%H%M%SZ}-free-text-{source}.csv", content
