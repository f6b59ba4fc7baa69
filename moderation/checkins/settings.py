"""Check-in rule settings per study: what each automatic rule means, its default and its
limits, and saving a study's changes.

A study without a ``checkin_rule`` row for a rule uses the rule's defaults (``SPECS``), so
a new study gets sensible check-ins without anyone visiting the settings page.

Transaction contract: :func:`save_rules` flushes and audits; the caller commits. The
other functions only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from core import audit
from core.clock import utcnow
from core.extensions import db
from core.models import User
from core.roles import Role
from moderation.care_models import CheckInRule
from moderation.checkins.errors import CheckInError, PermissionDenied

#: who may change a study's rules
EDITORS = frozenset({Role.CLINICIAN, Role.RESEARCHER})
#: hours from a task's creation to its due time
DUE_HOURS_RANGE = (1, 336)


@dataclass(frozen=True)
class RuleSpec:
    reason: str
    #: what the threshold is, as a form label (None: the rule has no number)
    threshold_label: str | None
    default: int | None
    low: int
    high: int
    due_hours: int
    #: one sentence for the settings page
    explain: str


SPECS: dict[str, RuleSpec] = {spec.reason: spec for spec in (
    RuleSpec("inactive", "Days without using the platform", 7, 1, 90, 48,
             "No sign-in, module step, mood, post or other use for this many days (counted "
             "again from the last check-in)."),
    RuleSpec("missed_prompts", "SMS prompts missed in a row", 3, 1, 30, 48,
             "This many SMS prompts in a row went out and closed without an answer."),
    RuleSpec("mood_drop", "Mood points dropped (1-5 scale)", 2, 1, 4, 48,
             "The daily mood fell by at least this much over 3 days (first against newest "
             "mood of the last 3 days and today)."),
    RuleSpec("high_loneliness", "UCLA-3 SMS score at or above (3-9)", 6, 3, 9, 48,
             "The newest weekly UCLA-3 loneliness score by SMS (last 7 days) is at or "
             "above this."),
    RuleSpec("alert_follow_up", None, None, 0, 0, 24,
             "A risk alert about the participant was resolved on a previous day: a "
             "follow-up check-in the day after."),
)}


@dataclass(frozen=True)
class RuleSetting:
    reason: str
    is_enabled: bool
    #: None for a rule without a number
    threshold: int | None
    due_hours: int
    #: no row stored: the defaults apply
    is_default: bool = True


def default_setting(reason: str) -> RuleSetting:
    spec = SPECS[reason]
    return RuleSetting(reason, True, spec.default, spec.due_hours)


def rules_for(study_id: int) -> dict[str, RuleSetting]:
    """Every rule's setting for a study (stored or default), in ``SPECS`` order."""
    rows = {row.reason: row for row in db.session.scalars(
        select(CheckInRule).where(CheckInRule.study_id == study_id))}
    settings = {}
    for reason, spec in SPECS.items():
        row = rows.get(reason)
        if row is None:
            settings[reason] = default_setting(reason)
        else:
            threshold = int(row.threshold) if spec.threshold_label else None
            settings[reason] = RuleSetting(reason, row.is_enabled, threshold, row.due_hours,
                                           is_default=False)
    return settings


def check_setting(setting: RuleSetting) -> None:
    """Refuse a setting out of its rule's limits, naming the form field."""
    spec = SPECS.get(setting.reason)
    if spec is None:
        raise CheckInError("That is not a check-in rule.")
    if spec.threshold_label is not None:
        value = setting.threshold
        if value is None or not spec.low <= value <= spec.high:
            raise CheckInError(f"Choose a whole number from {spec.low} to {spec.high}.",
                               f"{setting.reason}-threshold")
    low, high = DUE_HOURS_RANGE
    if not low <= setting.due_hours <= high:
        raise CheckInError(f"Choose from {low} to {high} hours (two weeks).",
                           f"{setting.reason}-due_hours")


def save_rules(study: Any, settings: list[RuleSetting], *, actor: User) -> list[str]:
    """Store a study's rule settings; returns the reasons that changed (audited as one
    ``checkin.rules_changed`` entry with the new figures)."""
    if actor.role not in EDITORS:
        raise PermissionDenied("Only clinicians and researchers change check-in rules.")
    for setting in settings:
        check_setting(setting)
    current = rules_for(study.id)
    rows = {row.reason: row for row in db.session.scalars(
        select(CheckInRule).where(CheckInRule.study_id == study.id))}
    changed: dict[str, dict[str, Any]] = {}
    for setting in settings:
        old = current[setting.reason]
        new = (setting.is_enabled, setting.threshold, setting.due_hours)
        if (old.is_enabled, old.threshold, old.due_hours) == new and not old.is_default:
            continue
        row = rows.get(setting.reason)
        if row is None:
            row = CheckInRule(study_id=study.id, reason=setting.reason)
            db.session.add(row)
        row.is_enabled, row.due_hours = setting.is_enabled, setting.due_hours
        row.threshold = float(setting.threshold or 0)
        row.updated_at, row.updated_by_id = utcnow(), actor.id
        if (old.is_enabled, old.threshold, old.due_hours) != new:
            changed[setting.reason] = {"enabled": setting.is_enabled,
                                       "threshold": setting.threshold,
                                       "due_hours": setting.due_hours}
    db.session.flush()
    if changed:
        audit.record("checkin.rules_changed", actor=actor, target=study, rules=changed)
    return sorted(changed)
