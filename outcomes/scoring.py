"""The one scoring engine: item answers in, a ``Score`` with the rules that produced it out.

Every questionnaire score in Kinship (the questionnaire pages, ``flask outcomes score``, exports)
comes from ``score()``, driven only by the instrument's definition (``outcomes.instruments``):

1. Answers are checked first. An unknown item, a value that is not a whole number, or one that is
   not among the instrument's response values raises ``ScoringError`` naming the item.
2. Item score = answer, or ``min + max - answer`` for a reverse-keyed item, plus the instrument's
   ``item_offset`` (0 except for SUS, where it is -1).
3. Each score (total, extra totals such as MSPSS ``total_sum``, subscales) takes the mean of its
   answered item scores, times its number of items for ``sum``, times its ``multiplier``. With no
   item missing that is the plain sum or mean. With items missing it is prorated (mean of the
   answered items times the number of items) or the mean of the answered items, but only if the
   score's missing-data rule allows that many missing; otherwise the score is ``None``.
4. Labels are read off the exact value; a label of a missing score is ``None``.
5. ``status`` is ``ok`` when the total could be scored and ``insufficient`` when it could not.

Rounding: the engine never rounds. Arithmetic is exact (``Fraction``), values are returned as the
nearest float, and bands are decided on the exact value, so a prorated 3.0 is exactly 3.0. Store
the float as it is; round only for display (e.g. to 2 decimals), never before comparing with a
cut-off. ``Score`` also carries the instrument version and the scoring and missing-data rules as
text, so callers store them with the score. Pure functions: no database, no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from outcomes.instruments import Instrument, Item, Label, MissingRule, ScoreRule

OK = "ok"
INSUFFICIENT = "insufficient"
#: how a missing answer is written on the command line (any case)
MISSING_ANSWER = "NA"
_WHOLE_NUMBER = re.compile(r"^[+-]?\d+$")

Answers = dict[int, int | None]


class ScoringError(ValueError):
    """The answers cannot be scored; ``item`` is the item at fault."""

    def __init__(self, item: object, message: str) -> None:
        self.item = item
        super().__init__(f"item {item}: {message}")


@dataclass(frozen=True)
class Score:
    """One scored questionnaire, with what is needed to store and audit it."""

    instrument: str
    instrument_version: str
    total: float | None
    #: further totals the definition asks for, e.g. MSPSS ``total_sum``
    extra_totals: dict[str, float | None]
    subscales: dict[str, float | None]
    labels: dict[str, str | bool | None]
    #: answers missing across the whole instrument
    missing: int
    status: str
    scoring_rule: str
    missing_rule: str

    def as_dict(self) -> dict[str, Any]:
        """The ``flask outcomes score`` object: instrument, total, extra totals, subscales,
        labels, missing, status."""
        return {"instrument": self.instrument, "total": self.total, **self.extra_totals,
                "subscales": dict(self.subscales), "labels": dict(self.labels),
                "missing": self.missing, "status": self.status}


# --------------------------------------------------------------------------- answers

def _choices(instrument: Instrument) -> str:
    return ", ".join(str(value) for value in instrument.values)


def check_answers(instrument: Instrument, answers: Mapping[Any, Any]) -> Answers:
    """Every item's answer, ``None`` where missing (absent keys count as missing)."""
    numbers = instrument.item_numbers
    for key in answers:
        if isinstance(key, bool) or key not in numbers:
            raise ScoringError(key if isinstance(key, int) else repr(key),
                               f"{instrument.id} has no such item "
                               f"(items {numbers[0]} to {numbers[-1]})")
    checked: Answers = {}
    for number in numbers:
        value = answers.get(number)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ScoringError(number, f"{value!r} is not a whole number; answer one of "
                                       f"{_choices(instrument)}")
        if value is not None and value not in instrument.values:
            raise ScoringError(number, f"{value} is not one of {_choices(instrument)}")
        checked[number] = value
    return checked


def _check_length(instrument: Instrument, given: int) -> None:
    count = len(instrument.items)
    if given > count:
        raise ScoringError(count + 1, f"{instrument.id} has only {count} items, "
                                      f"but {given} answers were given")
    if given < count:
        raise ScoringError(instrument.items[given].number,
                           f"no answer given: {instrument.id} needs {count} answers, got "
                           f"{given} (write {MISSING_ANSWER} for a missing answer)")


def answers_from_list(instrument: Instrument, values: Sequence[Any]) -> Answers:
    """Answers given in item order, one per item (``None`` for a missing one)."""
    _check_length(instrument, len(values))
    return check_answers(instrument, {item.number: value for item, value
                                      in zip(instrument.items, values, strict=True)})


def _parse_token(instrument: Instrument, item: Item, token: str) -> int | None:
    text = token.strip()
    if text.upper() == MISSING_ANSWER:
        return None
    if _WHOLE_NUMBER.match(text):
        return int(text)
    raise ScoringError(item.number, f"{token!r} is not a whole number; answer one of "
                                    f"{_choices(instrument)} or {MISSING_ANSWER}")


