"""Study set-up: the study as data, its YAML form, checking, the change guard, saving.

The set-up page, the YAML import and export (on the web and ``flask outcomes study``)
all take the same steps:

1. :func:`study_data` is the study as one plain document (``study``, ``strata``,
   ``arms``, ``schedule``, ``sms_protocol``), which :func:`to_yaml` writes out;
2. :func:`read_yaml` reads such a document and remembers the line of every key
   (the text is composed into PyYAML nodes, whose marks hold the lines);
3. :func:`check` checks shape and values and returns the document with its defaults
   filled in, or reports every problem with its line. The schedule and the SMS
   protocol are checked by their owners (``outcomes.assessments.schedule``,
   ``outcomes.prompts.protocol``);
4. :func:`plan` compares it with the study and marks each difference ``ok``,
   ``confirm`` (allowed, but only when the researcher confirms it) or ``refused``:
   the change guard, which applies once enrolment has opened or anyone has been
   randomised (``STUDY.md`` lists the rules);
5. :func:`save` applies a plan with nothing refused and writes one audit entry
   listing what changed (field names and structured values; free text such as the
   contact or an arm's description is named, never copied).

Transaction contract: :func:`save` flushes and leaves the commit to its caller;
everything else only reads.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from typing import Any

import yaml
from sqlalchemy import select
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core import audit
from core.accounts import PermissionDenied
from core.extensions import db
from core.models import ConsentVersion, Participant, User
from core.roles import Role
from outcomes.models import FEATURES, AllocationSlot, Arm, Study

Where = tuple[str | int, ...]

SECTIONS = ("study", "strata", "arms", "schedule", "sms_protocol")
STUDY_DEFAULTS: dict[str, Any] = {
    "slug": None, "name": None, "code_prefix": "KIN", "timezone": "Europe/London",
    "contact": "", "sites": [], "randomise_on_baseline": False, "consent_version": None,
    "lost_after_days": 28,
}
ARM_KEYS = ("code", "name", "description", "ratio", "features")
#: free text: the audit log says that it changed, never what it says
PRIVATE = frozenset({"study.name", "study.contact", "name", "description"})
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
CODE_PREFIX = re.compile(r"^[A-Z0-9]{1,10}$")
ARM_CODE = re.compile(r"^[a-z][a-z0-9_-]{0,29}$")
FACTOR = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_RATIO = 20
MAX_LEVEL = 80
#: the owners of the two sections this module only passes on
SECTION_OWNERS = {"schedule": "outcomes.assessments.schedule",
                  "sms_protocol": "outcomes.prompts.protocol"}
SECTION_FUNCTIONS = {"schedule": "schedule", "sms_protocol": "protocol"}

OK, CONFIRM, REFUSED = "ok", "confirm", "refused"


class SetupError(ValueError):
    """The document cannot be saved; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class NeedsConfirmation(SetupError):
    """Every change is allowed, but some only once the researcher confirms them."""


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str
    #: where in the document, e.g. ("arms", 0, "ratio"); the page puts it on that field
    where: Where = ()

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Change:
    #: dotted name, e.g. "study.timezone", "arms.guided.ratio", "strata.site"
    field: str
    before: Any
    after: Any
    level: str = OK
    reason: str = ""
    #: where in the document it is, for the line of a refusal
    where: Where = ()

    @property
    def private(self) -> bool:
        if self.field.startswith("arms."):
            return self.field.rsplit(".", 1)[-1] in PRIVATE
        return self.field in PRIVATE

    def for_audit(self) -> dict[str, Any]:
        if self.private or self.field in SECTION_OWNERS:
            return {"field": self.field}
        return {"field": self.field, "from": self.before, "to": self.after}

    def describe(self) -> str:
        """One line for the dry run and the page."""
        if self.private or self.field in SECTION_OWNERS:
            return f"{self.field}: changed"
        return f"{self.field}: {_show(self.before)} → {_show(self.after)}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


@dataclass
class Plan:
    changes: list[Change]
    #: whether the change guard applies (enrolment open or someone randomised)
    locked: bool

    @property
    def refused(self) -> list[Change]:
        return [c for c in self.changes if c.level == REFUSED]

    @property
    def to_confirm(self) -> list[Change]:
        return [c for c in self.changes if c.level == CONFIRM]

    def problems(self, lines: dict[Where, int] | None = None) -> list[Problem]:
        return [Problem(_line_of(lines or {}, c.where), c.reason, c.where)
                for c in self.refused]


