"""What the staff page of a participant is made of, contributed by several parts of
moderation without the page knowing them all.

- **Timeline sources** return :class:`TimelineEntry` rows (activity, moods, SMS answers,
  assessments, moderation history, messages, notes, check-ins, suggestions); the page
  merges them newest first.
- **Panels** are page sections with their own template and data (the message form, the
  notes, the check-in tasks, the suggestion form).

Each function takes the participant and the staff member looking, so a source or a panel
can leave out what that role may not see (a peer moderator never gets clinician-only
rows). Read-only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.models import Participant, User


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    #: a short code for styling and filtering: "activity", "mood", "sms", "assessment",
    #: "moderation", "message", "note", "checkin", "suggestion"
    kind: str
    #: one line for staff, plain text (the template escapes it)
    text: str
    #: a same-site link to the detail, or None
    url: str | None = None
    #: staff-only extra lines, plain text
    detail: tuple[str, ...] = field(default_factory=tuple)


#: (participant, viewer, since) -> entries at or after ``since`` (None: all)
TimelineSource = Callable[[Participant, User, "datetime | None"], list[TimelineEntry]]


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    #: a template that receives ``person``, ``viewer`` and ``data``
    template: str
    #: (participant, viewer) -> the template's data, or None to leave the panel out
    load: Callable[[Participant, User], dict[str, Any] | None]
    order: int = 50


SOURCES: dict[str, TimelineSource] = {}
PANELS: dict[str, Panel] = {}


def add_source(name: str, source: TimelineSource) -> None:
    SOURCES[name] = source


def add_panel(panel: Panel) -> None:
    PANELS[panel.key] = panel


def timeline(person: Participant, viewer: User, *, since: datetime | None = None,
             kinds: set[str] | None = None, limit: int = 300) -> list[TimelineEntry]:
    """Every source's entries, newest first, at most ``limit``."""
    entries = [entry for source in SOURCES.values() for entry in source(person, viewer, since)
               if kinds is None or entry.kind in kinds]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


def panels(person: Participant, viewer: User) -> list[tuple[Panel, dict[str, Any]]]:
    """The panels to show, in order, each with its data."""
    shown = []
    for panel in sorted(PANELS.values(), key=lambda p: (p.order, p.key)):
        data = panel.load(person, viewer)
        if data is not None:
            shown.append((panel, data))
    return shown