def parse_responses(instrument: Instrument, tokens: Sequence[str]) -> Answers:
    """Answers typed as text, one per item in order: whole numbers, or ``NA`` for missing."""
    _check_length(instrument, len(tokens))
    return answers_from_list(instrument, [_parse_token(instrument, item, token) for item, token
                                          in zip(instrument.items, tokens, strict=True)])


# --------------------------------------------------------------------------- scoring

def item_score(instrument: Instrument, item: Item, answer: int) -> int:
    """One item's score: reverse-keyed as ``min + max - answer``, then ``item_offset``."""
    keyed = instrument.min_value + instrument.max_value - answer if item.reverse else answer
    return keyed + instrument.item_offset


def allows_missing(rule: MissingRule, missing: int, count: int) -> bool:
    if rule.kind == "prorate":
        return Fraction(missing, count) <= rule.limit
    if rule.kind == "max_missing":
        return missing <= rule.limit
    return missing == 0


def aggregate(rule: ScoreRule, item_scores: Mapping[int, int | None]) -> Fraction | None:
    """The exact value of ``rule``, or ``None`` when its missing-data rule is not met."""
    scores = [item_scores[number] for number in rule.items]
    answered = [value for value in scores if value is not None]
    if not answered or not allows_missing(rule.missing, len(scores) - len(answered), len(scores)):
        return None
    mean = Fraction(sum(answered), len(answered))
    value = mean * len(scores) if rule.aggregation == "sum" else mean
    return value * rule.multiplier


def band_value(label: Label, value: Fraction | None) -> str | bool | None:
    if value is None:
        return None
    return next((band.value for band in label.bands if band.contains(value)), None)


def score(instrument: Instrument, answers: Mapping[Any, Any]) -> Score:
    """Score one completed (or partly completed) questionnaire."""
    checked = check_answers(instrument, answers)
    item_scores = {item.number: None if checked[item.number] is None
                   else item_score(instrument, item, checked[item.number])  # type: ignore[arg-type]
                   for item in instrument.items}
    exact = {rule.name: aggregate(rule, item_scores) for rule in instrument.rules}
    value = {name: None if v is None else float(v) for name, v in exact.items()}
    return Score(
        instrument=instrument.id,
        instrument_version=instrument.version,
        total=value["total"],
        extra_totals={rule.name: value[rule.name] for rule in instrument.extra_totals},
        subscales={rule.name: value[rule.name] for rule in instrument.subscales},
        labels={label.name: band_value(label, exact[label.score]) for label in instrument.labels},
        missing=sum(answer is None for answer in checked.values()),
        status=OK if exact["total"] is not None else INSUFFICIENT,
        scoring_rule=describe_scoring(instrument),
        missing_rule=describe_missing(instrument),
    )


# --------------------------------------------------------------------------- rules as text

def _numbers(numbers: Sequence[int]) -> str:
    if len(numbers) > 2 and list(numbers) == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(str(number) for number in numbers)


def _signed(value: int) -> str:
    return f" + {value}" if value > 0 else f" - {-value}" if value < 0 else ""


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def describe_items(instrument: Instrument) -> str:
    offset = instrument.item_offset
    text = f"item score = answer{_signed(offset)}"
    if instrument.reverse_items:
        reversed_constant = instrument.min_value + instrument.max_value + offset
        low, high, items = instrument.min_value, instrument.max_value, instrument.reverse_items
        text += (f"; reverse-keyed item{'s' if len(items) > 1 else ''} {_numbers(items)}: "
                 f"{reversed_constant} - answer ({low} + {high} - answer{_signed(offset)})")
    return text


def describe_rule(rule: ScoreRule) -> str:
    text = f"{rule.name} = {rule.aggregation} of items {_numbers(rule.items)}"
    return text + (f" x {_fmt(rule.multiplier)}" if rule.multiplier != 1 else "")


def describe_missing_rule(rule: ScoreRule) -> str:
    count, kind = len(rule.items), rule.missing.kind
    if kind == "require_all":
        return f"{rule.name}: every item needed"
    fill = (f"mean of answered items x {count}" if rule.aggregation == "sum"
            else "mean of answered items")
    if kind == "prorate":
        allowed = int(rule.missing.limit * count)
        limit = f"at most {_fmt(Fraction(rule.missing.limit) * 100)}% of its {count} items"
        return f"{rule.name}: {fill} when {limit} (up to {allowed}) are missing, else missing"
    return (f"{rule.name}: {fill} when at most {rule.missing.limit} of its {count} items "
            "are missing, else missing")


def describe_scoring(instrument: Instrument) -> str:
    """The scoring rule as one line of text, stored with every score."""
    rules = "; ".join(describe_rule(rule) for rule in instrument.rules)
    return f"{instrument.short_name} {instrument.version}: {describe_items(instrument)}; {rules}"


def describe_missing(instrument: Instrument) -> str:
    """The missing-data rule of every score as one line of text, stored with every score."""
    return "; ".join(describe_missing_rule(rule) for rule in instrument.rules)
