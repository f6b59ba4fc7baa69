"""A study's SMS symptom-prompt protocol as data: read, check, store, export.

The protocol is YAML (the format is ``outcomes/prompts/README.md``; the shipped default
is ``default.yaml`` next to this file). ``read_protocol(data)`` turns a checked mapping
into frozen dataclasses the planner and the reply handler use; ``check_protocol(data)``
lists every problem instead of stopping at the first; ``check_text(text)`` does the same
for YAML typed on the researcher's page and puts the line number in front of each
problem. Each saved version is kept (``SmsProtocolVersion``) with who saved it and when.

Transaction contract: ``apply_protocol`` and ``save_protocol_text`` add a row, audit and
flush; the caller commits. The other functions only read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from core import audit
from core.extensions import db
from core.models import User
from outcomes import instruments
from outcomes.prompts.models import SmsProtocolVersion

DEFAULT_PATH = Path(__file__).resolve().parent / "default.yaml"
#: never text before or after these local times, whatever the protocol or the participant says
QUIET_START = time(8, 0)
QUIET_END = time(21, 0)
ANSWER_TYPES = ("scale", "yesno", "digits")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SETS = {"daily": tuple(range(7)), "weekdays": tuple(range(5)), "weekends": (5, 6)}
#: two SMS segments of plain text
MAX_TEXT = 306
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
STEP_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*")
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
DEFAULT_LATE_REPLY = ("Thanks. That question had already closed, so your answer is kept "
                      "but not counted. Look out for the next one.")

TOP_KEYS = frozenset({"name", "duration_days", "late_reply", "prompts"})
PROMPT_KEYS = frozenset({"key", "label", "text", "days", "weekday", "at", "between",
                         "expire_minutes", "reminder", "answer", "help", "feedback"})
ANSWER_KEYS = frozenset({"type", "min", "max", "count", "instrument"})
REMINDER_KEYS = frozenset({"after_minutes", "text"})
RULE_KEYS = frozenset({"when", "text", "step"})
WHEN_KEYS = frozenset({"at_least", "at_most", "equals"})

Where = tuple[str | int, ...]


class ProtocolError(ValueError):
    """A protocol that cannot be saved; ``problems`` lists why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.field = "text"
        super().__init__("; ".join(problems))


# --------------------------------------------------------------------------- the shapes

@dataclass(frozen=True)
class Answer:
    type: str
    min: int = 0
    max: int = 1
    #: how many digits a ``digits`` answer has
    count: int = 1
    #: scored with ``outcomes.scoring`` when set (``digits`` only)
    instrument: str | None = None


@dataclass(frozen=True)
class Reminder:
    after_minutes: int
    text: str


@dataclass(frozen=True)
class FeedbackRule:
    text: str
    at_least: float | None = None
    at_most: float | None = None
    equals: bool | int | None = None
    #: "module-key/step-id": a link to that step is added to the text
    step: str | None = None

    def matches(self, value: float | bool) -> bool:
        if self.equals is not None and value != self.equals:
            return False
        if self.at_least is not None and value < self.at_least:
            return False
        return self.at_most is None or value <= self.at_most


@dataclass(frozen=True)
class Prompt:
    key: str
    label: str
    text: str
    #: weekday numbers (Monday 0) on which the prompt is sent
    weekdays: tuple[int, ...]
    #: a fixed local time, or None when ``window`` is used
    at: time | None
    #: (start, end): a reproducible random local time in this window
    window: tuple[time, time] | None
    expire_minutes: int
    reminder: Reminder | None
    answer: Answer
    help: str
    feedback: tuple[FeedbackRule, ...]


@dataclass(frozen=True)
class Protocol:
    name: str
    #: prompts stop this many days after randomisation (None: until participation ends)
    duration_days: int | None
    late_reply: str
    prompts: tuple[Prompt, ...]

    def prompt(self, key: str) -> Prompt | None:
        return next((p for p in self.prompts if p.key == key), None)


# --------------------------------------------------------------------------- checking

