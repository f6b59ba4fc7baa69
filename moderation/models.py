"""Moderation tables: watched-word rules, queue items for screened content, risk alerts,
the on-call rota and the append-only moderation log.

A :class:`QueueItem` points at the content it is about by ``content_type`` + ``content_id``
(``forum_post``, ``forum_comment``, ``journal_entry``, ``sms_message``) so the review queue
can list items of every channel without this package importing the forum. Participants'
words never leave their own tables: items, alerts and log entries hold ids and codes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User

CATEGORIES = {
    "self_harm": "Suicide or self-harm",
    "harm_to_others": "Harm to others",
    "harassment": "Harassment",
    "personal_info": "Personal information",
    "spam": "Spam",
}
#: categories whose high-severity matches are risk (a clinician is alerted)
RISK_CATEGORIES = frozenset({"self_harm", "harm_to_others"})
SEVERITIES = {"low": 1, "medium": 2, "high": 3}
RULE_ACTIONS = {"flag": "Flag (publish and queue)", "hold": "Hold until approved",
                "block": "Block with a kind message"}
RULE_KINDS = {"phrase": "Phrase", "pattern": "Pattern (regular expression)"}
#: channel -> the table the content lives in
CONTENT_TYPES = {"forum_post": "forum_post", "forum_comment": "forum_comment",
                 "reflection": "journal_entry", "sms": "sms_message",
                 "moderator_message": "moderator_message"}
ITEM_STATUSES = ("open", "approved", "hidden", "redacted", "escalated", "closed")
#: what a clinician did about a risk alert (codes are what exports and the audit log keep)
ALERT_ACTIONS = {
    "contacted_participant": "Contacted the participant",
    "safety_plan_reviewed": "Reviewed the safety plan",
    "emergency_services": "Called emergency services",
    "no_action_needed": "No action needed",
}
#: escalation steps of a risk alert
LEVEL_ON_CALL, LEVEL_NEXT, LEVEL_ALL = 0, 1, 2
LEVELS = {LEVEL_ON_CALL: "On-call clinician", LEVEL_NEXT: "Next clinician on the rota",
          LEVEL_ALL: "All clinicians"}


class WatchedRule(db.Model):
    """A watched word, phrase or pattern and what happens when text matches it."""

    __tablename__ = "moderation_rule"
    __table_args__ = (UniqueConstraint("kind", "text"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(20), index=True)
    #: "low", "medium" or "high"
    severity: Mapped[str] = mapped_column(String(10))
    #: "flag", "hold" or "block"
    action: Mapped[str] = mapped_column(String(10))
    #: "phrase" (normalised words, ``*`` = any ending) or "pattern" (a regular expression)
    kind: Mapped[str] = mapped_column(String(10), default="phrase")
    text: Mapped[str] = mapped_column(String(300))
    #: phrases that cancel a match they overlap ("killing it", "this joke killed me")
    unless: Mapped[list[str]] = mapped_column(db.JSON, default=list)
    #: shown to the author when the rule holds or blocks their text
    message: Mapped[str] = mapped_column(String(300), default="")
    is_enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    @property
    def severity_level(self) -> int:
        return SEVERITIES.get(self.severity, 0)


class QueueItem(db.Model):
    """Something a moderator (or, when ``clinician_only``, a clinician) should look at:
    an automatic flag or hold from screening; user reports join in the review queue."""

    __tablename__ = "moderation_item"
    __table_args__ = (
        Index("ix_moderation_item_content", "content_type", "content_id"),
        # the review queue: open items by severity then age
        Index("ix_moderation_item_status_severity", "status", "severity", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    content_type: Mapped[str] = mapped_column(String(30))
    content_id: Mapped[int]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"), index=True)
    #: "screening" (automatic) or "report" (a person reported it)
    source: Mapped[str] = mapped_column(String(20), default="screening")
    #: what screening did: "flag" (published) or "hold" (waiting for approval)
    action: Mapped[str] = mapped_column(String(10))
    category: Mapped[str | None] = mapped_column(String(20))
    #: 1 low .. 3 high
    severity: Mapped[int] = mapped_column(default=0)
    is_risk: Mapped[bool] = mapped_column(default=False)
    #: private content (journal reflections) and risk: clinicians only, never peers
    clinician_only: Mapped[bool] = mapped_column(default=False)
    rule_ids: Mapped[list[int]] = mapped_column(db.JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: optimistic concurrency: two moderators acting at once, exactly one wins
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    participant: Mapped[Participant | None] = relationship(foreign_keys=[participant_id])
    handled_by: Mapped[User | None] = relationship(foreign_keys=[handled_by_id])


class RiskAlert(db.Model):
    """High-risk content that a clinician must respond to before ``deadline_at``."""

    __tablename__ = "risk_alert"
    __table_args__ = (Index("ix_risk_alert_open_deadline", "acknowledged_at", "deadline_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("moderation_item.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    content_type: Mapped[str] = mapped_column(String(30))
    content_id: Mapped[int]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"), index=True)
    category: Mapped[str | None] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the current step: 0 on-call, 1 next on the rota, 2 all clinicians
    level: Mapped[int] = mapped_column(default=LEVEL_ON_CALL)
    #: who must respond at this step (None at the "all clinicians" step or with no rota)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    #: when the current step escalates unless acknowledged (None: nothing left to escalate to)
    deadline_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: codes from ALERT_ACTIONS
    actions_taken: Mapped[list[str]] = mapped_column(db.JSON, default=list)
    #: the clinician's note (clinical record: shown to clinicians only, never exported or audited)
    note: Mapped[str | None] = mapped_column(Text)
    possible_adverse_event: Mapped[bool | None]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    item: Mapped[QueueItem | None] = relationship()
    participant: Mapped[Participant | None] = relationship(foreign_keys=[participant_id])
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    acknowledged_by: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])

    @property
    def status(self) -> str:
        if self.resolved_at is not None:
            return "resolved"
        if self.acknowledged_at is not None:
            return "acknowledged"
        return "open"


class RotaEntry(db.Model):
    """A clinician's place on the on-call rota. The first enabled entry is on call now."""

    __tablename__ = "oncall_rota"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), unique=True)
    position: Mapped[int]
    #: a staff mobile number in E.164 for alert texts, or None
    phone: Mapped[str | None] = mapped_column(String(20))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()


class ModerationLog(db.Model):
    """Append-only record of every moderation step: screening outcomes, alert steps,
    rule and rota changes, and (later) moderators' actions on items.

    Rows are never updated or deleted (the ORM refuses it, see below). ``detail`` holds
    codes and ids; ``note`` is a staff-written reason, never participants' words."""

    __tablename__ = "moderation_log"
    __table_args__ = (Index("ix_moderation_log_alert", "alert_id", "at"),
                      Index("ix_moderation_log_item", "item_id", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: None: the system (screening, the escalation job)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    action: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("moderation_item.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("risk_alert.id"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("moderation_rule.id"))
    #: the person the step was about or addressed to (author, notified clinician)
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(db.JSON, default=dict)
    note: Mapped[str | None] = mapped_column(String(500))

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    subject: Mapped[User | None] = relationship(foreign_keys=[subject_id])


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(Session, "before_flush")
def _refuse_log_changes(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, ModerationLog) and (obj in session.deleted
                                               or session.is_modified(obj)):
            raise AppendOnlyError("the moderation log is append-only")
