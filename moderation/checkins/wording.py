"""Check-in message templates: the editable wording moderators start from.

A body may use ``{name}`` (the participant's display name) and ``{moderator}`` (the
sender's display name). Any other ``{...}`` is refused with its name, so a typo such as
``{nmae}`` never reaches a participant. Filling in is plain text replacement (never
``str.format``), and pages escape the result.

Transaction contract: the writing functions flush and audit; the caller commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from core import audit
from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from moderation.care_models import CHECKIN_REASONS, CheckInTemplate
from moderation.checkins.errors import CheckInError, PermissionDenied

EDITORS = frozenset({Role.CLINICIAN, Role.ADMIN})
READERS = frozenset({Role.PEER_MODERATOR, Role.CLINICIAN, Role.ADMIN})
PLACEHOLDERS = ("name", "moderator")
TITLE_MAX = 80
BODY_MAX = 1000
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

#: the shipped wording, one per rule reason (see :func:`seed_default_templates`)
DEFAULTS: tuple[tuple[str, str, str], ...] = (
    ("Thinking of you", "inactive",
     "Hi {name}, it's {moderator} from Kinship. We haven't seen you around for a few days "
     "and wanted to say hello. No pressure at all: if you fancy a chat, or want a hand "
     "finding something in the app, just reply here."),
    ("Missed a few texts", "missed_prompts",
     "Hi {name}, {moderator} here from Kinship. We noticed our last few texts went "
     "unanswered, which is completely fine. How are things with you? If the texts come at "
     "a bad time, let us know and we can look at that together."),
    ("How are you feeling?", "mood_drop",
     "Hi {name}, it's {moderator}. Your mood check-ins look like the last few days have "
     "been harder. I'm sorry it's been tough. Would it help to talk about it? You can "
     "reply here whenever you like."),
    ("A lonely week", "high_loneliness",
     "Hi {name}, {moderator} from Kinship here. Thank you for answering this week's "
     "questions. It sounds like it has been a lonely week, and that is hard. I'm here if "
     "you'd like to chat, and we could look at a small step together."),
    ("Following up", "alert_follow_up",
     "Hi {name}, it's {moderator} from Kinship. I wanted to check in after the last few "
     "days. How are you doing today? If things feel hard again, the crisis support page is "
     "always there, and you can reply to me here too."),
)


@dataclass(frozen=True)
class TemplateData:
    title: str
    body: str
    #: a key of CHECKIN_REASONS, or None for any
    reason: str | None = None


def unknown_placeholders(body: str) -> list[str]:
    return sorted({name for name in _PLACEHOLDER.findall(body) if name not in PLACEHOLDERS})


def check(data: TemplateData) -> TemplateData:
    """The cleaned data, or a :class:`CheckInError` on its field."""
    title = " ".join((data.title or "").split())
    body = (data.body or "").replace("\r\n", "\n").strip()
    if not title:
        raise CheckInError("Give the template a title.", "title")
    if len(title) > TITLE_MAX:
        raise CheckInError(f"Keep the title under {TITLE_MAX} characters.", "title")
    if not body:
        raise CheckInError("Write the message.", "body")
    if len(body) > BODY_MAX:
        raise CheckInError(f"Keep the message to {BODY_MAX:,} characters (it has "
                           f"{len(body):,}).", "body")
    unknown = unknown_placeholders(body)
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        raise CheckInError(f"Unknown placeholder{'s' if len(unknown) > 1 else ''}: {names}. "
                           "Use only {name} and {moderator}.", "body")
    if "{" in _PLACEHOLDER.sub("", body) or "}" in _PLACEHOLDER.sub("", body):
        raise CheckInError("Curly brackets are only for {name} and {moderator}; one is not "
                           "closed.", "body")
    if data.reason is not None and data.reason not in CHECKIN_REASONS:
        raise CheckInError("Choose a reason from the list.", "reason")
    return TemplateData(title, body, data.reason or None)


def _require_editor(actor: User) -> None:
    if actor.role not in EDITORS:
        raise PermissionDenied("Only clinicians and administrators edit templates.")


def create(data: TemplateData, *, actor: User) -> CheckInTemplate:
    _require_editor(actor)
    data = check(data)
    template = CheckInTemplate(title=data.title, body=data.body, reason=data.reason,
                               is_active=True, updated_at=utcnow(), updated_by_id=actor.id)
    db.session.add(template)
    db.session.flush()
    audit.record("checkin.template_added", actor=actor, template_id=template.id)
    return template


def edit(template: CheckInTemplate, data: TemplateData, *, actor: User) -> CheckInTemplate:
    _require_editor(actor)
    data = check(data)
    template.title, template.body, template.reason = data.title, data.body, data.reason
    template.updated_at, template.updated_by_id = utcnow(), actor.id
    db.session.flush()
    audit.record("checkin.template_edited", actor=actor, template_id=template.id)
    return template


def set_active(template: CheckInTemplate, active: bool, *, actor: User) -> None:
    _require_editor(actor)
    if template.is_active == active:
        return
    template.is_active = active
    template.updated_at, template.updated_by_id = utcnow(), actor.id
    db.session.flush()
    audit.record("checkin.template_" + ("activated" if active else "deactivated"),
                 actor=actor, template_id=template.id)


def templates(*, active_only: bool = False) -> list[CheckInTemplate]:
    query = select(CheckInTemplate).order_by(CheckInTemplate.is_active.desc(),
                                             CheckInTemplate.title, CheckInTemplate.id)
    if active_only:
        query = query.where(CheckInTemplate.is_active.is_(True))
    return list(db.session.scalars(query))


def suggested(active: list[CheckInTemplate], reason: str) -> CheckInTemplate | None:
    """The template to start from for a task of ``reason``: one made for it, else none."""
    return next((t for t in active if t.reason == reason), None)


def fill(body: str, person: Participant, sender: User) -> str:
    """The body with ``{name}`` and ``{moderator}`` filled in (plain replacement)."""
    values = {"name": person.user.display_name or "there",
              "moderator": sender.display_name or "your moderator"}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def seed_default_templates(actor: User | None = None) -> int:
    """Add the shipped templates whose title is not there yet; returns how many were
    added. Safe to run again (demo seed, first start, the templates page)."""
    have = set(db.session.scalars(select(CheckInTemplate.title)))
    added = 0
    for title, reason, body in DEFAULTS:
        if title in have:
            continue
        db.session.add(CheckInTemplate(title=title, body=body, reason=reason, is_active=True,
                                       updated_at=utcnow(),
                                       updated_by_id=getattr(actor, "id", None)))
        added += 1
    db.session.flush()
    if added and actor is not None:
        audit.record("checkin.templates_seeded", actor=actor, added=added)
    return added