class _Checker:
    """Collects (where, message) problems while reading a protocol mapping."""

    def __init__(self) -> None:
        self.problems: list[tuple[Where, str]] = []

    def report(self, where: Where, message: str) -> None:
        self.problems.append((where, message))

    def keys(self, data: dict, allowed: frozenset[str], where: Where, what: str) -> None:
        for key in data:
            if key not in allowed:
                self.report((*where, str(key)), f"unknown key '{key}' in {what} (allowed: "
                                                f"{', '.join(sorted(allowed))})")

    def text(self, data: dict, key: str, where: Where, *, required: bool = True,
             limit: int = MAX_TEXT) -> str:
        value = data.get(key)
        if value is None or value == "":
            if required:
                self.report(where, f"missing {key}")
            return ""
        if not isinstance(value, str):
            self.report((*where, key), f"{key} must be text (it is {value!r}); put it in quotes")
            return ""
        if len(value.strip()) > limit:
            self.report((*where, key), f"{key} is too long ({len(value.strip())} characters, "
                                       f"at most {limit})")
        return value.strip()

    def whole(self, data: dict, key: str, where: Where, low: int, high: int, *,
              required: bool = True) -> int | None:
        value = data.get(key)
        if value is None:
            if required:
                self.report(where, f"missing {key}")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.report((*where, key), f"{key} must be a whole number from {low} to {high} "
                                       f"(it is {value!r})")
            return None
        return value

    def clock(self, value: Any, where: Where, name: str) -> time | None:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 09:00 as the base-60 number 540
            self.report(where, "write the time in quotes, e.g. \"09:00\" (without quotes YAML "
                               "reads 17:00 as a number)")
            return None
        match = _TIME.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            self.report(where, f"{name} must be a 24-hour time such as \"09:00\" "
                               f"(it is {value!r})")
            return None
        moment = time(int(match.group(1)), int(match.group(2)))
        if not QUIET_START <= moment <= QUIET_END:
            self.report(where, f"{name} {value} is outside the hours texts may be sent "
                               f"({QUIET_START:%H:%M}-{QUIET_END:%H:%M} local time)")
            return None
        return moment


def _read_days(check: _Checker, data: dict, where: Where) -> tuple[int, ...]:
    days = data.get("days", "daily")
    if days == "weekly":
        weekday = data.get("weekday")
        if weekday not in DAY_NAMES:
            check.report((*where, "weekday") if "weekday" in data else where,
                         f"days: weekly needs weekday: one of {', '.join(DAY_NAMES)}")
            return ()
        return (DAY_NAMES.index(weekday),)
    if "weekday" in data:
        check.report((*where, "weekday"), "weekday is only used with days: weekly")
    if isinstance(days, str) and days in DAY_SETS:
        return DAY_SETS[days]
    if isinstance(days, list) and days and all(d in DAY_NAMES for d in days):
        return tuple(sorted({DAY_NAMES.index(d) for d in days}))
    check.report((*where, "days"), "days must be daily, weekdays, weekends, weekly (with "
                                   f"weekday) or a list of day names ({', '.join(DAY_NAMES)}); "
                                   f"it is {days!r}")
    return ()


def _read_timing(check: _Checker, data: dict, where: Where
                 ) -> tuple[time | None, tuple[time, time] | None]:
    has_at, has_between = "at" in data, "between" in data
    if has_at == has_between:
        check.report(where, "give either at (a fixed time) or between (a window for a random "
                            "time), not both and not neither")
        return None, None
    if has_at:
        return check.clock(data["at"], (*where, "at"), "at"), None
    window = data["between"]
    if not isinstance(window, list) or len(window) != 2:
        check.report((*where, "between"), "between must be two times, e.g. [\"10:00\", \"16:00\"]")
        return None, None
    start = check.clock(window[0], (*where, "between"), "between start")
    end = check.clock(window[1], (*where, "between"), "between end")
    if start is not None and end is not None and start >= end:
        check.report((*where, "between"), "the window must end after it starts")
        return None, None
    return None, (start, end) if start is not None and end is not None else None


def _read_answer(check: _Checker, data: Any, where: Where) -> Answer | None:
    if not isinstance(data, dict):
        check.report(where, "missing answer (a mapping with type: scale, yesno or digits)")
        return None
    check.keys(data, ANSWER_KEYS, where, "answer")
    kind = data.get("type")
    if kind not in ANSWER_TYPES:
        check.report((*where, "type"), f"answer type must be one of {', '.join(ANSWER_TYPES)} "
                                       f"(it is {kind!r})")
        return None
    if kind == "yesno":
        return Answer("yesno", 0, 1)
    low = check.whole(data, "min", where, 0, 100)
    high = check.whole(data, "max", where, 0, 100)
    if low is not None and high is not None and low >= high:
        check.report((*where, "max"), "max must be greater than min")
        return None
    if kind == "scale":
        return Answer("scale", low, high) if low is not None and high is not None else None
    if high is not None and high > 9:
        check.report((*where, "max"), "a digits answer has one digit per item: max is at most 9")
        return None
    count = check.whole(data, "count", where, 2, 9)
    instrument = _read_instrument(check, data.get("instrument"), where, low, high, count)
    if None in (low, high, count) or instrument is False:
        return None
    return Answer("digits", low, high, count, instrument or None)  # type: ignore[arg-type]


