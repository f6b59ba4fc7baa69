"""Scheduled moderation jobs. Each runs inside the scheduler's app context and
transaction (``core.scheduler.run_job`` commits once)."""

from __future__ import annotations

from moderation import alerts


def escalate_alerts() -> int:
    """Every minute: escalate unacknowledged risk alerts past their deadline."""
    return alerts.escalate_due()
