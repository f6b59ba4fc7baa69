"""Watched-word rules: create, edit, enable/disable, YAML import and export, and the
set of rules screening uses.

Transaction contract: every writing function flushes and leaves the commit to its caller.
Each change is written to the moderation log and the audit log (ids and codes only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from core import audit
from core.clock import utcnow
from core.extensions import db
from core.models import User
from moderation import history
from moderation.models import CATEGORIES, RULE_ACTIONS, RULE_KINDS, SEVERITIES, WatchedRule
from moderation.screening.matching import RuleError, RuleSpec, check_rule

SHIPPED = Path(__file__).resolve().parent / "watched_words.yaml"
TEXT_MAX = 300
MESSAGE_MAX = 300
UNLESS_MAX = 30
FIELDS = ("category", "severity", "action", "kind", "text", "unless", "message")


class RuleInputError(ValueError):
    """A rule that cannot be saved; ``field`` names the form field to show it on."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RulesFileError(ValueError):
    """A YAML rules file with problems; ``problems`` are "line N: ..." sentences."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------- validation


def clean(data: dict[str, Any]) -> dict[str, Any]:
    """Check one rule's fields and return them tidied; raise :class:`RuleInputError`."""
    category, severity = data.get("category"), data.get("severity")
    action, kind = data.get("action"), data.get("kind") or "phrase"
    if category not in CATEGORIES:
        raise RuleInputError(f"Choose a category: {', '.join(CATEGORIES)}.", "category")
    if severity not in SEVERITIES:
        raise RuleInputError("Choose a severity: low, medium or high.", "severity")
    if action not in RULE_ACTIONS:
        raise RuleInputError("Choose an action: flag, hold or block.", "action")
    if kind not in RULE_KINDS:
        raise RuleInputError("Choose phrase or pattern.", "kind")
    text = str(data.get("text") or "").strip()
    if not text or len(text) > TEXT_MAX:
        raise RuleInputError(f"Write a phrase or pattern of 1 to {TEXT_MAX} characters.", "text")
    unless = [str(u).strip() for u in (data.get("unless") or []) if str(u).strip()]
    if len(unless) > UNLESS_MAX or any(len(u) > TEXT_MAX for u in unless):
        raise RuleInputError(f"At most {UNLESS_MAX} 'unless' phrases of up to {TEXT_MAX} "
                             "characters each.", "unless")
    message = " ".join(str(data.get("message") or "").split())
    if len(message) > MESSAGE_MAX:
        raise RuleInputError(f"Keep the message to {MESSAGE_MAX} characters.", "message")
    try:
        check_rule(kind, text)
    except RuleError as exc:
        raise RuleInputError(str(exc), "text") from exc
    try:
        check_rule("phrase", "x", unless)
    except RuleError as exc:
        raise RuleInputError(str(exc), "unless") from exc
    return {"category": category, "severity": severity, "action": action, "kind": kind,
            "text": text, "unless": unless, "message": message}


def _duplicate(kind: str, text: str, exclude: int | None = None) -> WatchedRule | None:
    query = select(WatchedRule).where(WatchedRule.kind == kind, WatchedRule.text == text)
    if exclude is not None:
        query = query.where(WatchedRule.id != exclude)
    return db.session.scalar(query)


# --------------------------------------------------------------------------- one rule


def create_rule(data: dict[str, Any], *, actor: User, audited: bool = True) -> WatchedRule:
    fields = clean(data)
    if _duplicate(fields["kind"], fields["text"]) is not None:
        raise RuleInputError("There is already a rule with this phrase or pattern.", "text")
    now = utcnow()
    rule = WatchedRule(**fields, is_enabled=True, created_at=now, updated_at=now,
                       updated_by_id=actor.id)
    db.session.add(rule)
    db.session.flush()
    _record("rule.created", rule, actor, audited=audited)
    return rule


def update_rule(rule: WatchedRule, data: dict[str, Any], *, actor: User,
                audited: bool = True) -> bool:
    """Save edits; False (and nothing written) when nothing changed."""
    fields = clean(data)
    if _duplicate(fields["kind"], fields["text"], exclude=rule.id) is not None:
        raise RuleInputError("There is already a rule with this phrase or pattern.", "text")
    changed = sorted(k for k, v in fields.items() if getattr(rule, k) != v)
    if not changed:
        return False
    for key in changed:
        setattr(rule, key, fields[key])
    rule.updated_at, rule.updated_by_id = utcnow(), actor.id
    db.session.flush()
    _record("rule.updated", rule, actor, audited=audited, changed=changed)
    return True


def set_enabled(rule: WatchedRule, enabled: bool, *, actor: User, audited: bool = True) -> None:
    if rule.is_enabled == enabled:
        return
    rule.is_enabled = enabled
    rule.updated_at, rule.updated_by_id = utcnow(), actor.id
    db.session.flush()
    _record("rule.enabled" if enabled else "rule.disabled", rule, actor, audited=audited)


def _record(action: str, rule: WatchedRule, actor: User, *, audited: bool,
            **detail: Any) -> None:
    """Log the change; audit it too unless it is part of an import (audited once)."""
    facts = {"category": rule.category, "severity": rule.severity, "rule_action": rule.action,
             **detail}
    history.log(action, actor=actor, rule=rule, **facts)
    if audited:
        audit.record(f"moderation.{action}", actor=actor, target=rule, **facts)


