"""Writing the append-only moderation log (flushes; the caller commits)."""

from __future__ import annotations

import json
from typing import Any

from core.clock import utcnow
from core.extensions import db
from moderation.models import ModerationLog


def log(action: str, /, *, actor: Any = None, item: Any = None, alert: Any = None,
        rule: Any = None, subject: Any = None, note: str | None = None,
        **detail: Any) -> ModerationLog:
    """Append one step. ``detail`` holds codes and ids only, never participants' words."""
    entry = ModerationLog(
        at=utcnow(), actor_id=getattr(actor, "id", None), action=action,
        item_id=getattr(item, "id", None), alert_id=getattr(alert, "id", None),
        rule_id=getattr(rule, "id", None), subject_id=getattr(subject, "id", None),
        detail=json.loads(json.dumps(detail, default=str)), note=note)
    db.session.add(entry)
    db.session.flush()
    return entry