@dataclass
class Document:
    """A set-up document being read: its data, the line of each key, the problems found."""

    data: Any
    lines: dict[Where, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def problem(self, where: Where, message: str) -> None:
        self.problems.append(Problem(_line_of(self.lines, where), message, where))


def _line_of(lines: dict[Where, int], where: Where) -> int | None:
    """The line of ``where``, or of the nearest enclosing key that has one."""
    while where and where not in lines:
        where = where[:-1]
    return lines.get(where)


# --- the study as data --------------------------------------------------------------

def study_data(study: Study) -> dict[str, Any]:
    """The whole set-up as one document: what export writes and import reads."""
    consent = db.session.get(ConsentVersion, study.consent_version_id) \
        if study.consent_version_id else None
    data: dict[str, Any] = {
        "study": {
            "slug": study.slug, "name": study.name, "code_prefix": study.code_prefix,
            "timezone": study.timezone, "contact": study.contact or "",
            "sites": list(study.sites or []),
            "randomise_on_baseline": bool(study.randomise_on_baseline),
            "consent_version": consent.version if consent else None,
            "lost_after_days": study.lost_after_days,
        },
        "strata": [_stratum(study, name) for name in study.strata or []],
        "arms": [{"code": arm.code, "name": arm.name, "description": arm.description or "",
                  "ratio": arm.ratio,
                  "features": {name: arm.has(name) for name in FEATURES}}
                 for arm in _arms(study)],
    }
    for section in SECTION_OWNERS:
        owner = section_api(section)
        if owner is not None:
            data[section] = getattr(owner, f"export_{SECTION_FUNCTIONS[section]}")(study)
    return data


def _stratum(study: Study, name: str) -> dict[str, Any]:
    if name == "site":
        return {"factor": "site"}
    return {"factor": name, "levels": list((study.stratum_levels or {}).get(name, []))}


def _arms(study: Study) -> list[Arm]:
    return list(db.session.scalars(select(Arm).where(Arm.study_id == study.id)
                                   .order_by(Arm.id)))


def section_api(section: str) -> Any | None:
    """The module that owns ``schedule`` or ``sms_protocol``, or None while it is not
    installed (then the section is neither exported nor accepted)."""
    try:
        return import_module(SECTION_OWNERS[section])
    except ModuleNotFoundError:
        return None


# --- YAML -----------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)

HEADER = """\
# Kinship study set-up. Import it on the set-up page or with
# `flask outcomes study import FILE --dry-run`; outcomes/STUDY.md describes every key.
"""


def to_yaml(data: dict[str, Any]) -> str:
    return HEADER + yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                              default_flow_style=False, width=100)


def read_yaml(text: str) -> Document:
    """Read a document, keeping the line of every key. Syntax problems are reported with
    their line; the data is None then."""
    doc = Document(None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"not valid YAML: {exc.problem or exc.context}"
        if exc.context and exc.context_mark and exc.problem_mark:
            message += f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
        doc.problems.append(Problem(mark.line + 1 if mark else None, message))
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(None, f"not valid YAML: {exc}"))
        return doc
    if node is None:
        doc.problems.append(Problem(None, "the document is empty"))
        return doc
    doc.lines[()] = node.start_mark.line + 1
    doc.data = _Composer(doc).data(node, ())
    return doc


class _Composer:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.constructor = SafeConstructor()

    def data(self, node: Node, where: Where) -> Any:
        if isinstance(node, MappingNode):
            return self.mapping(node, where)
        if isinstance(node, SequenceNode):
            values = []
            for index, child in enumerate(node.value):
                self.doc.lines[(*where, index)] = child.start_mark.line + 1
                values.append(self.data(child, (*where, index)))
            return values
        try:
            return self.constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self.doc.problems.append(Problem(node.start_mark.line + 1,
                                             f"cannot read this value: {exc}", where))
            return None

    def mapping(self, node: MappingNode, where: Where) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.doc.problems.append(Problem(line, "keys must be plain names", where))
                continue
            key = self.constructor.construct_object(key_node)
            if key in result:
                first = self.doc.lines.get((*where, key))
                self.doc.problems.append(Problem(line, f"{key} is given twice (first at line "
                                                       f"{first})", (*where, key)))
                continue
            self.doc.lines[(*where, key)] = line
            result[key] = self.data(value_node, (*where, key))
        return result


