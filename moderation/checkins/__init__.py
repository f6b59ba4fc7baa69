"""Moderator check-ins: automatic tasks from per-study rules, completing them by a message
or another contact, message templates, and the check-in lines of the staff timeline.

- ``settings``: the rules, their defaults and limits, a study's stored settings.
- ``evaluate``: the daily evaluation that opens tasks (one open per participant and reason).
- ``tasks``: lists, completing, cancelling, adding by hand, timeline entries.
- ``wording``: message templates and their placeholders.

Transaction contract (every module): services flush, never commit; the outermost caller
(view, job, CLI) commits once.
"""

from moderation import record
from moderation.checkins.errors import AlreadyClosed, CheckInError, PermissionDenied
from moderation.checkins.evaluate import Report, evaluate, open_task
from moderation.checkins.settings import SPECS, RuleSetting, rules_for, save_rules
from moderation.checkins.tasks import (
    Completion,
    add_manual,
    cancel,
    complete,
    task_list,
    timeline_entries,
)
from moderation.checkins.wording import seed_default_templates

record.add_source("checkin", timeline_entries)

__all__ = ["SPECS", "AlreadyClosed", "CheckInError", "Completion", "PermissionDenied",
           "Report", "RuleSetting", "add_manual", "cancel", "complete", "evaluate",
           "open_task", "rules_for", "save_rules", "seed_default_templates", "task_list"]
