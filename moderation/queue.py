"""The review queue: user reports and automatic flags and holds, and what moderators do
about them.

**One queue item per piece of content.** Screening opens a :class:`QueueItem` for a flag
or a hold. Reports (``forum.models.Report``) are grouped per reported post or comment:
:func:`sync_reports` opens a ``source="report"`` item for reported content that has no
open item yet, so every entry of the queue has one row, one version and one history. The
open reports of the content are shown (and closed) with it.

**Order and visibility.** Severity first (the item's, or the strongest report reason's),
then age (oldest first). Peer moderators never see ``clinician_only`` items (risk and
private journal reflections) nor the categories they opted out of (a per-moderator site
setting, :func:`set_opt_outs`). A clinician's opt-outs never hide clinician-only or
high-severity items: risk must always reach a clinician.

**Actions** (approve, hide, unhide, redact, warn, suspend, escalate) each take the
``version`` the moderator saw. The item is claimed first (a versioned UPDATE, flushed
before anything else happens): a stale version raises :class:`AlreadyHandled` naming who
acted and when; two moderators acting at the same moment make the second UPDATE match no
row (``StaleDataError`` from SQLAlchemy), and the caller rolls back: exactly one wins,
nothing of the loser's action remains. Every action is written to the moderation log
(the warning's words as its staff note) and the audit log (ids and codes only).

**Posting suspensions** are site settings keyed per participant
(``forum.suspended.<user id>``); :func:`refuse_if_suspended` is the check the forum runs
before anyone writes (registered in ``forum.services.WRITER_CHECKS``).

Transaction contract: every function flushes and never commits; the caller commits once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import flag_modified

from core import audit, notifications
from core.clock import utcnow
from core.extensions import db
from core.models import SiteSetting, User
from core.roles import MODERATORS, Role
from forum import markup as forum_markup
from forum import reports as forum_reports
from forum import services as forum_services
from forum.models import Comment, Edit, Post, Report
from moderation import alerts, history
from moderation.models import CATEGORIES, ModerationLog, QueueItem, RiskAlert
from moderation.rules import active_specs

#: report reason -> (category, severity) of the queue item it opens
REPORT_REASONS: dict[str, tuple[str | None, int]] = {
    "worried": ("self_harm", 3),
    "personal_info": ("personal_info", 2),
    "unkind": ("harassment", 2),
    "spam": ("spam", 1),
    "other": (None, 1),
}
#: why a moderator hid something or warned someone (codes kept in the logs)
REASONS = {
    "unkind": "Unkind, hurtful or bullying",
    "personal_info": "Shares personal details",
    "spam": "Spam or advertising",
    "safety": "Worrying content (safety)",
    "guidelines": "Against the forum guidelines",
}
FORUM_CONTENT: dict[str, type[Post] | type[Comment]] = {"forum_post": Post,
                                                         "forum_comment": Comment}
ACTION_LABELS = {"approve": "Approved", "hide": "Hidden", "unhide": "Shown again",
                 "redact": "Personal details removed", "warn": "Author warned",
                 "suspend": "Posting suspended", "escalate": "Escalated to a clinician"}
REDACTED = "[removed]"
WARN_MAX = 280
SUSPEND_DAYS = (1, 30)
OPT_OUT_KEY = "moderation.opt_out.{user_id}"
SUSPENSION_KEY = "forum.suspended.{user_id}"
QUEUE_LIMIT = 500
#: serialises report-to-item syncing on PostgreSQL (SQLite's write lock does it there)
_SYNC_LOCK = 7_305_001


class QueueError(Exception):
    """A refused action; ``field`` names the form field when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PermissionDenied(QueueError):
    pass


class AlreadyHandled(QueueError):
    """Someone acted on the item since this moderator loaded it; nothing was changed."""

    def __init__(self, who: str, at: datetime | None, action: str | None) -> None:
        when = f" at {at:%H:%M} UTC on {at:%d %b %Y}" if at is not None else ""
        super().__init__(f"Already handled by {who}{when}. Nothing was changed; "
                         "here is the item as it is now.")
        self.who, self.at, self.action = who, at, action


