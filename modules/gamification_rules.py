"""The gamification rule table: loading and checking ``modules/gamification.yaml``.

The file gives the points per reason, the levels and the badges with their rules (see
the comments in the file for the rule forms). It is checked when loaded: every problem
is collected and reported at once as ``file:line: message`` in a ``RulesError``.
``rules()`` loads the platform's file once per process; ``load_rules(path)`` checks any
file (tests and a future ``flask modules validate`` use it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

RULES_FILE = Path(__file__).with_name("gamification.yaml")

#: every point reason the platform awards; the rule file must give each a number
REASONS = ("step_completed", "quiz_passed", "action_planned", "action_tried",
           "reflection_written", "checkpoint_rated", "module_completed", "mood_logged",
           "post_written", "comment_written", "reaction_given", "helpful_marked")

#: what ``completed_all`` can ask for
COMPLETED_ALL = ("core_modules", "quizzes")

_BADGE_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_KIND = re.compile(r"^[a-z][a-z0-9_]*$")


class RulesError(ValueError):
    """The rule file is malformed; the message lists ``file:line: message`` problems."""


# --------------------------------------------------------------------------- rules


class Facts(Protocol):
    def count(self, kinds: tuple[str, ...], where: tuple[tuple[str, Any], ...]) -> int: ...
    def days(self, kinds: tuple[str, ...]) -> int: ...
    def streak_days(self) -> int: ...
    def completed_all(self, what: str) -> bool: ...


class Rule(Protocol):
    def met(self, facts: Facts) -> bool: ...


@dataclass(frozen=True)
class CountRule:
    """At least ``at_least`` events of the kinds (optionally with detail fields equal)."""

    kinds: tuple[str, ...]
    at_least: int
    where: tuple[tuple[str, Any], ...] = ()

    def met(self, facts: Facts) -> bool:
        return facts.count(self.kinds, self.where) >= self.at_least


@dataclass(frozen=True)
class DaysRule:
    """Events of the kinds on at least ``at_least`` different local days."""

    kinds: tuple[str, ...]
    at_least: int

    def met(self, facts: Facts) -> bool:
        return facts.days(self.kinds) >= self.at_least


@dataclass(frozen=True)
class StreakRule:
    days: int

    def met(self, facts: Facts) -> bool:
        return facts.streak_days() >= self.days


@dataclass(frozen=True)
class CompletedAllRule:
    """Every active core module, or every active quiz, completed."""

    what: str

    def met(self, facts: Facts) -> bool:
        return facts.completed_all(self.what)


@dataclass(frozen=True)
class AnyRule:
    rules: tuple[Rule, ...]

    def met(self, facts: Facts) -> bool:
        return any(rule.met(facts) for rule in self.rules)



@dataclass(frozen=True)
class LevelDef:
    number: int
    name: str
    floor: int


@dataclass(frozen=True)
class Badge:
    id: str
    name: str
    description: str
    #: participant-facing "how to earn it"
    how: str
    rule: Rule


@dataclass(frozen=True)
class Rules:
    points: dict[str, int]
    levels: tuple[LevelDef, ...]
    badges: tuple[Badge, ...]


# --------------------------------------------------------------------------- loading


class _Mapping(dict[str, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line: int
    lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Problems:
    """Collects ``file:line: message`` problems while a rule file is checked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, line: int, message: str) -> None:
        self.items.append(f"{self.path}:{line}: {message}")