# --- checking -------------------------------------------------------------------------

def check(doc: Document) -> dict[str, Any] | None:
    """The document with its defaults filled in, or None when ``doc.problems`` has any."""
    if doc.problems:
        return None
    data = doc.data
    if not isinstance(data, dict):
        doc.problem((), "the document must be a mapping with the keys " + ", ".join(SECTIONS))
        return None
    for key in data:
        if key not in SECTIONS:
            doc.problem((key,), f"unknown section {key!r} (expected one of "
                                f"{', '.join(SECTIONS)})")
    clean: dict[str, Any] = {"study": _check_study(doc, data.get("study")),
                             "strata": _check_strata(doc, data.get("strata")),
                             "arms": _check_arms(doc, data.get("arms"))}
    if not doc.problems:
        _check_stratum_keys(doc, clean)
    for section in SECTION_OWNERS:
        if section in data:
            clean[section] = _check_section(doc, section, data[section])
    if not doc.problems and clean.get("schedule"):
        _check_schedule_strata(doc, clean)
    return None if doc.problems else clean


def _check_study(doc: Document, value: Any) -> dict[str, Any]:
    where: Where = ("study",)
    if not isinstance(value, dict):
        doc.problem(where, "study: give a mapping with at least slug and name")
        return {}
    for key in value:
        if key not in STUDY_DEFAULTS:
            doc.problem((*where, key), f"study: unknown key {key!r}")
    out = {key: value.get(key, default) for key, default in STUDY_DEFAULTS.items()}
    checks: dict[str, Callable[[Document, Where, Any], None]] = {
        "slug": _pattern(SLUG, "lower-case letters, digits and dashes, at most 40"),
        "name": _text_check(120), "code_prefix": _pattern(CODE_PREFIX, "1 to 10 capital "
                                                                        "letters or digits"),
        "timezone": _check_timezone, "contact": _text_check(2000, required=False),
        "sites": _check_levels, "randomise_on_baseline": _check_bool,
        "consent_version": _check_consent, "lost_after_days": _int_check(1, 365),
    }
    for key, checker in checks.items():
        checker(doc, (*where, key), out[key])
    if isinstance(out["sites"], list):
        out["sites"] = [str(s).strip() for s in out["sites"]]
    return out


def _label(where: Where) -> str:
    return ".".join(str(part) for part in where)


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[Document, Where, Any], None]:
    def checker(doc: Document, where: Where, value: Any) -> None:
        if not isinstance(value, str) or not pattern.match(value):
            doc.problem(where, f"{_label(where)}: use {what}")
    return checker


def _text_check(limit: int, *, required: bool = True) -> Callable[[Document, Where, Any], None]:
    def checker(doc: Document, where: Where, value: Any) -> None:
        if not isinstance(value, str):
            doc.problem(where, f"{_label(where)}: give text")
        elif required and not value.strip():
            doc.problem(where, f"{_label(where)}: must not be empty")
        elif len(value) > limit:
            doc.problem(where, f"{_label(where)}: at most {limit} characters")
    return checker