@dataclass
class Entry:
    """One line of the queue: the item, its content and the open reports of it."""

    item: QueueItem
    content: Any
    reports: list[Report] = field(default_factory=list)

    @property
    def severity(self) -> int:
        return max([self.item.severity, *(REPORT_REASONS.get(r.reason, (None, 1))[1]
                                          for r in self.reports)])

    @property
    def categories(self) -> set[str]:
        found = {self.item.category} | {REPORT_REASONS.get(r.reason, (None, 1))[0]
                                        for r in self.reports}
        return {c for c in found if c}

    @property
    def is_forum(self) -> bool:
        return self.item.content_type in FORUM_CONTENT

    @property
    def held(self) -> bool:
        return bool(getattr(self.content, "is_held", False))

    @property
    def hidden(self) -> bool:
        return getattr(self.content, "hidden_at", None) is not None


# --------------------------------------------------------------------------- who sees what


def _require_moderator(actor: Any) -> None:
    if getattr(actor, "role", None) not in MODERATORS:
        raise PermissionDenied("Only moderators use the review queue.")


def opt_outs(user: User) -> set[str]:
    row = db.session.get(SiteSetting, OPT_OUT_KEY.format(user_id=user.id))
    return {c for c in (row.value if row is not None else []) if c in CATEGORIES}


def set_opt_outs(user: User, categories: Iterable[str], *, actor: User) -> None:
    """Set the categories ``user`` (a moderator, acting for themselves) does not see."""
    _require_moderator(actor)
    if actor.id != user.id:
        raise PermissionDenied("Moderators choose their own categories.")
    chosen = sorted(set(categories))
    if any(c not in CATEGORIES for c in chosen):
        raise QueueError("Choose from the listed categories.", "categories")
    if chosen == sorted(opt_outs(user)):
        return
    key = OPT_OUT_KEY.format(user_id=user.id)
    row = db.session.get(SiteSetting, key)
    if row is None:
        db.session.add(SiteSetting(key=key, value=chosen, updated_by_id=actor.id))
    else:
        row.value, row.updated_by_id = chosen, actor.id
    db.session.flush()
    history.log("moderator.opt_outs_changed", actor=actor, subject=user, categories=chosen)
    audit.record("moderation.opt_outs_changed", actor=actor, target=user, categories=chosen)


def visible_to(entry: Entry, actor: User, skipped: set[str] | None = None) -> bool:
    if actor.role not in MODERATORS:
        return False
    is_clinician = actor.role == Role.CLINICIAN
    if entry.item.clinician_only and not is_clinician:
        return False
    if is_clinician and (entry.item.clinician_only or entry.severity >= 3):
        return True  # risk always reaches a clinician, whatever they opted out of
    skipped = opt_outs(actor) if skipped is None else skipped
    return not entry.categories & skipped


# --------------------------------------------------------------------------- reading


def _report_content(report: Report) -> tuple[str, int]:
    if report.post_id is not None and report.comment_id is None:
        return "forum_post", report.post_id
    return "forum_comment", report.comment_id  # type: ignore[return-value]


def sync_reports() -> int:
    """Open a queue item for reported content that has none open; return how many."""
    reported = db.session.scalars(select(Report).where(Report.resolved_at.is_(None))
                                  .order_by(Report.created_at, Report.id)).all()
    if not reported:
        return 0
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SYNC_LOCK})
    open_keys = {(row.content_type, row.content_id) for row in db.session.execute(
        select(QueueItem.content_type, QueueItem.content_id).where(QueueItem.status == "open"))}
    groups: dict[tuple[str, int], list[Report]] = defaultdict(list)
    for report in reported:
        groups[_report_content(report)].append(report)
    created = 0
    for (content_type, content_id), rows in groups.items():
        if (content_type, content_id) in open_keys:
            continue
        content = db.session.get(FORUM_CONTENT[content_type], content_id)
        if content is None:
            continue
        category, severity = max((REPORT_REASONS.get(r.reason, (None, 1)) for r in rows),
                                 key=lambda pair: pair[1])
        item = QueueItem(channel=content_type, content_type=content_type,
                         content_id=content_id, author_id=content.author_id,
                         participant_id=getattr(content.author.participant, "id", None),
                         source="report", action="hold" if content.is_held else "flag",
                         category=category, severity=severity,
                         created_at=rows[0].created_at)
        db.session.add(item)
        db.session.flush()
        history.log("item.reported", item=item, subject=content.author,
                    reports=[r.id for r in rows], reasons=sorted({r.reason for r in rows}))
        created += 1
    return created


