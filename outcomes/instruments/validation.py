"""Reading and checking one instrument definition file.

``read_definition`` turns a YAML file into an ``Instrument`` or a list of problems, each with the
line it is on: the file is composed into PyYAML nodes, whose marks give the line of every key, and
every rule of the schema (``README.md``) is checked before anything is built. Helpers report and
carry on, so one run lists every problem in a file, without knock-on reports from the same mistake.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from outcomes.instruments import (
    Band,
    Bound,
    Instrument,
    Item,
    Label,
    MissingRule,
    Option,
    Problem,
    ScoreRule,
    rule_range,
)

#: the only reverse-scoring formula the engine knows; definitions state it so readers see it
REVERSE_FORMULA = "min+max-answer"
AGGREGATIONS = ("sum", "mean")
#: keys of the ``flask outcomes score`` JSON object, which an extra total may not take
RESERVED_NAMES = frozenset({"instrument", "total", "subscales", "labels", "missing", "status"})
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

TOP_KEYS = ("id", "name", "short_name", "version", "citation", "licence", "instructions",
            "options", "items", "scoring")
TEXT_KEYS = ("name", "short_name", "version", "citation", "licence", "instructions")
SCORING_KEYS = ("reverse_formula", "item_offset", "extra_totals", "subscales")
RULE_KEYS = ("aggregation", "items", "missing")
BOUND_KEYS = ("from", "above", "to", "below")

Where = tuple[str | int, ...]
"""A place inside a definition, e.g. ``("items", 3, "reverse")``: the fourth item's flag."""


def read_definition(path: Path) -> tuple[Instrument | None, list[Problem]]:
    """Read and validate one definition; the instrument is ``None`` when there are problems."""
    reader = _Reader(path)
    data = reader.read()
    instrument = _build(reader, data) if data is not None else None
    return (instrument if not reader.problems else None), reader.problems


# --------------------------------------------------------------------------- reading YAML