def _int_check(low: int, high: int) -> Callable[[Document, Where, Any], None]:
    def checker(doc: Document, where: Where, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            doc.problem(where, f"{_label(where)}: give a whole number from {low} to {high}")
    return checker


def _check_bool(doc: Document, where: Where, value: Any) -> None:
    if not isinstance(value, bool):
        doc.problem(where, f"{_label(where)}: give true or false")


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_timezone(doc: Document, where: Where, value: Any) -> None:
    if not isinstance(value, str) or value not in _zones():
        doc.problem(where, f"{_label(where)}: {value!r} is not a time zone name such as "
                           "Europe/London")


def _check_consent(doc: Document, where: Where, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        doc.problem(where, f"{_label(where)}: give the version label as text in quotes, "
                           'e.g. "1.0"')
        return
    if consent_by_label(value) is None:
        published = ", ".join(published_consent_labels()) or "none yet"
        doc.problem(where, f"{_label(where)}: no published consent version {value!r} "
                           f"(published: {published})")


def consent_by_label(label: str) -> ConsentVersion | None:
    return db.session.scalar(select(ConsentVersion).where(ConsentVersion.version == label))


def published_consent_labels() -> list[str]:
    return list(db.session.scalars(select(ConsentVersion.version)
                                   .order_by(ConsentVersion.published_at.desc(),
                                             ConsentVersion.id.desc())))


def _check_levels(doc: Document, where: Where, value: Any) -> None:
    """A list of distinct, non-empty names (sites, or a factor's levels)."""
    if not isinstance(value, list):
        doc.problem(where, f"{_label(where)}: give a list")
        return
    seen: set[str] = set()
    for index, item in enumerate(value):
        at = (*where, index)
        if not isinstance(item, str):
            doc.problem(at, f"{_label(where)}: {item!r} must be text (put it in quotes)")
        elif not item.strip() or len(item.strip()) > MAX_LEVEL:
            doc.problem(at, f"{_label(where)}: names must have 1 to {MAX_LEVEL} characters")
        elif item.strip() in seen:
            doc.problem(at, f"{_label(where)}: {item.strip()!r} is listed twice")
        else:
            seen.add(item.strip())


def _check_strata(doc: Document, value: Any) -> list[dict[str, Any]]:
    if value is None:
        value = []
    if not isinstance(value, list):
        doc.problem(("strata",), "strata: give a list of factors, e.g. '- factor: site'")
        return []
    out, seen = [], set()
    for index, entry in enumerate(value):
        where: Where = ("strata", index)
        if isinstance(entry, str):
            entry = {"factor": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("factor"), str) \
                or not FACTOR.match(entry["factor"]):
            doc.problem(where, "strata: each factor needs a name (factor:) of lower-case "
                               "letters, digits and underscores")
            continue
        name = entry["factor"]
        extra = set(entry) - {"factor", "levels"}
        if extra:
            doc.problem((*where, sorted(extra)[0]), f"strata: unknown key {sorted(extra)[0]!r}")
        if name in seen:
            doc.problem(where, f"strata: {name} is listed twice")
        seen.add(name)
        out.append(_check_factor(doc, where, entry))
    return out


def _check_factor(doc: Document, where: Where, entry: dict[str, Any]) -> dict[str, Any]:
    name = entry["factor"]
    if name == "site":
        if "levels" in entry:
            doc.problem((*where, "levels"), "strata: the levels of site are the study's "
                                            "sites (study.sites); remove levels here")
        return {"factor": "site"}
    levels = entry.get("levels", [])
    _check_levels(doc, (*where, "levels"), levels)
    return {"factor": name, "levels": [str(v).strip() for v in levels]
            if isinstance(levels, list) else []}


def _check_arms(doc: Document, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        doc.problem(("arms",), "arms: give a list with at least one arm")
        return []
    out, seen = [], set()
    for index, arm in enumerate(value):
        where: Where = ("arms", index)
        if not isinstance(arm, dict):
            doc.problem(where, f"arms: arm {index + 1} must be a mapping with "
                               f"{', '.join(ARM_KEYS)}")
            continue
        for key in arm:
            if key not in ARM_KEYS:
                doc.problem((*where, key), f"arms: unknown key {key!r}")
        code = arm.get("code")
        _pattern(ARM_CODE, "a code of lower-case letters, digits, _ or -, at most 30")(
            doc, (*where, "code"), code)
        if isinstance(code, str) and code in seen:
            doc.problem((*where, "code"), f"arms: two arms have the code {code!r}")
        seen.add(code)
        _text_check(120)(doc, (*where, "name"), arm.get("name"))
        _text_check(2000, required=False)(doc, (*where, "description"),
                                          arm.get("description", ""))
        _int_check(1, MAX_RATIO)(doc, (*where, "ratio"), arm.get("ratio"))
        out.append({"code": code, "name": arm.get("name"),
                    "description": arm.get("description", ""), "ratio": arm.get("ratio"),
                    "features": _check_features(doc, (*where, "features"),
                                                arm.get("features"))})
    return out


def _check_features(doc: Document, where: Where, value: Any) -> dict[str, bool]:
    if not isinstance(value, dict):
        doc.problem(where, f"{_label(where)}: give each feature ({', '.join(FEATURES)}) "
                           "as true or false")
        return {}
    for key in value:
        if key not in FEATURES:
            doc.problem((*where, key), f"{_label(where)}: unknown feature {key!r} (known: "
                                       f"{', '.join(FEATURES)})")
    for name in FEATURES:
        if name not in value:
            doc.problem(where, f"{_label(where)}: say whether {name} is on (true or false)")
        else:
            _check_bool(doc, (*where, name), value[name])
    return {name: value.get(name) for name in FEATURES}


def _check_stratum_keys(doc: Document, clean: dict[str, Any]) -> None:
    """The longest stratum key must fit the allocation table's column."""
    limit = AllocationSlot.__table__.c.stratum.type.length
    longest = {}
    for factor in clean["strata"]:
        levels = clean["study"]["sites"] if factor["factor"] == "site" else factor["levels"]
        longest[factor["factor"]] = max(levels, key=len, default="")
    key = json.dumps(longest, ensure_ascii=False, separators=(",", ":"))
    if len(key) > limit:
        doc.problem(("strata",), "strata: the factor and level names are too long together "
                                 "to record a stratum; use shorter names")


def _check_schedule_strata(doc: Document, clean: dict[str, Any]) -> None:
    """A baseline score that decides a stratum must name one of the study's factors and
    give levels of it."""
    levels = {f["factor"]: f["levels"] for f in clean["strata"] if f["factor"] != "site"}
    for index, timepoint in enumerate(clean["schedule"]):
        for factor, rule in (timepoint.get("strata") or {}).items():
            where: Where = ("schedule", index, "strata", factor)
            if factor not in levels:
                doc.problem(where, f"schedule: {timepoint['key']} works out the stratum "
                                   f"{factor}, which is not one of the study's strata")
                continue
            unknown = [rule[k] for k in ("at_or_above", "below")
                       if k in rule and rule[k] not in levels[factor]]
            if unknown:
                doc.problem(where, f"schedule: {timepoint['key']} gives {factor} the level "
                                   f"{unknown[0]!r}, which is not one of its levels "
                                   f"({', '.join(levels[factor])})")


def _check_section(doc: Document, section: str, value: Any) -> Any:
    owner = section_api(section)
    if value is None and section == "sms_protocol":
        return None  # no protocol (what a study without one exports)
    if owner is None:
        doc.problem((section,), f"{section}: this installation cannot set it up yet; "
                                "remove the section")
        return None
    checker = getattr(owner, f"check_{SECTION_FUNCTIONS[section]}")
    for message in checker(value):
        doc.problem((section,), f"{section}: {message}")
    return value


# --- the change guard ------------------------------------------------------------------

def is_locked(study: Study) -> bool:
    """Enrolment has opened, or someone has been given an arm: the guard applies."""
    if study.enrolment_opened_at is not None:
        return True
    return db.session.scalar(select(Participant.id).where(
        Participant.study_id == study.id, Participant.arm_id.is_not(None)).limit(1)) is not None


def used_levels(study: Study) -> dict[str, set[str]]:
    """Each factor's levels that have allocation slots (reads stratum keys only, never
    which arm a slot holds)."""
    used: dict[str, set[str]] = {}
    for key in db.session.scalars(select(AllocationSlot.stratum).distinct()
                                  .where(AllocationSlot.study_id == study.id)):
        for factor, value in json.loads(key).items():
            used.setdefault(factor, set()).add(value)
    return used


WHY_ALLOCATION = "the allocation sequence is made from the arms, their ratios and the strata"
WHY_FEATURE = ("switching a feature changes the intervention this arm's participants receive "
               "in the middle of the trial; confirm it, and record it as a protocol amendment")
WHY_LOST = ("changes who counts as lost to follow-up in the trial flow; confirm it, and record "
            "it as a protocol amendment")


def plan(study: Study, clean: dict[str, Any]) -> Plan:
    """Every difference between the study and a checked document, each with its level."""
    current = study_data(study)
    locked = is_locked(study)
    used = used_levels(study) if locked else {}
    changes = [*_study_changes(current["study"], clean["study"], locked, used),
               *_strata_changes(current["strata"], clean["strata"], locked, used),
               *_arm_changes(current["arms"], clean["arms"], locked)]
    for section in SECTION_OWNERS:
        if section in clean and clean[section] != current.get(section):
            changes.append(_section_change(study, section, clean[section]))
    return Plan([_slug_taken(study, c) for c in changes], locked)


def _slug_taken(study: Study, change: Change) -> Change:
    if change.field != "study.slug" or db.session.scalar(
            select(Study.id).where(Study.slug == change.after, Study.id != study.id)) is None:
        return change
    return Change(change.field, change.before, change.after, REFUSED,
                  f"study.slug: another study already uses {change.after!r}", change.where)


def _study_changes(before: dict[str, Any], after: dict[str, Any], locked: bool,
                   used: dict[str, set[str]]) -> list[Change]:
    changes = []
    for key in STUDY_DEFAULTS:
        if key == "sites" or before[key] == after[key]:
            continue
        level = CONFIRM if locked and key == "lost_after_days" else OK
        changes.append(Change(f"study.{key}", before[key], after[key], level,
                              f"study.lost_after_days: {WHY_LOST}" if level == CONFIRM else "",
                              ("study", key)))
    changes += _level_changes("study.sites", "site", before["sites"], after["sites"], locked,
                              used, ("study", "sites"))
    return changes


def _level_changes(name: str, factor: str, before: list[str], after: list[str], locked: bool,
                   used: dict[str, set[str]], where: Where) -> list[Change]:
    changes = []
    for value in before:
        if value in after:
            continue
        if locked and value in used.get(factor, set()):
            changes.append(Change(name, value, None, REFUSED,
                                  f"{name}: {value!r} cannot be removed or renamed: it is a "
                                  f"stratum with allocation slots ({WHY_ALLOCATION})", where))
        else:
            changes.append(Change(name, value, None, where=where))
    changes += [Change(name, None, value, where=where) for value in after if value not in before]
    return changes


def _strata_changes(before: list[dict[str, Any]], after: list[dict[str, Any]], locked: bool,
                    used: dict[str, set[str]]) -> list[Change]:
    names_before = [f["factor"] for f in before]
    names_after = [f["factor"] for f in after]
    if names_before != names_after:
        reason = (f"strata: the stratification factors cannot change once enrolment has "
                  f"opened ({WHY_ALLOCATION})") if locked else ""
        return [Change("strata", names_before, names_after, REFUSED if locked else OK, reason,
                       ("strata",))]
    changes = []
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        if old["factor"] != "site" and old["levels"] != new["levels"]:
            changes += _level_changes(f"strata.{old['factor']}", old["factor"], old["levels"],
                                      new["levels"], locked, used, ("strata", index, "levels"))
    return changes


def _arm_changes(before: list[dict[str, Any]], after: list[dict[str, Any]],
                 locked: bool) -> list[Change]:
    old = {arm["code"]: arm for arm in before}
    index = {arm["code"]: i for i, arm in enumerate(after)}
    changes = []
    for code in [arm["code"] for arm in before if arm["code"] not in index]:
        changes.append(Change(f"arms.{code}", code, None, REFUSED if locked else OK,
                              f"arms: arm {code!r} cannot be removed or have its code changed "
                              f"once enrolment has opened ({WHY_ALLOCATION})" if locked else "",
                              ("arms",)))
    for arm in after:
        code = arm["code"]
        if code not in old:
            changes.append(Change(f"arms.{code}", None, code, REFUSED if locked else OK,
                                  f"arms: arm {code!r} cannot be added once enrolment has opened "
                                  f"({WHY_ALLOCATION})" if locked else "",
                                  ("arms", index[code], "code")))
        else:
            changes += _one_arm_changes(old[code], arm, locked, ("arms", index[code]))
    return changes


def _one_arm_changes(old: dict[str, Any], new: dict[str, Any], locked: bool,
                     where: Where) -> list[Change]:
    prefix = f"arms.{old['code']}"
    changes = [Change(f"{prefix}.{key}", old[key], new[key], where=(*where, key))
               for key in ("name", "description") if old[key] != new[key]]
    if old["ratio"] != new["ratio"]:
        changes.append(Change(f"{prefix}.ratio", old["ratio"], new["ratio"],
                              REFUSED if locked else OK,
                              f"{prefix}.ratio: the allocation ratio cannot change once "
                              f"enrolment has opened ({WHY_ALLOCATION})" if locked else "",
                              (*where, "ratio")))
    for name in FEATURES:
        if old["features"][name] != new["features"][name]:
            changes.append(Change(f"{prefix}.features.{name}", old["features"][name],
                                  new["features"][name], CONFIRM if locked else OK,
                                  f"{prefix}.features.{name}: {WHY_FEATURE}" if locked else "",
                                  (*where, "features", name)))
    return changes


def _section_change(study: Study, section: str, value: Any) -> Change:
    if value is None:
        return Change(section, None, None, REFUSED, f"{section}: the saved protocol cannot be "
                      "removed by an import; leave the section out to keep it as it is",
                      (section,))
    # the owner decides, even before enrolment opens: e.g. a timepoint that already has
    # (baseline) answers keeps its instruments
    owner = section_api(section)
    refusal = getattr(owner, f"{SECTION_FUNCTIONS[section]}_change_refusal")(study, value)
    if refusal:
        return Change(section, None, None, REFUSED, f"{section}: {refusal}", (section,))
    return Change(section, None, None, where=(section,))


# --- saving -----------------------------------------------------------------------------

def _require_researcher(actor: User | None) -> None:
    """``None`` is the command line (someone with the server's shell)."""
    if actor is not None and actor.role != Role.RESEARCHER:
        raise PermissionDenied("only researchers change the study set-up")


def preview(study: Study, doc: Document) -> Plan:
    """Check a document and plan its changes without writing anything (the dry run).
    Raises ``SetupError`` when it has problems."""
    clean = check(doc)
    if clean is None:
        raise SetupError(doc.problems)
    return plan(study, clean)


def save(study: Study, doc: Document, *, actor: User | None, confirmed: bool = False,
         via: str = "page") -> Plan:
    """Apply a document to the study. Refused changes raise ``SetupError`` (every reason,
    with its line); changes that need confirming raise ``NeedsConfirmation`` unless
    ``confirmed``. Nothing is written when nothing differs. Flushes; the caller commits."""
    _require_researcher(actor)
    db.session.flush()
    db.session.refresh(study, with_for_update=True)  # against a concurrent open or save
    clean = check(doc)
    if clean is None:
        raise SetupError(doc.problems)
    the_plan = plan(study, clean)
    if the_plan.refused:
        raise SetupError(the_plan.problems(doc.lines))
    if the_plan.to_confirm and not confirmed:
        raise NeedsConfirmation([Problem(_line_of(doc.lines, c.where), c.reason, c.where)
                                 for c in the_plan.to_confirm])
    if not the_plan.changes:
        return the_plan
    _apply(study, clean, the_plan, actor=actor)
    audit.record("study.setup_changed", actor=actor, target=study, via=via,
                 locked=the_plan.locked, confirmed=bool(the_plan.to_confirm),
                 changes=[c.for_audit() for c in the_plan.changes])
    return the_plan


def _apply(study: Study, clean: dict[str, Any], the_plan: Plan, *, actor: User | None) -> None:
    info = clean["study"]
    for key in ("slug", "name", "code_prefix", "timezone", "contact", "randomise_on_baseline",
                "lost_after_days"):
        setattr(study, key, info[key])
    consent = consent_by_label(info["consent_version"]) if info["consent_version"] else None
    study.consent_version_id = consent.id if consent else None
    study.sites = list(info["sites"])
    study.strata = [f["factor"] for f in clean["strata"]]
    study.stratum_levels = {f["factor"]: list(f["levels"]) for f in clean["strata"]
                            if f["factor"] != "site"}
    _apply_arms(study, clean["arms"])
    changed = {c.field for c in the_plan.changes}
    for section in SECTION_OWNERS:
        if section in changed:
            owner = section_api(section)
            try:
                getattr(owner, f"apply_{SECTION_FUNCTIONS[section]}")(study, clean[section],
                                                                      actor=actor)
            except ValueError as exc:  # the owner's own check or guard, should ours miss one
                reasons = getattr(exc, "problems", None) or [str(exc)]
                raise SetupError([Problem(None, f"{section}: {reason}", (section,))
                                  for reason in reasons]) from exc
    db.session.flush()
    db.session.expire(study, ["arms"])


def _apply_arms(study: Study, arms: list[dict[str, Any]]) -> None:
    db.session.expire(study, ["arms"])
    existing = {arm.code: arm for arm in _arms(study)}
    wanted = {arm["code"] for arm in arms}
    for code, arm in existing.items():
        if code not in wanted:  # the guard refuses this once anyone is allocated
            db.session.delete(arm)
    db.session.flush()
    for values in arms:
        arm = existing.get(values["code"])
        if arm is None:
            arm = Arm(study_id=study.id, code=values["code"])
            db.session.add(arm)
        arm.name = values["name"]
        arm.description = values["description"] or ""
        arm.ratio = values["ratio"]
        arm.features = dict(values["features"])