def _contents(items: list[QueueItem]) -> dict[tuple[str, int], Any]:
    found: dict[tuple[str, int], Any] = {}
    for content_type, model in FORUM_CONTENT.items():
        ids = [i.content_id for i in items if i.content_type == content_type]
        if ids:
            for row in db.session.scalars(select(model).options(joinedload(model.author))
                                          .where(model.id.in_(ids))):
                found[(content_type, row.id)] = row
    return found


def _open_reports(items: list[QueueItem]) -> dict[str, list[Report]]:
    targets = [f"{'post' if i.content_type == 'forum_post' else 'comment'}:{i.content_id}"
               for i in items if i.content_type in FORUM_CONTENT]
    grouped: dict[str, list[Report]] = defaultdict(list)
    if targets:
        for row in db.session.scalars(select(Report).options(joinedload(Report.reporter))
                                      .where(Report.target.in_(targets),
                                             Report.resolved_at.is_(None))
                                      .order_by(Report.created_at, Report.id)):
            grouped[row.target].append(row)
    return grouped


def _target(item: QueueItem) -> str:
    return f"{'post' if item.content_type == 'forum_post' else 'comment'}:{item.content_id}"


def _entries(items: list[QueueItem]) -> list[Entry]:
    contents = _contents(items)
    reports = _open_reports(items)
    return [Entry(item, contents.get((item.content_type, item.content_id)),
                  reports.get(_target(item), []) if item.content_type in FORUM_CONTENT
                  else []) for item in items]


def queue_for(actor: User) -> list[Entry]:
    """The open items ``actor`` may see, by severity (highest first) then age."""
    _require_moderator(actor)
    items = list(db.session.scalars(
        select(QueueItem).options(joinedload(QueueItem.author))
        .where(QueueItem.status == "open").order_by(QueueItem.created_at, QueueItem.id)
        .limit(QUEUE_LIMIT)))
    skipped = opt_outs(actor)
    entries = [e for e in _entries(items) if visible_to(e, actor, skipped)]
    entries.sort(key=lambda e: (-e.severity, e.item.created_at, e.item.id))
    return entries


def recently_handled(actor: User, *, days: int = 7) -> list[Entry]:
    """Items handled in the last ``days`` that ``actor`` may see, newest first (to undo a
    hide, or to look back)."""
    _require_moderator(actor)
    since = utcnow() - timedelta(days=days)
    items = list(db.session.scalars(
        select(QueueItem).options(joinedload(QueueItem.author), joinedload(QueueItem.handled_by))
        .where(QueueItem.status != "open", QueueItem.handled_at >= since)
        .order_by(QueueItem.handled_at.desc()).limit(100)))
    skipped = opt_outs(actor)
    return [e for e in _entries(items) if visible_to(e, actor, skipped)]


def entry_for(item: QueueItem, actor: User) -> Entry:
    """The item with its content and open reports, if ``actor`` may see it."""
    _require_moderator(actor)
    entry = _entries([item])[0]
    if not visible_to(entry, actor):
        raise PermissionDenied("This item is not in your queue.")
    return entry


def all_reports(entry: Entry) -> list[Report]:
    """Every report of the content, closed ones included (the item page)."""
    if entry.content is None or not entry.is_forum:
        return []
    return forum_reports.reports_for(entry.content)


def item_history(item: QueueItem) -> list[ModerationLog]:
    alert_ids = list(db.session.scalars(select(RiskAlert.id).where(RiskAlert.item_id == item.id)))
    where = ModerationLog.item_id == item.id
    if alert_ids:
        where = where | ModerationLog.alert_id.in_(alert_ids)
    return list(db.session.scalars(
        select(ModerationLog).options(joinedload(ModerationLog.actor))
        .where(where).order_by(ModerationLog.at, ModerationLog.id)))


def open_alert_for(item: QueueItem) -> RiskAlert | None:
    return db.session.scalar(select(RiskAlert).where(
        RiskAlert.content_type == item.content_type, RiskAlert.content_id == item.content_id,
        RiskAlert.resolved_at.is_(None)))


def last_handler(item_id: int) -> AlreadyHandled:
    """What to tell a moderator whose action lost: who acted on the item last, and when."""
    step = db.session.scalar(
        select(ModerationLog).options(joinedload(ModerationLog.actor))
        .where(ModerationLog.item_id == item_id, ModerationLog.actor_id.is_not(None))
        .order_by(ModerationLog.at.desc(), ModerationLog.id.desc()).limit(1))
    if step is None:
        return AlreadyHandled("another moderator", None, None)
    return AlreadyHandled(step.actor.name, step.at, step.action)


# --------------------------------------------------------------------------- actions


