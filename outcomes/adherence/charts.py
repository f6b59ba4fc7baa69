"""A server-side SVG box plot of one adherence measure by arm, safe under the CSP.

Built like ``modules.charts``: no scripts, no ``style`` attributes, ``currentColor``,
a title and a description, every text escaped here, and each box with its own
``<title>``. The dashboard shows the same figures in a table, so the chart adds a picture,
never information that only the picture holds.

Each arm's name sits above its box, across the chart's whole width: arm names are the
researchers' own and can be long ("Kinship with moderators" did not fit in a left margin
and was cut). A name longer than the width is shortened with an ellipsis; the
description, each box's title and the table keep it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from outcomes.adherence.summary import Distribution

WIDTH = 480
LEFT, RIGHT, TOP, ROW, AXIS = 16, 24, 4, 60, 40
#: characters of an arm's name that fit across the chart (14 px bold: about 8.5 px each)
NAME_CHARACTERS = 52


def box_plot(groups: Sequence[tuple[str, Distribution]], *, title: str, low: float,
             high: float, show: Callable[[float | None], str], chart_id: str) -> Markup:
    """One horizontal box (quartiles), median line and whiskers (range) per group, on a
    common axis from ``low`` to ``high``; ``show`` turns a value into text."""
    height = TOP + ROW * max(len(groups), 1) + AXIS
    span = (WIDTH - LEFT - RIGHT) / ((high - low) or 1)

    def x(value: float) -> float:
        return round(LEFT + (min(max(value, low), high) - low) * span, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" class="chart" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-size="14" '
        f'font-family="system-ui, sans-serif" fill="currentColor">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(_describe(groups, show))}</desc>',
    ]
    for number, (label, dist) in enumerate(groups):
        parts += _box(label, dist, TOP + ROW * number, x, show)
    parts += _axis(low, high, TOP + ROW * len(groups), x, show)
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every text part above is escaped


def _describe(groups: Sequence[tuple[str, Distribution]],
              show: Callable[[float | None], str]) -> str:
    return " ".join(
        f"{label}: no values." if not dist.n else
        f"{label}: median {show(dist.median)}, interquartile range {show(dist.q1)} to "
        f"{show(dist.q3)}, range {show(dist.minimum)} to {show(dist.maximum)}, n {dist.n}."
        for label, dist in groups)


def _box(label: str, dist: Distribution, row_top: float, x: Callable[[float], float],
         show: Callable[[float | None], str]) -> list[str]:
    name = label if len(label) <= NAME_CHARACTERS else label[:NAME_CHARACTERS - 1] + "…"
    parts = [f'<text x="{LEFT}" y="{row_top + 16}" font-weight="600">{escape(name)}</text>']
    middle = row_top + 38
    five = (dist.minimum, dist.q1, dist.median, dist.q3, dist.maximum)
    if None in five:
        return parts + [f'<text x="{LEFT}" y="{middle + 5}">no values</text>']
    least, q1, median, q3, most = (x(v) for v in five)  # type: ignore[arg-type]
    top, bottom = middle - 12, middle + 12
    tip = (f"{label}: median {show(dist.median)}, quartiles {show(dist.q1)} to "
           f"{show(dist.q3)}, range {show(dist.minimum)} to {show(dist.maximum)}")
    line = 'stroke="currentColor" stroke-width="2"'
    return parts + [
        f'<g><title>{escape(tip)}</title>',
        f'<line x1="{least}" x2="{q1}" y1="{middle}" y2="{middle}" {line}/>',
        f'<line x1="{q3}" x2="{most}" y1="{middle}" y2="{middle}" {line}/>',
        f'<line x1="{least}" x2="{least}" y1="{top + 6}" y2="{bottom - 6}" {line}/>',
        f'<line x1="{most}" x2="{most}" y1="{top + 6}" y2="{bottom - 6}" {line}/>',
        f'<rect x="{q1}" y="{top}" width="{round(q3 - q1, 1)}" height="24" '
        f'fill="currentColor" fill-opacity="0.15" {line}/>',
        f'<line x1="{median}" x2="{median}" y1="{top}" y2="{bottom}" '
        f'stroke="currentColor" stroke-width="4"/>',
        "</g>",
    ]


def _axis(low: float, high: float, base: float, x: Callable[[float], float],
          show: Callable[[float | None], str]) -> list[str]:
    parts = [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" '
             f'stroke="currentColor" stroke-opacity="0.5" stroke-width="1"/>']
    for step in range(5):
        value = low + (high - low) * step / 4
        anchor = "start" if step == 0 else "end" if step == 4 else "middle"
        parts.append(f'<line x1="{x(value)}" x2="{x(value)}" y1="{base}" y2="{base + 6}" '
                     f'stroke="currentColor" stroke-width="1"/>')
        parts.append(f'<text x="{x(value)}" y="{base + 24}" text-anchor="{anchor}">'
                     f'{escape(show(value))}</text>')
    return parts