def _read_instrument(check: _Checker, name: Any, where: Where, low: int | None,
                     high: int | None, count: int | None) -> str | bool:
    """The instrument id ("" for none), or False with a problem."""
    if name is None:
        return ""
    try:
        found = instruments.get(str(name))
    except instruments.UnknownInstrument as exc:
        check.report((*where, "instrument"), str(exc))
        return False
    if (low, high, count) != (found.min_value, found.max_value, len(found.items)):
        check.report((*where, "instrument"),
                     f"{found.short_name} has {len(found.items)} items answered "
                     f"{found.min_value}-{found.max_value}: use count: {len(found.items)}, "
                     f"min: {found.min_value}, max: {found.max_value}")
        return False
    return found.id


def _read_reminder(check: _Checker, data: Any, where: Where, expire: int | None
                   ) -> Reminder | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        check.report(where, "reminder must be a mapping with after_minutes and text")
        return None
    check.keys(data, REMINDER_KEYS, where, "reminder")
    after = check.whole(data, "after_minutes", where, 5, 1440)
    text = check.text(data, "text", where)
    if after is not None and expire is not None and after >= expire:
        check.report((*where, "after_minutes"), f"the reminder must come before the prompt "
                                                f"expires (after {expire} minutes)")
        return None
    return Reminder(after, text) if after is not None and text else None


def _number(check: _Checker, value: Any, where: Where) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        check.report(where, f"must be a number (it is {value!r})")
        return None
    return float(value)


def _read_when(check: _Checker, when: Any, where: Where, answer: Answer) -> dict[str, Any] | None:
    if when is None:
        return {}
    if not isinstance(when, dict) or not when:
        check.report(where, "when must be a mapping with at_least, at_most or equals")
        return None
    check.keys(when, WHEN_KEYS, where, "when")
    found: dict[str, Any] = {}
    if answer.type == "yesno":
        if set(when) - {"equals"} or when.get("equals") not in (True, False, "yes", "no"):
            check.report(where, "a yes/no answer's rule is when: {equals: yes} or "
                                "when: {equals: no}")
            return None
        found["equals"] = when["equals"] in (True, "yes")
        return found
    for key in ("at_least", "at_most", "equals"):
        if key in when:
            found[key] = _number(check, when[key], (*where, key))
    return None if None in found.values() else found


def _read_feedback(check: _Checker, data: Any, where: Where, answer: Answer | None
                   ) -> tuple[FeedbackRule, ...]:
    if data is None or answer is None:
        return ()
    if not isinstance(data, list):
        check.report(where, "feedback must be a list of rules (when, text, step)")
        return ()
    rules = []
    for index, rule in enumerate(data):
        at = (*where, index)
        if not isinstance(rule, dict):
            check.report(at, "a feedback rule is a mapping with when, text and step")
            continue
        check.keys(rule, RULE_KEYS, at, "a feedback rule")
        when = _read_when(check, rule.get("when"), (*at, "when"), answer)
        text = check.text(rule, "text", at, limit=200)
        step = rule.get("step")
        if step is not None and not (isinstance(step, str) and STEP_PATTERN.fullmatch(step)):
            check.report((*at, "step"), "step must be module-id/step-id, e.g. "
                                        "small-steps-to-reach-out/ss-take-the-first-step")
            step = None
        if when is not None and text:
            rules.append(FeedbackRule(text=text, step=step, **when))
    return tuple(rules)


def default_help(answer: Answer) -> str:
    if answer.type == "yesno":
        return "Sorry, we could not read that. Please reply Y for yes or N for no."
    if answer.type == "scale":
        return (f"Sorry, we could not read that. Please reply with one number from "
                f"{answer.min} to {answer.max}.")
    example = " ".join([str(answer.min)] * answer.count)
    return (f"Sorry, we could not read that. Please reply with {answer.count} numbers, each "
            f"from {answer.min} to {answer.max}, e.g. {example}.")