def _claim(item: QueueItem, *, actor: User, version: int, statuses: tuple[str, ...] = ("open",),
           status: str | None = None, forum_only: bool = False) -> Entry:
    """Check the actor and the version, then write the item first (the versioned UPDATE
    that decides a race) before the action does anything else."""
    entry = entry_for(item, actor)
    if item.version != version or item.status not in statuses:
        raise last_handler(item.id)
    if forum_only and (not entry.is_forum or entry.content is None):
        raise QueueError("This can only be done to forum posts and comments.")
    now = utcnow()
    if status is not None:
        item.status = status
    if item.handled_at is None:  # the first response (fidelity figures read it)
        item.handled_at, item.handled_by_id = now, actor.id
    flag_modified(item, "status")  # every action bumps the version, closing or not
    db.session.flush()
    return entry


def _record(action: str, item: QueueItem, actor: User, *, note: str | None = None,
            subject: Any = None, **detail: Any) -> None:
    facts = {"content_type": item.content_type, "content_id": item.content_id, **detail}
    history.log(f"item.{action}", actor=actor, item=item, subject=subject or item.author,
                note=note, **facts)
    audit.record(f"moderation.item.{action}", actor=actor, target=item, **facts)


def _close_reports(entry: Entry, actor: User, outcome: str) -> int:
    if not entry.is_forum or entry.content is None:
        return 0
    return forum_reports.resolve_for_item(entry.content, actor=actor, outcome=outcome)


def approve(item: QueueItem, *, actor: User, version: int) -> None:
    """Keep the content: publish it if it was held, close its reports and the item."""
    entry = _claim(item, actor=actor, version=version, status="approved")
    released = entry.is_forum and entry.content is not None and forum_services.approve(
        entry.content, actor=actor)
    closed = _close_reports(entry, actor, "approved")
    _record("approved", item, actor, released=bool(released), reports_closed=closed)


def hide(item: QueueItem, *, actor: User, version: int, reason: str) -> None:
    """Hide the content from participants (reversible with :func:`unhide`)."""
    if reason not in REASONS:
        raise QueueError("Choose why.", "reason")
    entry = _claim(item, actor=actor, version=version, status="hidden", forum_only=True)
    forum_services.hide(entry.content, actor=actor, reason=reason)
    closed = _close_reports(entry, actor, "hidden")
    _record("hidden", item, actor, reason=reason, reports_closed=closed)


def unhide(item: QueueItem, *, actor: User, version: int) -> None:
    """Show hidden content again (the item stays closed, as approved)."""
    entry = _claim(item, actor=actor, version=version, statuses=("hidden",),
                   status="approved", forum_only=True)
    forum_services.unhide(entry.content, actor=actor)
    _record("unhidden", item, actor)


def personal_spans(text_: str) -> list[tuple[int, int]]:
    """Where the enabled personal-information patterns match ``text_`` (merged spans)."""
    spans = []
    for spec in active_specs():
        if spec.category != "personal_info" or spec.kind != "pattern":
            continue
        try:
            regex = re.compile(spec.text, re.IGNORECASE)
        except re.error:
            continue
        spans.extend(m.span() for m in regex.finditer(text_) if m.end() > m.start())
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def redacted(text_: str) -> tuple[str, int]:
    spans = personal_spans(text_)
    for start, end in reversed(spans):
        text_ = text_[:start] + REDACTED + text_[end:]
    return text_, len(spans)


def redact(item: QueueItem, *, actor: User, version: int) -> int:
    """Replace personal details in the content with "[removed]" (the earlier version is
    kept in the edit history, which only staff see). The item stays open: approve or
    hide it next. Returns how many passages were removed."""
    entry = entry_for(item, actor)
    content = entry.content
    if not entry.is_forum or content is None:
        raise QueueError("This can only be done to forum posts and comments.")
    body, in_body = redacted(content.body)
    title, in_title = redacted(getattr(content, "title", "") or "")
    if not in_body + in_title:
        raise QueueError("No phone number, e-mail or address was found to remove.")
    _claim(item, actor=actor, version=version, forum_only=True)
    is_post = isinstance(content, Post)
    db.session.add(Edit(post_id=content.id if is_post else None,
                        comment_id=None if is_post else content.id, editor_id=actor.id,
                        title=getattr(content, "title", ""), body=content.body,
                        body_html=content.body_html,
                        written_at=content.edited_at or content.created_at))
    if is_post:
        content.title = title
    content.body, content.body_html = body, forum_markup.render(body)
    content.edited_at = utcnow()
    db.session.flush()
    _record("redacted", item, actor, passages=in_body + in_title)
    return in_body + in_title