class _Reader:
    """One definition file being read: its data, the line of every key, the problems found."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[Where, int] = {}
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    def problem(self, where: Where, message: str) -> None:
        self.problems.append(Problem(str(self.path), self.line(where), message))

    def line(self, where: Where) -> int | None:
        """The line of ``where``, or of its nearest enclosing key when it has none."""
        while where and where not in self.lines:
            where = where[:-1]
        return self.lines.get(where)

    def read(self) -> Any:
        try:
            node = yaml.compose(self.path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(_syntax_problem(self.path, exc))
            return None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            self.problems.append(Problem(str(self.path), None, f"cannot read: {exc}"))
            return None
        if node is None:
            self.problems.append(Problem(str(self.path), None, "the file is empty"))
            return None
        self.lines[()] = node.start_mark.line + 1
        return self._data(node, ())

    def _data(self, node: Node, where: Where) -> Any:
        if isinstance(node, MappingNode):
            return self._mapping(node, where)
        if isinstance(node, SequenceNode):
            values = []
            for index, child in enumerate(node.value):
                self.lines[(*where, index)] = child.start_mark.line + 1
                values.append(self._data(child, (*where, index)))
            return values
        try:
            return self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self.problems.append(Problem(str(self.path), node.start_mark.line + 1,
                                         f"cannot read this value: {exc}"))
            return None

    def _mapping(self, node: MappingNode, where: Where) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.problems.append(Problem(str(self.path), line, "keys must be plain names"))
                continue
            key = self._constructor.construct_object(key_node)
            if key in result:
                self.problems.append(Problem(str(self.path), line, f"duplicate key '{key}' "
                                             f"(first at line {self.lines[(*where, key)]})"))
                continue
            self.lines[(*where, key)] = line
            result[key] = self._data(value_node, (*where, key))
        return result


def _syntax_problem(path: Path, exc: yaml.MarkedYAMLError) -> Problem:
    """Where the parser noticed the problem, and where the construct it was reading began."""
    mark = exc.problem_mark or exc.context_mark
    message = f"not valid YAML: {exc.problem or exc.context}"
    if exc.context and exc.context_mark and exc.problem_mark:
        message += f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
    return Problem(str(path), mark.line + 1 if mark else None, message)


# --------------------------------------------------------------------------- small checks

def _context(where: Where) -> str:
    """``("scoring", "subscales", "friends")`` -> ``scoring.subscales.friends``."""
    parts = [f"#{part + 1}" if isinstance(part, int) else str(part) for part in where]
    return ".".join(parts).replace(".#", " #")


def _prefix(where: Where) -> str:
    return f"{_context(where)}: " if where else ""


def _check_keys(r: _Reader, where: Where, data: Mapping[Any, Any], required: Iterable[str],
                optional: Iterable[str] = ()) -> None:
    required, allowed = tuple(required), (*required, *optional)
    prefix = _prefix(where)
    for key in required:
        if key not in data:
            r.problem(where, f"{prefix}missing required key '{key}'")
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            r.problem((*where, key), f"{prefix}unknown key '{key}'{hint}")


def _is_mapping(r: _Reader, where: Where, value: Any) -> bool:
    if isinstance(value, dict):
        return True
    r.problem(where, f"{_prefix(where)}expected a mapping of keys")
    return False


def _is_list(r: _Reader, where: Where, value: Any, minimum: int = 1) -> bool:
    if isinstance(value, list) and len(value) >= minimum:
        return True
    r.problem(where, f"{_prefix(where)}expected a list of at least {minimum} entries")
    return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> Fraction | None:
    """A YAML number as an exact fraction (``3.0`` -> 3, ``2.5`` -> 5/2); ``None`` otherwise."""
    if _is_int(value):
        return Fraction(value)
    if isinstance(value, float) and math.isfinite(value):
        return Fraction(str(value))
    return None


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def _text(r: _Reader, where: Where, value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    r.problem(where, f"{_prefix(where)}expected non-empty text")
    return ""


# --------------------------------------------------------------------------- the definition

def _build(r: _Reader, data: Any) -> Instrument | None:
    if not _is_mapping(r, (), data):
        return None
    _check_keys(r, (), data, TOP_KEYS, ("labels",))
    texts = {key: _text(r, (key,), data[key]) for key in TEXT_KEYS if key in data}
    instrument_id = _check_id(r, data.get("id"))
    options = _parse_options(r, data["options"]) if "options" in data else ()
    items = _parse_items(r, data["items"]) if "items" in data else ()
    if "scoring" not in data or not _is_mapping(r, ("scoring",), data["scoring"]):
        return None
    scoring = _parse_scoring(r, data["scoring"], items, _item_numbers(data.get("items")))
    if scoring is None or not options:
        return None
    offset, total, extra, subscales = scoring
    rules = {rule.name: rule for rule in (total, *extra, *subscales)}
    low, high = min(o.value for o in options), max(o.value for o in options)
    ranges = {name: rule_range(low, high, offset, rule) for name, rule in rules.items()}
    labels = _parse_labels(r, data["labels"], ranges) if "labels" in data else ()
    if r.problems:
        return None
    return Instrument(id=instrument_id, options=options, items=items, item_offset=offset,
                      total=total, extra_totals=extra, subscales=subscales, labels=labels,
                      source=r.path, **texts)


def _item_numbers(raw: Any) -> tuple[int, ...]:
    """Every well-formed item number, even of broken items, so that a broken item is reported
    once and not again by each subscale that uses it."""
    entries = raw if isinstance(raw, list) else []
    return tuple(dict.fromkeys(entry["number"] for entry in entries
                               if isinstance(entry, dict) and _is_int(entry.get("number"))))


def _check_id(r: _Reader, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        r.problem(("id",), f"id {value!r} must be lower-case letters, digits and _")
    elif value != r.path.stem:
        r.problem(("id",), f"id '{value}' does not match the file name {r.path.name} "
                           f"(name the file {value}.yaml)")
    return str(value)


def _parse_options(r: _Reader, raw: Any) -> tuple[Option, ...]:
    if not _is_list(r, ("options",), raw, minimum=2):
        return ()
    options: list[Option] = []
    seen: dict[int, int] = {}
    for index, entry in enumerate(raw):
        where: Where = ("options", index)
        if not _is_mapping(r, where, entry):
            continue
        _check_keys(r, where, entry, ("value", "label"))
        value = entry.get("value")
        label = _text(r, (*where, "label"), entry["label"]) if "label" in entry else ""
        if "value" in entry and not _is_int(value):
            r.problem((*where, "value"), f"option value {value!r} is not a whole number")
        elif value in seen:
            r.problem((*where, "value"), f"option value {value} is used twice "
                                         f"(first at line {seen[value]})")
        elif value is not None:
            seen[value] = r.line((*where, "value")) or 0
            options.append(Option(value, label))
    if len(options) == len(raw):  # a duplicate would also show up as a gap
        _check_contiguous(r, [option.value for option in options])
    return tuple(options)


def _check_contiguous(r: _Reader, values: list[int]) -> None:
    ordered = sorted(values)
    for low, high in zip(ordered, ordered[1:], strict=False):
        if high - low != 1:
            absent = ", ".join(str(v) for v in range(low + 1, high))
            r.problem(("options",), f"option values are not contiguous: {absent} missing "
                                    f"between {low} and {high}")


def _parse_items(r: _Reader, raw: Any) -> tuple[Item, ...]:
    if not _is_list(r, ("items",), raw):
        return ()
    items: list[Item] = []
    seen: dict[int, int] = {}
    for index, entry in enumerate(raw):
        item = _parse_item(r, ("items", index), entry)
        if item is None:
            continue
        if item.number in seen:
            r.problem(("items", index, "number"), f"item number {item.number} is used twice "
                                                  f"(first at line {seen[item.number]})")
            continue
        seen[item.number] = r.line(("items", index)) or 0
        items.append(item)
    if len(items) == len(raw):  # a duplicate or broken item would also show up as a gap
        _check_item_order(r, raw, items)
    return tuple(items)


def _check_item_order(r: _Reader, raw: list[Any], items: list[Item]) -> None:
    for position, item in enumerate(items, start=1):
        if item.number != position:
            index = next(i for i, e in enumerate(raw) if isinstance(e, dict)
                         and e.get("number") == item.number)
            r.problem(("items", index, "number"), f"item number {item.number} is out of "
                      f"sequence: expected {position} (number items 1, 2, 3 ... in order)")
            return


def _parse_item(r: _Reader, where: Where, entry: Any) -> Item | None:
    if not _is_mapping(r, where, entry):
        return None
    _check_keys(r, where, entry, ("number", "text", "reverse"))
    number, reverse = entry.get("number"), entry.get("reverse")
    text = _text(r, (*where, "text"), entry["text"]) if "text" in entry else ""
    ok = "number" in entry and "reverse" in entry
    if "number" in entry and (not _is_int(number) or number < 1):
        r.problem((*where, "number"), f"item number {number!r} must be a whole number from 1")
        ok = False
    if "reverse" in entry and not isinstance(reverse, bool):
        r.problem((*where, "reverse"), f"reverse must be true or false, not {reverse!r}")
        ok = False
    return Item(number, text, reverse) if ok else None


# --------------------------------------------------------------------------- scoring rules

def _parse_scoring(r: _Reader, raw: dict[Any, Any], items: tuple[Item, ...],
                   numbers: tuple[int, ...]
                   ) -> tuple[int, ScoreRule, tuple[ScoreRule, ...], tuple[ScoreRule, ...]] | None:
    _check_keys(r, ("scoring",), raw, ("total",), SCORING_KEYS)
    _check_reverse_formula(r, raw.get("reverse_formula"), items)
    offset = raw.get("item_offset", 0)
    if not _is_int(offset):
        r.problem(("scoring", "item_offset"), f"item_offset {offset!r} must be a whole number")
    total = (_parse_rule(r, ("scoring", "total"), "total", raw["total"], numbers)
             if "total" in raw else None)
    extra = _parse_rule_group(r, raw, "extra_totals", numbers, taken={"total"})
    subscales = _parse_rule_group(r, raw, "subscales", numbers,
                                  taken={"total", *(rule.name for rule in extra)})
    if total is None or not _is_int(offset):
        return None
    return offset, total, extra, subscales


def _check_reverse_formula(r: _Reader, formula: Any, items: tuple[Item, ...]) -> None:
    reversed_items = [str(item.number) for item in items if item.reverse]
    if formula is None and reversed_items:
        which = (f"items {', '.join(reversed_items)} are" if len(reversed_items) > 1
                 else f"item {reversed_items[0]} is")
        r.problem(("scoring",), f"{which} reverse-keyed: state "
                                f"scoring.reverse_formula: {REVERSE_FORMULA}")
    elif formula is not None and formula != REVERSE_FORMULA:
        r.problem(("scoring", "reverse_formula"), f"unknown reverse_formula {formula!r}: the "
                                                  f"engine reverses as {REVERSE_FORMULA}")


def _parse_rule_group(r: _Reader, raw: dict[Any, Any], key: str, numbers: tuple[int, ...],
                      taken: set[str]) -> tuple[ScoreRule, ...]:
    if key not in raw or not _is_mapping(r, ("scoring", key), raw[key]):
        return ()
    rules = []
    for name, spec in raw[key].items():
        where: Where = ("scoring", key, name)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            r.problem(where, f"score name {name!r} must be lower-case letters, digits and _")
        elif name in taken or name in RESERVED_NAMES:
            r.problem(where, f"score name '{name}' is already used")
        elif (rule := _parse_rule(r, where, name, spec, numbers)) is not None:
            rules.append(rule)
    return tuple(rules)


def _parse_rule(r: _Reader, where: Where, name: str, raw: Any,
                numbers: tuple[int, ...]) -> ScoreRule | None:
    if not _is_mapping(r, where, raw):
        return None
    _check_keys(r, where, raw, RULE_KEYS, ("multiplier",))
    aggregation = raw.get("aggregation")
    if "aggregation" in raw and aggregation not in AGGREGATIONS:
        r.problem((*where, "aggregation"), f"{_context(where)}: unknown aggregation "
                                           f"{aggregation!r}: use sum or mean")
    items = _parse_rule_items(r, (*where, "items"), raw["items"], numbers) \
        if "items" in raw else None
    missing = _parse_missing(r, (*where, "missing"), raw["missing"], len(items or numbers)) \
        if "missing" in raw else None
    multiplier = _number(raw.get("multiplier", 1))
    if multiplier is None or multiplier <= 0:
        r.problem((*where, "multiplier"), f"{_context(where)}: multiplier must be a positive "
                                          "number")
    if aggregation not in AGGREGATIONS or not items or missing is None or not multiplier:
        return None
    return ScoreRule(name, aggregation, items, missing, multiplier)


def _parse_rule_items(r: _Reader, where: Where, raw: Any,
                      numbers: tuple[int, ...]) -> tuple[int, ...] | None:
    if raw == "all":
        return numbers
    if not isinstance(raw, list) or not raw:
        r.problem(where, f"{_context(where)}: items must be 'all' or a list of item numbers")
        return None
    known = set(numbers)
    chosen: list[int] = []
    for index, number in enumerate(raw):
        if not _is_int(number) or number not in known:
            r.problem((*where, index), f"{_context(where[:-1])}: item {number!r} is not an "
                                       "item of this instrument")
        elif number in chosen:
            r.problem((*where, index), f"{_context(where[:-1])}: item {number} is listed twice")
        else:
            chosen.append(number)
    return tuple(chosen) if len(chosen) == len(raw) else None


def _parse_missing(r: _Reader, where: Where, raw: Any, count: int) -> MissingRule | None:
    usage = ("missing must be require_all, {prorate_max_missing_fraction: F} "
             "or {max_missing: N}")
    if raw == "require_all":
        return MissingRule("require_all")
    if not isinstance(raw, dict) or len(raw) != 1:
        r.problem(where, f"{_context(where)}: {usage}")
        return None
    (key, value), = raw.items()
    limit = _number(value)
    if key == "prorate_max_missing_fraction":
        if limit is not None and 0 <= limit < 1:
            return MissingRule("prorate", limit)
        r.problem((*where, key), f"{_context(where)}: {key} must be a number from 0 up to "
                                 "(not including) 1")
    elif key == "max_missing":
        if _is_int(value) and 0 <= value < count:
            return MissingRule("max_missing", value)
        r.problem((*where, key), f"{_context(where)}: max_missing must be a whole number "
                                 f"from 0 to {count - 1}")
    else:
        r.problem((*where, key), f"{_context(where)}: unknown rule '{key}': {usage}")
    return None


# --------------------------------------------------------------------------- labels and bands

def _parse_labels(r: _Reader, raw: Any,
                  ranges: dict[str, tuple[Fraction, Fraction]]) -> tuple[Label, ...]:
    if not _is_mapping(r, ("labels",), raw):
        return ()
    labels = []
    for name, spec in raw.items():
        where: Where = ("labels", name)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            r.problem(where, f"label name {name!r} must be lower-case letters, digits and _")
            continue
        if not _is_mapping(r, where, spec):
            continue
        _check_keys(r, where, spec, ("score", "bands"))
        score = spec.get("score")
        if "score" in spec and score not in ranges:
            r.problem((*where, "score"), f"label '{name}': score {score!r} is not a score of "
                                         f"this instrument ({', '.join(ranges)})")
            continue
        if "bands" not in spec or not _is_list(r, (*where, "bands"), spec["bands"]):
            continue
        bands = [_parse_band(r, (*where, "bands", i), b) for i, b in enumerate(spec["bands"])]
        if all(bands) and "score" in spec:
            _check_bands(r, (*where, "bands"), bands, ranges[score])  # type: ignore[arg-type]
            labels.append(Label(name, score, tuple(bands)))  # type: ignore[arg-type]
    return tuple(labels)


def _parse_band(r: _Reader, where: Where, raw: Any) -> Band | None:
    if not _is_mapping(r, where, raw):
        return None
    _check_keys(r, where, raw, ("value",), BOUND_KEYS)
    value = raw.get("value")
    if "value" in raw and not isinstance(value, bool) and not (isinstance(value, str) and value):
        r.problem((*where, "value"), f"band value {value!r} must be text or true/false")
        return None
    lower = _parse_bound(r, where, raw, inclusive="from", exclusive="above")
    upper = _parse_bound(r, where, raw, inclusive="to", exclusive="below")
    if "value" not in raw or lower is False or upper is False:
        return None
    return Band(value, lower or None, upper or None)


def _parse_bound(r: _Reader, where: Where, raw: dict[Any, Any], *, inclusive: str,
                 exclusive: str) -> Bound | None | bool:
    """The bound in ``raw``, ``None`` when open, ``False`` after reporting a problem."""
    given = [key for key in (inclusive, exclusive) if key in raw]
    if len(given) == 2:
        r.problem((*where, exclusive), f"a band takes '{inclusive}' (inclusive) or "
                                       f"'{exclusive}' (exclusive), not both")
        return False
    if not given:
        return None
    value = _number(raw[given[0]])
    if value is None:
        r.problem((*where, given[0]), f"'{given[0]}' must be a number")
        return False
    return Bound(value, given[0] == inclusive)


def _band_name(band: Band) -> str:
    return str(band.value).lower() if isinstance(band.value, bool) else band.value


def _check_bands(r: _Reader, where: Where, bands: list[Band],
                 possible: tuple[Fraction, Fraction]) -> None:
    low, high = possible
    first, last = bands[0], bands[-1]
    if first.lower and (first.lower.value > low or not first.lower.inclusive and
                        first.lower.value == low):
        r.problem((*where, 0), f"band '{_band_name(first)}' does not start at the lowest "
                               f"possible score, {_fmt(low)}")
    if last.upper and (last.upper.value < high or not last.upper.inclusive and
                       last.upper.value == high):
        r.problem((*where, len(bands) - 1), f"band '{_band_name(last)}' does not reach the "
                                            f"highest possible score, {_fmt(high)}")
    for index, band in enumerate(bands):
        if _is_empty(band):
            r.problem((*where, index), f"band '{_band_name(band)}' is empty: its lower limit "
                                       "is not below its upper limit")
    for index, (below, above) in enumerate(zip(bands, bands[1:], strict=False), start=1):
        message = _join_problem(below, above)
        if message:
            r.problem((*where, index), message)


def _is_empty(band: Band) -> bool:
    if band.lower is None or band.upper is None:
        return False
    if band.lower.value == band.upper.value:
        return not (band.lower.inclusive and band.upper.inclusive)
    return band.lower.value > band.upper.value


def _join_problem(below: Band, above: Band) -> str | None:
    """What is wrong where band ``below`` meets the next band up, or ``None``."""
    names = f"bands '{_band_name(below)}' and '{_band_name(above)}'"
    if below.upper is None or above.lower is None:
        return f"{names} overlap: list bands from lowest to highest, each with its limits"
    top, bottom = below.upper, above.lower
    if top.value < bottom.value:
        return f"gap between {names}: no band holds scores between {_fmt(top.value)} and " \
               f"{_fmt(bottom.value)}"
    if top.value > bottom.value:
        return f"{names} overlap between {_fmt(bottom.value)} and {_fmt(top.value)}"
    if top.inclusive and bottom.inclusive:
        return f"{names} overlap: both include {_fmt(top.value)} (use 'to' with 'above', " \
               "or 'below' with 'from')"
    if not top.inclusive and not bottom.inclusive:
        return f"gap between {names}: {_fmt(top.value)} is in neither (use 'to' with " \
               "'above', or 'below' with 'from')"
    return None
