"""What a report is made of (sections of notes, tables and figures) and the analysis
frames every section reads, made from the export tables only. No queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from outcomes.report.settings import Settings
from outcomes.report.stats import Estimate


@dataclass(frozen=True)
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    #: file name (letters, digits, dashes), without ".png"
    name: str
    alt: str
    png: bytes


@dataclass
class Section:
    key: str
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    #: the numbers behind the tables, unrounded (for tests and re-use)
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    study_name: str
    study_slug: str
    snapshot_at: datetime
    #: the export checksum (SHA-256 of SHA256SUMS) of the bundle of the same snapshot
    checksum: str
    software: str
    settings: list[tuple[str, str]]
    packages: list[tuple[str, str]]
    sections: list[Section]

    def figures(self) -> dict[str, Figure]:
        return {f.name: f for s in self.sections for f in s.figures}


# --- formatting ------------------------------------------------------------------------------

def number(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def estimate(value: Estimate, digits: int = 2) -> str:
    """``1.23 (0.45 to 2.01)``."""
    return f"{number(value.value, digits)} ({number(value.low, digits)} to " \
           f"{number(value.high, digits)})"


def p_value(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def percent(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.0%})" if whole else "0"


# --- analysis frames -------------------------------------------------------------------------

def randomised(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The randomised participants (the intention-to-treat population): pseudonym, arm."""
    people = frames["participants"]
    people = people[people["randomised"].astype(bool) & (people["arm"].astype(str) != "")]
    return people[["pseudonym", "arm"]].reset_index(drop=True)


def score_column(instrument: str, timepoint: str) -> str:
    return f"{instrument}_total_{timepoint}"


def long_scores(frames: dict[str, pd.DataFrame], settings: Settings,
                instrument: str) -> pd.DataFrame:
    """participant, arm, time (timepoint key), position, score: one row per randomised
    participant and timepoint with a total of ``instrument``."""
    wide = frames["scores_wide"].merge(randomised(frames)[["pseudonym"]], on="pseudonym")
    parts = []
    for tp in settings.timepoints:
        column = score_column(instrument, tp.key)
        if column not in wide.columns:
            continue
        parts.append(pd.DataFrame({"participant": wide["pseudonym"], "arm": wide["arm"],
                                   "time": tp.key, "position": tp.position,
                                   "score": wide[column].astype("float64")}))
    if not parts:
        return pd.DataFrame(columns=["participant", "arm", "time", "position", "score"])
    return pd.concat(parts, ignore_index=True).dropna(subset=["score"])


def pre_post(frames: dict[str, pd.DataFrame], settings: Settings,
             instrument: str) -> pd.DataFrame:
    """participant, arm, baseline, post, change for every randomised participant (scores
    empty where missing)."""
    wide = frames["scores_wide"].merge(randomised(frames)[["pseudonym"]], on="pseudonym")

    def column(tp: str | None) -> pd.Series:
        name = score_column(instrument, tp or "")
        return wide[name].astype("float64") if name in wide.columns else pd.Series(
            float("nan"), index=wide.index)

    data = pd.DataFrame({"participant": wide["pseudonym"], "arm": wide["arm"],
                         "baseline": column(settings.baseline), "post": column(settings.post)})
    data["change"] = data["post"] - data["baseline"]
    return data
