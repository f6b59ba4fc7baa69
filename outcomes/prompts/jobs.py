"""Scheduled jobs of the prompt protocol (listed in ``core.scheduler.JOBS``).

Each is run by the scheduler (or ``flask sms tick``) in an app context; it flushes and
the job wrapper commits once. Both are idempotent: running them twice at the same time
plans, queues and expires nothing twice.
"""

from __future__ import annotations

from outcomes.prompts import services


def plan() -> dict[str, int]:
    """``sms.plan``: queue due prompts and reminders; cancel those no longer wanted."""
    return services.plan_due()


def expire() -> dict[str, int]:
    """``sms.expire``: close unanswered prompts whose time is up."""
    return {"expired": services.expire_due()}