# --------------------------------------------------------------------------- YAML


class _LineLoader(yaml.SafeLoader):
    """Remembers the line each mapping starts on (as ``__line__``)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def parse_yaml(text: str) -> list[dict[str, Any]]:
    """Read a rules file; return cleaned rules or raise :class:`RulesFileError` listing
    every problem with its line number."""
    try:
        data = yaml.load(text or "", Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "the file"
        problem = getattr(exc, "problem", None) or "is not valid YAML"
        raise RulesFileError([f"{where}: {problem}"]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RulesFileError(["line 1: the file must have a 'rules:' list"])
    problems, cleaned, seen = [], [], {}
    for entry in data["rules"]:
        if not isinstance(entry, dict):
            problems.append("a rule must be a mapping (category:, severity:, ...)")
            continue
        line = entry.pop("__line__", "?")
        try:
            rule = _from_entry(entry)
        except RuleInputError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        key = (rule["kind"], rule["text"])
        if key in seen:
            problems.append(f"line {line}: the same {rule['kind']} as line {seen[key]}")
            continue
        seen[key] = line
        cleaned.append(rule)
    if problems:
        raise RulesFileError(problems)
    return cleaned


def _from_entry(entry: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(entry) - {"category", "severity", "action", "phrase", "pattern",
                                    "unless", "message", "enabled"})
    if unknown:
        raise RuleInputError(f"unknown key {unknown[0]!r}")
    if ("phrase" in entry) == ("pattern" in entry):
        raise RuleInputError("give either a phrase or a pattern")
    unless = entry.get("unless") or []
    if not isinstance(unless, list):
        raise RuleInputError("'unless' must be a list of phrases")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleInputError("'enabled' must be true or false")
    kind = "phrase" if "phrase" in entry else "pattern"
    rule = clean({**entry, "kind": kind, "text": entry[kind], "unless": unless})
    rule["is_enabled"] = enabled
    return rule


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def import_yaml(text: str, *, actor: User) -> ImportResult:
    """Add the file's rules and update those already here (matched by phrase/pattern).
    Rules not in the file are left alone. All or nothing: a problem saves nothing."""
    rules = parse_yaml(text)
    created = updated = unchanged = 0
    for data in rules:
        enabled = data.pop("is_enabled")
        existing = _duplicate(data["kind"], data["text"])
        if existing is None:
            rule = create_rule(data, actor=actor, audited=False)
            if not enabled:
                set_enabled(rule, False, actor=actor, audited=False)
            created += 1
            continue
        changed = update_rule(existing, data, actor=actor, audited=False)
        if existing.is_enabled != enabled:
            set_enabled(existing, enabled, actor=actor, audited=False)
            changed = True
        updated, unchanged = updated + changed, unchanged + (not changed)
    history.log("rules.imported", actor=actor, created=created, updated=updated,
                unchanged=unchanged)
    audit.record("moderation.rules.imported", actor=actor, created=created, updated=updated,
                 unchanged=unchanged)
    return ImportResult(created, updated, unchanged)


def load_shipped(*, actor: User) -> ImportResult:
    return import_yaml(SHIPPED.read_text(encoding="utf-8"), actor=actor)


HEADER = """\
# Kinship watched words, exported {at:%Y-%m-%d %H:%M} UTC.
# Each rule: category, severity (low/medium/high), action (flag/hold/block), a phrase
# ("*" = any ending) or a pattern (regular expression), optional message and unless list.
"""


def export_yaml() -> str:
    rows = db.session.scalars(select(WatchedRule).order_by(WatchedRule.category,
                                                           WatchedRule.id)).all()
    rules = []
    for rule in rows:
        entry: dict[str, Any] = {"category": rule.category, "severity": rule.severity,
                                 "action": rule.action, rule.kind: rule.text}
        if rule.unless:
            entry["unless"] = list(rule.unless)
        if rule.message:
            entry["message"] = rule.message
        if not rule.is_enabled:
            entry["enabled"] = False
        rules.append(entry)
    body = yaml.safe_dump({"rules": rules}, sort_keys=False, allow_unicode=True, width=100)
    return HEADER.format(at=utcnow()) + body


# --------------------------------------------------------------------------- screening's view


def _spec(rule: WatchedRule) -> RuleSpec:
    return RuleSpec(rule.id, rule.category, rule.severity, rule.action, rule.kind, rule.text,
                    tuple(rule.unless or ()), rule.message)


@functools.lru_cache(maxsize=1)
def _shipped_specs(mtime: float) -> tuple[RuleSpec, ...]:
    rules = parse_yaml(SHIPPED.read_text(encoding="utf-8"))
    return tuple(RuleSpec(None, r["category"], r["severity"], r["action"], r["kind"], r["text"],
                          tuple(r["unless"]), r["message"]) for r in rules if r["is_enabled"])


def shipped_specs() -> tuple[RuleSpec, ...]:
    return _shipped_specs(SHIPPED.stat().st_mtime)


def active_specs() -> list[RuleSpec]:
    """The enabled rules. Until any rule has been saved the shipped file is used, so a new
    site is never unscreened; disabling every rule is an admin's explicit choice."""
    rows = db.session.scalars(select(WatchedRule)).all()
    if not rows:
        return list(shipped_specs())
    return [_spec(rule) for rule in rows if rule.is_enabled]


def rule_count() -> int:
    return db.session.scalar(select(func.count(WatchedRule.id))) or 0
