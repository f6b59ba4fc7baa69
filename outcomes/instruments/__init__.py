"""Questionnaire instruments as data: load, validate and look up their definitions.

Each instrument is one YAML file, ``<id>.yaml``, in this folder (the built-ins) or in a folder a
study supplies; ``README.md`` here describes the schema. This module holds the validated form
(``Instrument`` and its parts) and the functions to load and look definitions up; reading and
checking a file is ``validation.py``. Loading validates a definition completely and reports every
problem as ``file:line: message``, so a broken definition never reaches the scoring engine,
``outcomes.scoring``, which trusts what this module hands it. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

BUILTIN_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition file."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else \
            f"{self.file}: {self.message}"


class InstrumentError(Exception):
    """One or more definitions are broken; ``problems`` says where and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class UnknownInstrument(LookupError):
    """No definition has the requested id."""


@dataclass(frozen=True)
class Option:
    value: int
    label: str


@dataclass(frozen=True)
class Item:
    number: int
    text: str
    #: scored as ``min + max - answer`` (before ``Instrument.item_offset``)
    reverse: bool


@dataclass(frozen=True)
class MissingRule:
    """How many of a score's items may be missing before the score is missing too.

    ``kind`` is ``require_all``, ``prorate`` (``limit`` is the largest missing fraction) or
    ``max_missing`` (``limit`` is a count). Whatever the kind, missing items are filled with the
    mean of the answered ones.
    """

    kind: str
    limit: Fraction | int = 0


@dataclass(frozen=True)
class ScoreRule:
    name: str
    aggregation: str
    items: tuple[int, ...]
    missing: MissingRule
    multiplier: Fraction = Fraction(1)


@dataclass(frozen=True)
class Bound:
    value: Fraction
    inclusive: bool


@dataclass(frozen=True)
class Band:
    """One band of a label; ``None`` bounds are open (no limit on that side)."""

    value: str | bool
    lower: Bound | None
    upper: Bound | None

    def contains(self, score: Fraction) -> bool:
        lower, upper = self.lower, self.upper
        above = lower is None or score > lower.value or (lower.inclusive and score == lower.value)
        below = upper is None or score < upper.value or (upper.inclusive and score == upper.value)
        return above and below


@dataclass(frozen=True)
class Label:
    name: str
    score: str
    bands: tuple[Band, ...]


@dataclass(frozen=True)
class Instrument:
    """A validated definition: what the scoring engine and the questionnaire pages use."""

    id: str
    name: str
    short_name: str
    version: str
    citation: str
    licence: str
    instructions: str
    options: tuple[Option, ...]
    items: tuple[Item, ...]
    item_offset: int
    total: ScoreRule
    extra_totals: tuple[ScoreRule, ...]
    subscales: tuple[ScoreRule, ...]
    labels: tuple[Label, ...]
    source: Path

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(sorted(option.value for option in self.options))

    @property
    def min_value(self) -> int:
        return self.values[0]

    @property
    def max_value(self) -> int:
        return self.values[-1]

    @property
    def item_numbers(self) -> tuple[int, ...]:
        return tuple(item.number for item in self.items)

    @property
    def reverse_items(self) -> tuple[int, ...]:
        return tuple(item.number for item in self.items if item.reverse)

    @property
    def rules(self) -> tuple[ScoreRule, ...]:
        return (self.total, *self.extra_totals, *self.subscales)

    def rule(self, name: str) -> ScoreRule:
        return next(rule for rule in self.rules if rule.name == name)

    def score_range(self, rule: ScoreRule) -> tuple[Fraction, Fraction]:
        """The lowest and highest value ``rule`` can produce."""
        return rule_range(self.min_value, self.max_value, self.item_offset, rule)


def rule_range(low: int, high: int, offset: int, rule: ScoreRule) -> tuple[Fraction, Fraction]:
    """The lowest and highest value ``rule`` can give for response values ``low``-``high``."""
    count = len(rule.items) if rule.aggregation == "sum" else 1
    return (Fraction(low + offset) * count * rule.multiplier,
            Fraction(high + offset) * count * rule.multiplier)


# --------------------------------------------------------------------------- public functions

def check_file(path: Path) -> tuple[Instrument | None, list[Problem]]:
    """Read and validate one definition; the instrument is ``None`` when there are problems."""
    from outcomes.instruments.validation import read_definition

    return read_definition(Path(path))


def check_path(path: Path) -> tuple[dict[str, Instrument], list[Problem]]:
    """Validate a definition file, or every ``*.yaml``/``*.yml`` file in a folder."""
    path = Path(path)
    files = _definition_files(path)
    if not files:
        return {}, [Problem(str(path), None, "no instrument definitions (*.yaml) found")]
    found: dict[str, Instrument] = {}
    problems: list[Problem] = []
    for file in files:
        instrument, file_problems = check_file(file)
        problems.extend(file_problems)
        if instrument is not None:
            found[instrument.id] = instrument
    return found, problems


def load_path(path: Path) -> dict[str, Instrument]:
    """Load a definition file or folder; raise ``InstrumentError`` listing every problem."""
    found, problems = check_path(path)
    if problems:
        raise InstrumentError(problems)
    return found


@lru_cache(maxsize=1)
def builtin() -> Mapping[str, Instrument]:
    """The instruments shipped in this folder, by id (loaded once per process)."""
    return MappingProxyType(load_path(BUILTIN_DIR))


def get(instrument_id: str, *, extra: Path | None = None) -> Instrument:
    """The instrument with this id, from the built-ins or from ``extra`` (a file or folder)."""
    known = dict(builtin())
    if extra is not None:
        for key, instrument in load_path(extra).items():
            if key in known and known[key].source != instrument.source:
                raise InstrumentError([Problem(str(instrument.source), None,
                                               f"id '{key}' is a built-in instrument; "
                                               "give this definition another id")])
            known[key] = instrument
    try:
        return known[instrument_id]
    except KeyError:
        raise UnknownInstrument(f"unknown instrument '{instrument_id}': choose one of "
                                f"{', '.join(sorted(known))}") from None


def _definition_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path] if path.exists() else []
