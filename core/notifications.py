"""In-app notifications: "someone replied", "3 people reacted to your post", a message
from the moderator, a questionnaire that is ready.

Any package calls :func:`notify` in its own transaction (it flushes; the caller commits
once). A notification's ``text`` is plain text, escaped when shown; its ``url`` is a
same-site path such as ``/forum/posts/7`` and nothing else, so opening a notification
can never send anyone to another site. Nobody is told about their own act.

``dedupe_key`` collapses repeats: while a notification with the same user, kind and key
is unread and less than :data:`DEDUPE_WINDOW` old, a new act updates it ("3 people
reacted to your post") instead of adding a row. The count is of distinct people when the
acts have an ``actor``.

Read notifications are deleted by the housekeeping job after :data:`KEEP_READ_DAYS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ForeignKey, Index, String, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.extensions import db
from core.models import User

#: kind -> a warm, plain-language label shown above the text; packages may add kinds
KINDS: dict[str, str] = {
    "reply": "A reply for you",
    "reaction": "People are with you",
    "helpful": "Your suggestion helped",
    "moderator_message": "A message from your moderator",
    "assessment_due": "A questionnaire is ready for you",
    "system": "From the study team",
    "alert": "Needs your attention",
}

#: what a collapsed notification says, by kind (``{count}`` is the number of people or acts);
#: ``notify(summary=...)`` overrides it where the wording must differ
SUMMARIES: dict[str, str] = {
    "reply": "{count} people replied to you",
    "reaction": "{count} people reacted to your post",
    "helpful": "{count} of your suggestions were marked helpful",
    "moderator_message": "You have {count} new messages from your moderator",
    "assessment_due": "{count} questionnaires are ready for you",
    "system": "{count} new updates from the study team",
    "alert": "{count} things need your attention",
}

DEDUPE_WINDOW = timedelta(days=1)
KEEP_READ_DAYS = 180
TEXT_MAX = 300
URL_MAX = 500
PER_PAGE = 20
#: how many distinct actors a collapsed notification remembers (enough to count a day's
#: reactions; past this each further act counts as one more)
ACTORS_MAX = 50


class Notification(db.Model):
    __tablename__ = "notification"
    __table_args__ = (
        # the unread count in the navigation (every page) and the purge
        Index("ix_notification_user_read", "user_id", "read_at"),
        # the list page, newest first
        Index("ix_notification_user_updated", "user_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    #: plain text, escaped when shown; never a message body from SMS or clinical notes
    text: Mapped[str] = mapped_column(String(TEXT_MAX))
    #: a same-site path ("/forum/posts/7"), or None
    url: Mapped[str | None] = mapped_column(String(URL_MAX))
    #: who caused the newest act (None: the system)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    #: collapses repeats while unread, e.g. "reaction:post:7"
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    #: how many people (or acts) this notification stands for
    count: Mapped[int] = mapped_column(default=1)
    #: ids of the distinct people counted, so one person toggling twice counts once
    actor_ids: Mapped[list[int]] = mapped_column(db.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the newest act; the list is ordered by it
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]

    @property
    def label(self) -> str:
        return KINDS.get(self.kind, KINDS["system"])

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class NotificationError(ValueError):
    pass


def register_kind(kind: str, label: str, summary: str | None = None) -> None:
    """Add a notification kind (a package's own, e.g. a risk alert for clinicians)."""
    KINDS[kind] = label
    SUMMARIES[kind] = summary or "{count} new: " + label.lower()


_CONTROL = re.compile(r"[\x00-\x1f\x7f\s\\]")


def is_safe_url(url: str | None) -> bool:
    """A same-site relative path: starts with one "/", no scheme, no host, no backslash
    or whitespace (browsers read "/\\evil.example" and "//evil.example" as other sites)."""
    if not url or len(url) > URL_MAX or not url.startswith("/") or url.startswith("//"):
        return False
    if _CONTROL.search(url):
        return False
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def _plain(text: str) -> str:
    text = " ".join(str(text).split())
    if not text:
        raise NotificationError("a notification needs some text")
    return text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 1].rstrip() + "…"


