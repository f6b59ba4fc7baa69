"""Scheduled moderation jobs. Each runs inside the scheduler's app context and
transaction (``core.scheduler.run_job`` commits once)."""

from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from moderation import alerts, checkins
from outcomes.models import Study


def escalate_alerts() -> int:
    """Every minute: escalate unacknowledged risk alerts past their deadline."""
    return alerts.escalate_due()


def generate_checkins() -> dict[str, int]:
    """Daily: evaluate every study's check-in rules and open the tasks that are due.
    Safe to run again: a participant never gets a second open task for the same reason."""
    totals = {"studies": 0, "checked": 0, "created": 0, "already_open": 0, "closed": 0}
    for study in db.session.scalars(select(Study).order_by(Study.id)).all():
        report = checkins.evaluate(study)
        totals["studies"] += 1
        totals["checked"] += report.checked
        totals["created"] += report.total_created
        totals["already_open"] += sum(report.already_open.values())
        totals["closed"] += report.closed
    return totals