def _content_url(content: Post | Comment) -> str:
    if isinstance(content, Post):
        return forum_services.post_url(content)
    return forum_services.post_url(content.post_id, content)


def warn(item: QueueItem, *, actor: User, version: int, reason: str, message: str) -> None:
    """Send the author an in-app message from the moderator. The item stays open."""
    if reason not in REASONS:
        raise QueueError("Choose why.", "reason")
    message = " ".join((message or "").split())
    if not message:
        raise QueueError("Write the message the author will read.", "message")
    if len(message) > WARN_MAX:
        raise QueueError(f"Keep the message under {WARN_MAX} characters.", "message")
    entry = entry_for(item, actor)
    if item.author is None or item.author.role != Role.PARTICIPANT:
        raise QueueError("Only participants can be warned.")
    _claim(item, actor=actor, version=version)
    url = _content_url(entry.content) if entry.is_forum and entry.content else None
    notifications.notify(item.author, kind="moderator_message", text=message, url=url,
                         actor=actor)
    _record("warned", item, actor, note=message, reason=reason)


# --------------------------------------------------------------------------- suspension


def suspended_until(user: Any) -> datetime | None:
    """When ``user``'s posting suspension ends, or None when they may post."""
    row = db.session.get(SiteSetting, SUSPENSION_KEY.format(user_id=user.id))
    if row is None or not isinstance(row.value, dict):
        return None
    until = datetime.fromisoformat(row.value["until"])
    return until if until > utcnow() else None


def refuse_if_suspended(actor: Any) -> None:
    """``forum.services.WRITER_CHECKS`` hook: a suspended participant cannot write."""
    until = suspended_until(actor)
    if until is not None:
        raise forum_services.ForumError(
            f"Your moderator has paused your posting until {until:%d %B %Y, %H:%M} UTC. "
            "You can still read the forum. If you need to talk to someone, your moderator "
            "is here for you.", "body")


def suspend(item: QueueItem, *, actor: User, version: int, days: int, reason: str) -> datetime:
    """Stop the author posting for ``days`` days (from now; a new suspension replaces an
    older one). The item stays open. Returns when it ends."""
    low, high = SUSPEND_DAYS
    if not isinstance(days, int) or not low <= days <= high:
        raise QueueError(f"Choose between {low} and {high} days.", "days")
    if reason not in REASONS:
        raise QueueError("Choose why.", "reason")
    entry_for(item, actor)
    author = item.author
    if author is None or author.role != Role.PARTICIPANT:
        raise QueueError("Only participants' posting can be suspended.")
    _claim(item, actor=actor, version=version)
    until = utcnow() + timedelta(days=days)
    key = SUSPENSION_KEY.format(user_id=author.id)
    value = {"until": until.isoformat(), "item_id": item.id, "reason": reason}
    row = db.session.get(SiteSetting, key)
    if row is None:
        db.session.add(SiteSetting(key=key, value=value, updated_by_id=actor.id))
    else:
        row.value, row.updated_by_id = value, actor.id
    db.session.flush()
    notifications.notify(author, kind="moderator_message", actor=actor,
                         text=f"Your moderator has paused your posting in the forum for "
                              f"{days} day{'s' if days != 1 else ''}, until "
                              f"{until:%d %B %Y}. You can still read it.")
    _record("suspended", item, actor, days=days, reason=reason, until=until.isoformat())
    return until


# --------------------------------------------------------------------------- escalation


def escalate(item: QueueItem, *, actor: User, version: int) -> RiskAlert:
    """Hand the item to a clinician: a risk alert for the on-call clinician (with its
    deadline and escalation), and the item becomes clinician-only."""
    entry_for(item, actor)
    existing = open_alert_for(item)
    if existing is not None and item.clinician_only:
        raise QueueError(f"A clinician already has this (risk alert #{existing.id}).")
    _claim(item, actor=actor, version=version)
    item.clinician_only = True
    db.session.flush()
    alert = alerts.open_alert(item, author=item.author, participant=item.participant)
    _record("escalated", item, actor, alert_id=alert.id)
    return alert


if refuse_if_suspended not in forum_services.WRITER_CHECKS:
    forum_services.WRITER_CHECKS.append(refuse_if_suspended)