def notify(user: Any, *, kind: str, text: str, url: str | None = None, actor: Any = None,
           dedupe_key: str | None = None, summary: str | None = None) -> Notification | None:
    """Tell ``user`` something in the app. Flushes; the caller commits.

    Returns None (and writes nothing) when ``actor`` is ``user`` (nobody is told about
    their own act) or the account is disabled. Raises :class:`NotificationError` for an
    unknown kind, empty text or a ``url`` that is not a same-site path. ``summary`` is
    the text once collapsed (``{count}`` is filled in); the kind's default otherwise.
    """
    if kind not in KINDS:
        raise NotificationError(f"unknown notification kind {kind!r}; register it first")
    if url is not None and not is_safe_url(url):
        raise NotificationError("a notification links only to a page of this site")
    text = _plain(text)
    if actor is not None and getattr(actor, "id", None) == user.id:
        return None
    if not getattr(user, "is_enabled", True):
        return None
    now = utcnow()
    if dedupe_key:
        existing = _open_duplicate(user.id, kind, dedupe_key, now)
        if existing is not None:
            return _collapse(existing, text=text, url=url, actor=actor, now=now,
                             summary=summary or SUMMARIES.get(kind, "{count} new updates"))
    row = Notification(user_id=user.id, kind=kind, text=text, url=url,
                       actor_id=getattr(actor, "id", None), dedupe_key=dedupe_key,
                       count=1, actor_ids=[actor.id] if actor is not None else [],
                       created_at=now, updated_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def _open_duplicate(user_id: int, kind: str, dedupe_key: str, now: datetime
                    ) -> Notification | None:
    return db.session.scalar(
        select(Notification)
        .where(Notification.user_id == user_id, Notification.kind == kind,
               Notification.dedupe_key == dedupe_key, Notification.read_at.is_(None),
               Notification.created_at >= now - DEDUPE_WINDOW)
        .order_by(Notification.id.desc()).limit(1)
        .with_for_update())  # PostgreSQL: two reactions at once do not lose a count


def _collapse(row: Notification, *, text: str, url: str | None, actor: Any, now: datetime,
              summary: str) -> Notification:
    actor_ids = list(row.actor_ids or [])
    if actor is None or len(actor_ids) >= ACTORS_MAX:
        row.count += 1
    elif actor.id not in actor_ids:
        actor_ids.append(actor.id)
        row.actor_ids = actor_ids
        row.count += 1
    if row.count > 1:
        try:
            row.text = _plain(summary.format(count=row.count))
        except (KeyError, IndexError, ValueError):
            row.text = _plain(f"{text} (and {row.count - 1} more)")
    else:
        row.text = text
    row.url = url or row.url
    row.actor_id = getattr(actor, "id", None)
    row.updated_at = now
    db.session.flush()
    return row


def unread_count(user: Any) -> int:
    """How many of ``user``'s notifications are unread: one query (none when signed out)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return db.session.scalar(
        select(func.count(Notification.id))
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def unread_fact() -> Any:
    """``unread_count`` of the outer ``User``, for ``core.principal``."""
    return (select(func.count(Notification.id))
            .where(Notification.user_id == User.id, Notification.read_at.is_(None))
            .scalar_subquery())


@dataclass(frozen=True)
class Page:
    items: list[Notification]
    number: int
    has_newer: bool
    has_older: bool


def notifications_for(user: Any, *, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """One page of ``user``'s own notifications, newest first (one query)."""
    page = max(1, page)
    rows = list(db.session.scalars(
        select(Notification).where(Notification.user_id == user.id)
        .order_by(Notification.updated_at.desc(), Notification.id.desc())
        .offset((page - 1) * per_page).limit(per_page + 1)))
    return Page(rows[:per_page], page, page > 1, len(rows) > per_page)


def open_notification(notification_id: int, *, user: Any) -> Notification:
    """Mark one of ``user``'s notifications read and return it. Another person's
    notification is treated as missing (its existence is not revealed)."""
    row = db.session.get(Notification, notification_id)
    if row is None or row.user_id != user.id:
        raise LookupError("no such notification")
    if row.read_at is None:
        row.read_at = utcnow()
        db.session.flush()
    return row


def mark_all_read(user: Any) -> int:
    """Mark every unread notification of ``user`` read; return how many."""
    return db.session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())).rowcount


def purge_read(*, now: datetime | None = None, keep_days: int = KEEP_READ_DAYS) -> int:
    """Delete notifications read more than ``keep_days`` ago; return how many."""
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    return db.session.execute(
        delete(Notification).where(Notification.read_at.is_not(None),
                                   Notification.read_at < cutoff)).rowcount