def load_rules(path: Path | str = RULES_FILE) -> Rules:
    """Read and check a rule file (not cached; see ``rules()``)."""
    path = Path(path)
    problems = _Problems(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RulesError(f"{path}:{line}: not valid YAML: {error}") from error
    if not isinstance(data, _Mapping):
        raise RulesError(f"{path}:1: expected a mapping with points, levels and badges")
    for key in ("points", "levels", "badges"):
        if key not in data:
            problems.add(data.line, f"missing '{key}'")
    result = Rules(points=_check_points(data.get("points"), data, problems),
                   levels=_check_levels(data.get("levels"), data, problems),
                   badges=_check_badges(data.get("badges"), data, problems))
    if problems.items:
        raise RulesError("\n".join(problems.items))
    return result


@functools.cache
def rules() -> Rules:
    """The platform's rule table, loaded and checked once per process."""
    return load_rules(RULES_FILE)


def _is_int(value: Any, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_points(value: Any, parent: _Mapping, problems: _Problems) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, _Mapping):
        problems.add(parent.line_of("points"), "points: expected a mapping of reason: number")
        return {}
    for reason, points in value.items():
        if reason not in REASONS:
            problems.add(value.line_of(reason), f"points: unknown reason '{reason}' "
                                                f"(known: {', '.join(REASONS)})")
        elif not _is_int(points):
            problems.add(value.line_of(reason), f"points: '{reason}' must be a whole number "
                                                "of 0 or more")
    for reason in REASONS:
        if reason not in value:
            problems.add(value.line, f"points: missing '{reason}' (use 0 to switch it off)")
    return {reason: points for reason, points in value.items() if _is_int(points)}


def _check_levels(value: Any, parent: _Mapping, problems: _Problems) -> tuple[LevelDef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) < 2:
        problems.add(parent.line_of("levels"), "levels: expected a list of at least 2 levels")
        return ()
    levels = []
    for position, item in enumerate(value, start=1):
        level = _check_level(item, position, parent.line_of("levels"), problems)
        if level is None:
            continue
        if levels and level.floor <= levels[-1].floor:
            problems.add(item.line, f"level {position}: floor must be higher than the "
                                    f"previous level's ({levels[-1].floor})")
        levels.append(level)
    if levels and levels[0].floor != 0:
        problems.add(getattr(value[0], "line", parent.line_of("levels")),
                     "level 1: floor must be 0")
    return tuple(levels)


def _check_level(item: Any, position: int, line: int, problems: _Problems) -> LevelDef | None:
    if not isinstance(item, _Mapping):
        problems.add(line, f"level {position}: expected a mapping with number, name, floor")
        return None
    ok = True
    if item.get("number") != position:
        problems.add(item.line_of("number"), f"level {position}: number must be {position} "
                                             "(levels are numbered 1, 2, 3... in order)")
        ok = False
    if not isinstance(item.get("name"), str) or not item["name"].strip():
        problems.add(item.line_of("name"), f"level {position}: name is required")
        ok = False
    if not _is_int(item.get("floor")):
        problems.add(item.line_of("floor"), f"level {position}: floor must be a whole number "
                                            "of 0 or more")
        ok = False
    return LevelDef(position, item["name"].strip(), item["floor"]) if ok else None


def _check_badges(value: Any, parent: _Mapping, problems: _Problems) -> tuple[Badge, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        problems.add(parent.line_of("badges"), "badges: expected a list of badges")
        return ()
    badges: list[Badge] = []
    for item in value:
        badge = _check_badge(item, parent.line_of("badges"), problems)
        if badge is None:
            continue
        if any(b.id == badge.id for b in badges):
            problems.add(item.line_of("id"), f"badge '{badge.id}': the id is used twice")
            continue
        badges.append(badge)
    return tuple(badges)


def _check_badge(item: Any, line: int, problems: _Problems) -> Badge | None:
    if not isinstance(item, _Mapping):
        problems.add(line, "badges: each badge must be a mapping")
        return None
    badge_id = item.get("id")
    if not isinstance(badge_id, str) or not _BADGE_ID.match(badge_id):
        problems.add(item.line_of("id"), "badge: id must be lower-case letters, digits and "
                                         "dashes")
        return None
    texts = {}
    for key in ("name", "description", "how"):
        text = item.get(key)
        if not isinstance(text, str) or not text.strip():
            problems.add(item.line_of(key), f"badge '{badge_id}': {key} is required")
        else:
            texts[key] = text.strip()
    if "rule" not in item:
        problems.add(item.line, f"badge '{badge_id}': rule is required")
        return None
    rule = _parse_rule(item["rule"], item.line_of("rule"), f"badge '{badge_id}'", problems)
    if rule is None or len(texts) < 3:
        return None
    return Badge(badge_id, texts["name"], texts["description"], texts["how"], rule)


def _parse_rule(value: Any, line: int, where: str, problems: _Problems) -> Rule | None:
    if not isinstance(value, _Mapping) or len(value) != 1:
        problems.add(getattr(value, "line", line),
                     f"{where}: a rule is a mapping with exactly one of "
                     f"{', '.join(_RULE_PARSERS)}")
        return None
    [(name, body)] = value.items()
    parser = _RULE_PARSERS.get(name)
    if parser is None:
        problems.add(value.line_of(name), f"{where}: unknown rule '{name}' "
                                          f"(known: {', '.join(_RULE_PARSERS)})")
        return None
    return parser(body, value.line_of(name), where, problems)


def _parse_kinds(body: Any, line: int, where: str, problems: _Problems
                 ) -> tuple[tuple[str, ...], int] | None:
    """The ``kinds`` and ``at_least`` shared by ``count`` and ``days`` rules."""
    if not isinstance(body, _Mapping):
        problems.add(line, f"{where}: expected {{kinds: [...], at_least: n}}")
        return None
    kinds = body.get("kinds")
    if (not isinstance(kinds, list) or not kinds
            or not all(isinstance(k, str) and _KIND.match(k) for k in kinds)):
        problems.add(body.line_of("kinds"), f"{where}: kinds must be a list of event kinds")
        return None
    if not _is_int(body.get("at_least"), minimum=1):
        problems.add(body.line_of("at_least"), f"{where}: at_least must be a whole number "
                                               "of 1 or more")
        return None
    return tuple(kinds), body["at_least"]


def _parse_count(body: Any, line: int, where: str, problems: _Problems) -> Rule | None:
    parsed = _parse_kinds(body, line, where, problems)
    if parsed is None:
        return None
    extra = set(body) - {"kinds", "at_least", "where"}
    if extra:
        problems.add(body.line, f"{where}: unexpected {', '.join(sorted(extra))} in count")
        return None
    condition = body.get("where", {})
    if not isinstance(condition, dict) or not all(
            isinstance(v, str | int | float | bool) for v in condition.values()):
        problems.add(body.line_of("where"), f"{where}: where must map detail fields to "
                                            "plain values")
        return None
    return CountRule(parsed[0], parsed[1], tuple(sorted(condition.items())))


def _parse_days(body: Any, line: int, where: str, problems: _Problems) -> Rule | None:
    parsed = _parse_kinds(body, line, where, problems)
    if parsed is None:
        return None
    if set(body) - {"kinds", "at_least"}:
        problems.add(body.line, f"{where}: days takes only kinds and at_least")
        return None
    return DaysRule(*parsed)


def _parse_streak(body: Any, line: int, where: str, problems: _Problems) -> Rule | None:
    if not _is_int(body, minimum=1):
        problems.add(line, f"{where}: streak must be a number of days (1 or more)")
        return None
    return StreakRule(body)


def _parse_completed_all(body: Any, line: int, where: str, problems: _Problems
                         ) -> Rule | None:
    if body not in COMPLETED_ALL:
        problems.add(line, f"{where}: completed_all must be one of {', '.join(COMPLETED_ALL)}")
        return None
    return CompletedAllRule(body)


def _parse_any(body: Any, line: int, where: str, problems: _Problems) -> Rule | None:
    if not isinstance(body, list) or not body:
        problems.add(line, f"{where}: any must be a list of rules")
        return None
    parsed = [_parse_rule(item, line, where, problems) for item in body]
    if any(rule is None for rule in parsed):
        return None
    return AnyRule(tuple(rule for rule in parsed if rule is not None))


_RULE_PARSERS: dict[str, Callable[[Any, int, str, _Problems], Rule | None]] = {
    "count": _parse_count,
    "days": _parse_days,
    "streak": _parse_streak,
    "completed_all": _parse_completed_all,
    "any": _parse_any,
}