def _read_prompt(check: _Checker, data: Any, where: Where) -> Prompt | None:
    if not isinstance(data, dict):
        check.report(where, "a prompt is a mapping (key, text, days, at or between, ...)")
        return None
    check.keys(data, PROMPT_KEYS, where, "a prompt")
    key = data.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        check.report((*where, "key") if "key" in data else where,
                     "key must be lower-case letters, digits and _ (at most 40), starting "
                     f"with a letter (it is {key!r})")
    text = check.text(data, "text", where)
    weekdays = _read_days(check, data, where)
    at, window = _read_timing(check, data, where)
    expire = check.whole(data, "expire_minutes", where, 5, 1440)
    reminder = _read_reminder(check, data.get("reminder"), (*where, "reminder"), expire)
    answer = _read_answer(check, data.get("answer"), (*where, "answer"))
    feedback = _read_feedback(check, data.get("feedback"), (*where, "feedback"), answer)
    label = check.text(data, "label", where, required=False, limit=80) or str(key)
    help_text = check.text(data, "help", where, required=False)
    if not (isinstance(key, str) and KEY_PATTERN.fullmatch(key)) or not text or not weekdays \
            or (at is None and window is None) or expire is None or answer is None:
        return None
    return Prompt(key, label, text, weekdays, at, window, expire, reminder, answer,
                  help_text or default_help(answer), feedback)


def _read(data: Any) -> tuple[Protocol | None, list[tuple[Where, str]]]:
    check = _Checker()
    if not isinstance(data, dict):
        check.report((), "the protocol is a mapping with name, duration_days and prompts")
        return None, check.problems
    check.keys(data, TOP_KEYS, (), "the protocol")
    name = check.text(data, "name", (), required=False, limit=120) or "SMS prompts"
    duration = check.whole(data, "duration_days", (), 1, 3650, required=False)
    late = data.get("late_reply", DEFAULT_LATE_REPLY)
    if late is None:
        late = ""
    if not isinstance(late, str):
        check.report(("late_reply",), "late_reply must be text (\"\" for no reply)")
    raw = data.get("prompts")
    if not isinstance(raw, list) or not raw:
        check.report(("prompts",) if "prompts" in data else (), "prompts must be a list of "
                                                                "one or more prompts")
        raw = []
    prompts = [_read_prompt(check, item, ("prompts", index)) for index, item in enumerate(raw)]
    seen: set[str] = set()
    for index, prompt in enumerate(prompts):
        if prompt is not None and prompt.key in seen:
            check.report(("prompts", index, "key"), f"key '{prompt.key}' is used twice")
        if prompt is not None:
            seen.add(prompt.key)
    if check.problems:
        return None, check.problems
    return Protocol(name, duration, late.strip() if isinstance(late, str) else "",
                    tuple(p for p in prompts if p is not None)), []


def _label(where: Where) -> str:
    text = ""
    for part in where:
        text += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text.replace("prompts[", "prompt [")


def check_protocol(data: Any) -> list[str]:
    """Every problem of a protocol mapping, as sentences (empty when it is fine)."""
    _, problems = _read(data)
    return [f"{_label(where)}: {message}" if where else message for where, message in problems]


def read_protocol(data: Any) -> Protocol:
    """The protocol of a mapping; ``ProtocolError`` when it has problems."""
    protocol, _ = _read(data)
    if protocol is None:
        raise ProtocolError(check_protocol(data))
    return protocol


# --------------------------------------------------------------------------- YAML text

