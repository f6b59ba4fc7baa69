"""Distributions of adherence figures by arm, for the researcher dashboard.

Pure functions over ``metrics.Adherence`` rows: no queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median


@dataclass(frozen=True)
class Distribution:
    """Five-number summary of one metric in one group; quartiles by linear interpolation
    between order statistics (type 7, the default of R and numpy)."""

    n: int
    #: participants in the group whose value is empty (not applicable or not known)
    missing: int
    minimum: float | None
    q1: float | None
    median: float | None
    q3: float | None
    maximum: float | None


def quantile(ordered: Sequence[float], p: float) -> float:
    """The ``p`` quantile (0..1) of an ascending, non-empty sequence (type 7)."""
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * p
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution(values: Iterable[float | int | bool | None]) -> Distribution:
    given = list(values)
    ordered = sorted(float(v) for v in given if v is not None)
    missing = len(given) - len(ordered)
    if not ordered:
        return Distribution(0, missing, None, None, None, None, None)
    return Distribution(len(ordered), missing, ordered[0], quantile(ordered, 0.25),
                        float(median(ordered)), quantile(ordered, 0.75), ordered[-1])


@dataclass(frozen=True)
class Histogram:
    """Counts of values in equal-width bins over [low, high]; the last bin includes high."""

    edges: list[float]
    counts: list[int]


def histogram(values: Iterable[float | None], *, low: float = 0.0, high: float = 1.0,
              bins: int = 5) -> Histogram:
    width = (high - low) / bins
    edges = [low + width * i for i in range(bins + 1)]
    counts = [0] * bins
    for value in values:
        if value is None or not low <= value <= high:
            continue
        counts[min(int((value - low) / width), bins - 1)] += 1
    return Histogram(edges, counts)
