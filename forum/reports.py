"""Reports of posts and comments: participants make them here; the moderation package's
review queue reads and resolves them through the functions below.

Transaction contract: functions flush and never commit; the caller commits once.
One open report per reporter and item (a partial unique index backs the check).
The reporter's note is never written to the audit log.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from core import audit
from core.clock import utcnow
from core.extensions import db
from core.models import User
from core.roles import MODERATORS
from forum.models import Comment, Post, Report
from forum.services import ForumError, PermissionDenied, can_see

#: reason key -> what the reporter reads
REASONS = {
    "unkind": "It is unkind, hurtful or bullying",
    "worried": "I'm worried about someone's safety",
    "personal_info": "It shares someone's personal details",
    "spam": "It is spam or advertising",
    "other": "Something else",
}
#: how a moderator closed a report
OUTCOMES = ("hidden", "approved", "no_action", "escalated", "other")
NOTE_MAX = 500


def target_key(item: Post | Comment) -> str:
    return f"{'post' if isinstance(item, Post) else 'comment'}:{item.id}"


def open_report_for(item: Post | Comment, reporter: User) -> Report | None:
    return db.session.scalar(select(Report).where(
        Report.reporter_id == reporter.id, Report.target == target_key(item),
        Report.resolved_at.is_(None)))


def report(item: Post | Comment, *, actor: User, reason: str, note: str = "") -> Report:
    """Report ``item`` for the moderators; one open report per person and item."""
    if reason not in REASONS:
        raise ForumError("Please choose a reason.", "reason")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ForumError(f"Please keep the note under {NOTE_MAX} characters.", "note")
    if item.author_id == actor.id:
        raise ForumError("This is your own writing; you can edit or delete it instead.",
                         "reason")
    if not can_see(item, actor):
        raise PermissionDenied("not visible to this person")
    if open_report_for(item, actor) is not None:
        raise ForumError("You have already reported this. A moderator will look at it.",
                         "reason")
    row = Report(reporter_id=actor.id, target=target_key(item), reason=reason, note=note,
                 post_id=item.id if isinstance(item, Post) else None,
                 comment_id=item.id if isinstance(item, Comment) else None)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError as exc:  # the same person, twice at once
        raise ForumError("You have already reported this. A moderator will look at it.",
                         "reason") from exc
    audit.record("forum.reported", actor=actor, target=item, reason=reason)
    return row


def open_reports(*, limit: int = 200) -> list[Report]:
    """Open reports, oldest first, with their reporter and item loaded (one query)."""
    return list(db.session.scalars(
        select(Report).where(Report.resolved_at.is_(None))
        .options(joinedload(Report.reporter), joinedload(Report.post),
                 joinedload(Report.comment))
        .order_by(Report.created_at, Report.id).limit(limit)))


def reports_for(item: Post | Comment, *, include_resolved: bool = True) -> list[Report]:
    query = select(Report).where(Report.target == target_key(item))
    if not include_resolved:
        query = query.where(Report.resolved_at.is_(None))
    return list(db.session.scalars(query.order_by(Report.created_at)))


def resolve(row: Report, *, actor: User, outcome: str) -> bool:
    """Close one report with what was done; False if someone already closed it. Audited."""
    if actor.role not in MODERATORS:
        raise PermissionDenied("only moderators resolve reports")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown report outcome {outcome!r}")
    if row.resolved_at is not None:
        return False
    row.resolved_at, row.resolved_by_id, row.outcome = utcnow(), actor.id, outcome
    db.session.flush()
    audit.record("forum.report.resolved", actor=actor, target=row, outcome=outcome)
    return True


def resolve_for_item(item: Post | Comment, *, actor: User, outcome: str) -> int:
    """Close every open report of ``item`` (e.g. after hiding it); returns how many."""
    return sum(resolve(row, actor=actor, outcome=outcome)
               for row in reports_for(item, include_resolved=False))
