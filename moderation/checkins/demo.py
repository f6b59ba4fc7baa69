"""Check-ins for the demo study: the suggested templates and the tasks the rules give on
the seeded activity, so the demo moderators have check-ins to complete on first run.

Flushes; the demo seed commits. Safe to run again (no duplicate templates or tasks)."""

from __future__ import annotations

from datetime import datetime

from moderation.checkins.evaluate import Report, evaluate
from moderation.checkins.wording import seed_default_templates
from outcomes.models import Study


def seed_demo_checkins(study: Study, *, now: datetime | None = None) -> Report:
    seed_default_templates()
    return evaluate(study, now)