def _lines(node: yaml.Node, where: Where, into: dict[Where, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            into[(*where, str(key_node.value))] = key_node.start_mark.line + 1
            _lines(value_node, (*where, str(key_node.value)), into)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            into[(*where, index)] = item.start_mark.line + 1
            _lines(item, (*where, index), into)


def _line_of(lines: dict[Where, int], where: Where) -> int:
    while where:
        if where in lines:
            return lines[where]
        where = where[:-1]
    return 1


def check_text(text: str) -> tuple[Any, list[str]]:
    """Parse YAML typed by a researcher: (data, problems), each problem starting with its
    line number; data is None when the YAML itself cannot be read."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return None, [f"line {mark.line + 1 if mark else 1}: YAML error: "
                      f"{exc.problem or exc.context or 'cannot be read'}"]
    except yaml.YAMLError as exc:
        return None, [f"line 1: YAML error: {exc}"]
    lines: dict[Where, int] = {}
    if node is not None:
        _lines(node, (), lines)
    _, problems = _read(data)
    located = sorted(((_line_of(lines, where), where, message) for where, message in problems),
                     key=lambda found: found[0])
    return data, [f"line {line}: {_label(where) + ': ' if where else ''}{message}"
                  for line, where, message in located]


def default_text() -> str:
    return DEFAULT_PATH.read_text(encoding="utf-8")


def default_data() -> dict[str, Any]:
    return yaml.safe_load(default_text())


# --------------------------------------------------------------------------- stored versions

def current_version(study: Any) -> SmsProtocolVersion | None:
    return db.session.scalar(select(SmsProtocolVersion)
                             .where(SmsProtocolVersion.study_id == study.id)
                             .order_by(SmsProtocolVersion.version.desc()).limit(1))


def versions_of(study: Any) -> list[SmsProtocolVersion]:
    return list(db.session.scalars(select(SmsProtocolVersion)
                                   .where(SmsProtocolVersion.study_id == study.id)
                                   .order_by(SmsProtocolVersion.version.desc())))


def export_protocol(study: Any) -> dict[str, Any] | None:
    """The study's current protocol as a mapping (what ``apply_protocol`` takes), or None."""
    row = current_version(study)
    return dict(row.data) if row is not None else None


def protocol_for(study_id: int) -> tuple[SmsProtocolVersion, Protocol] | None:
    """The current stored version of a study and its protocol, or None."""
    row = db.session.scalar(select(SmsProtocolVersion)
                            .where(SmsProtocolVersion.study_id == study_id)
                            .order_by(SmsProtocolVersion.version.desc()).limit(1))
    return (row, read_protocol(row.data)) if row is not None else None


def _measures(protocol: Protocol) -> dict[str, Answer]:
    return {prompt.key: prompt.answer for prompt in protocol.prompts}


def protocol_change_refusal(study: Any, data: Any) -> str | None:
    """Why this change cannot be made now, or None.

    Once enrolment has opened, the prompts are outcome measures: a prompt may not be
    removed or renamed and its answer (type, range, number of digits, instrument) may not
    change, or answers before and after could not be compared. Wording, timing, expiry,
    reminders, feedback and new prompts may still change.
    """
    if study.enrolment_opened_at is None:
        return None
    current = export_protocol(study)
    if current is None:
        return None
    try:
        old, new = _measures(read_protocol(current)), _measures(read_protocol(data))
    except ProtocolError:
        return None  # check_protocol reports the problems
    removed = sorted(set(old) - set(new))
    if removed:
        return (f"Enrolment has opened, so prompt {', '.join(removed)} cannot be removed or "
                "renamed: its answers are outcome data. Keep it (you can change its wording "
                "or timing).")
    changed = sorted(key for key in old if old[key] != new[key])
    if changed:
        return (f"Enrolment has opened, so the answer of prompt {', '.join(changed)} cannot "
                "change (type, range, digits or instrument): answers before and after could "
                "not be compared. Add a new prompt instead.")
    return None


def _store(study: Any, data: dict[str, Any], source: str, actor: User | None, *,
           keep_text: bool) -> SmsProtocolVersion | None:
    """A new version, or None when nothing changed (the data, and with ``keep_text`` the
    text too: a comment edited on the page is a new version)."""
    problems = check_protocol(data)
    if problems:
        raise ProtocolError(problems)
    refusal = protocol_change_refusal(study, data)
    if refusal:
        raise ProtocolError([refusal])
    current = current_version(study)
    if current is not None and current.data == data and (
            not keep_text or current.source == source):
        return None
    number = (db.session.scalar(select(func.max(SmsProtocolVersion.version))
                                .where(SmsProtocolVersion.study_id == study.id)) or 0) + 1
    row = SmsProtocolVersion(study_id=study.id, version=number, source=source, data=data,
                             created_by_id=actor.id if actor is not None else None)
    db.session.add(row)
    db.session.flush()
    audit.record("sms_protocol.saved", actor=actor, version=number,
                 prompts=[p["key"] for p in data["prompts"]])
    return row


def apply_protocol(study: Any, data: dict[str, Any], *, actor: User | None) -> None:
    """Save ``data`` as the study's new protocol version (nothing when unchanged).
    ``ProtocolError`` when it has problems or the change is refused. Flushes."""
    _store(study, data, yaml.safe_dump(data, sort_keys=False, allow_unicode=True), actor,
           keep_text=False)


def save_protocol_text(study: Any, text: str, *, actor: User | None) -> SmsProtocolVersion | None:
    """Save YAML typed on the researcher's page, keeping its comments. ``ProtocolError``
    (with line numbers) when it cannot be saved. Flushes."""
    data, problems = check_text(text)
    if problems:
        raise ProtocolError(problems)
    return _store(study, data, text, actor, keep_text=True)
