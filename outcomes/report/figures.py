"""The report's figures, drawn with matplotlib's Agg backend (no display) as PNG bytes.

Figures are made with ``matplotlib.figure.Figure`` directly, never through ``pyplot``:
no global figure state, so concurrent requests in threaded workers cannot mix figures,
and nothing needs closing.

Pure functions of the numbers they are given: no queries. Each returns a
:class:`~outcomes.report.document.Figure` with alt text that says what it shows.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from outcomes.report.document import Figure

COLOURS = ("#1f5f8b", "#c4582b", "#3a7d44", "#7a4f9e", "#8c6d1f")
DPI = 96


def _png(fig: MplFigure) -> bytes:
    buffer = io.BytesIO()
    # fixed metadata so that the same numbers give the same bytes
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight",
                metadata={"Software": None})
    return buffer.getvalue()


def _axes(width: float, height: float) -> tuple[MplFigure, Any]:
    fig = MplFigure(figsize=(width, height))
    return fig, fig.subplots()


def _plain(text: object) -> str:
    """Text as given: a ``$`` in an arm or timepoint name must not start mathtext."""
    return str(text).replace("$", r"\$")


def _wrap(text: str, width: int) -> str:
    return _plain("\n".join(textwrap.wrap(str(text), width)) or str(text))


def consort(name: str, before: Sequence[tuple[str, int]],
            by_arm: dict[str, Sequence[tuple[str, int]]]) -> Figure:
    """A flow diagram: the stages before allocation in a column, then one column per arm
    headed by the arm's name."""
    arms = list(by_arm)
    rows_after = max((len(v) for v in by_arm.values()), default=0)
    steps = len(before) + rows_after + (1 if arms else 0)
    width = max(len(arms), 1)
    fig, ax = _axes(max(6.4, 3.4 * width), 0.95 * steps + 0.5)
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(-steps + 0.5, 0.5)
    box = {"boxstyle": "round,pad=0.4", "facecolor": "#eef3f7", "edgecolor": "#1f5f8b"}
    y = 0.0
    for label, count in before:
        ax.text(width / 2, y, f"{_wrap(label, 40)}\nn = {count}", ha="center", va="center",
                fontsize=9, bbox=box)
        y -= 1
    for column, arm in enumerate(arms):
        ax.text(column + 0.5, y, _wrap(arm, 26), ha="center", va="center", fontsize=10,
                fontweight="bold")
        for row, (label, count) in enumerate(by_arm[arm], start=1):
            ax.text(column + 0.5, y - row, f"{_wrap(label, 26)}\nn = {count}", ha="center",
                    va="center", fontsize=8, bbox=box)
    alt = "CONSORT flow: " + "; ".join(f"{label} {count}" for label, count in before) + "; " \
        + "; ".join(f"{arm}: " + ", ".join(f"{label} {count}" for label, count in rows)
                    for arm, rows in by_arm.items())
    return Figure(name, alt, _png(fig))


def trajectories(name: str, title: str, labels: Sequence[str],
                 series: dict[str, list[tuple[float, float, float] | None]]) -> Figure:
    """Mean and 95 % CI per timepoint, one line per arm (``series``: arm -> per timepoint
    (mean, low, high) or None)."""
    fig, ax = _axes(6.4, 3.8)
    for n, (arm, points) in enumerate(series.items()):
        xs = [i + (n - (len(series) - 1) / 2) * 0.06 for i, p in enumerate(points) if p]
        means = [p[0] for p in points if p]
        lows = [p[0] - p[1] if p[1] == p[1] else 0 for p in points if p]
        highs = [p[2] - p[0] if p[2] == p[2] else 0 for p in points if p]
        ax.errorbar(xs, means, yerr=[lows, highs], marker="o", capsize=3, label=_plain(arm),
                    color=COLOURS[n % len(COLOURS)])
    ax.set_xticks(range(len(labels)), [_wrap(label, 14) for label in labels])
    ax.set_title(_plain(title))
    ax.set_ylabel("Mean (95 % CI)")
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return Figure(name, f"{title}: mean and 95 % confidence interval per timepoint by arm.",
                  _png(fig))


def box_plot(name: str, title: str, groups: dict[str, list[float]], ylabel: str) -> Figure:
    fig, ax = _axes(6.4, 3.6)
    ax.boxplot(list(groups.values()), tick_labels=[_plain(g) for g in groups], showmeans=True)
    ax.set_title(_plain(title))
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return Figure(name, f"{title}: box plot by arm (box: quartiles; line: median; "
                        "triangle: mean).", _png(fig))


def scatter(name: str, title: str, groups: dict[str, tuple[list[float], list[float]]],
            xlabel: str, ylabel: str) -> Figure:
    fig, ax = _axes(6.4, 3.8)
    for n, (arm, (xs, ys)) in enumerate(groups.items()):
        ax.scatter(xs, ys, s=18, alpha=0.7, label=_plain(arm), color=COLOURS[n % len(COLOURS)])
    ax.set_title(_plain(title))
    ax.set_xlabel(_plain(xlabel))
    ax.set_ylabel(_plain(ylabel))
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return Figure(name, f"{title}: one point per participant, by arm.", _png(fig))


def weekly(name: str, title: str, series: dict[str, tuple[list[int], list[float]]]) -> Figure:
    fig, ax = _axes(6.4, 3.6)
    for n, (arm, (weeks, means)) in enumerate(series.items()):
        ax.plot(weeks, means, marker="o", label=_plain(arm), color=COLOURS[n % len(COLOURS)])
    ax.set_title(_plain(title))
    week_axis(ax, [week for weeks, _means in series.values() for week in weeks])
    ax.set_ylabel("Mean answer")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return Figure(name, f"{title}: weekly mean of the daily answers by arm.", _png(fig))


def week_axis(ax: Axes, weeks: Sequence[int]) -> None:
    """Whole weeks on the x axis (one week of data gave ticks 0.96, 0.98 ... 1.04)."""
    ax.set_xlabel("Week since randomisation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if weeks and min(weeks) == max(weeks):
        ax.set_xlim(weeks[0] - 1, weeks[0] + 1)
