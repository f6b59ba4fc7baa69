"""Server-side SVG charts, safe under the site's CSP.

The markup is built here, escaped here, and embedded inline: no scripts, no
``style`` attributes (presentation attributes only), and ``currentColor`` so the
chart follows the page's light or dark text colour. Meaning never rests on colour:
the chart has a title and a description, the value axis is labelled with words,
dates are labelled, and each point carries its own ``<title>``. Pages show the
same values as a table too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 250
LEFT, RIGHT, TOP, BOTTOM = 100, 12, 14, 40


def mood_chart(entries: Iterable[tuple[date, int]], *, end: date, days: int = 30,
               scale: Sequence[tuple[int, str, str]], chart_id: str = "mood-chart") -> Markup:
    """A line chart of daily mood scores from ``end - days + 1`` to ``end``.

    ``entries`` are (local date, score) pairs; days without an entry leave a gap
    in the line. ``scale`` is ``[(value, word, symbol)]`` from low to high.
    """
    start = end - timedelta(days=days - 1)
    points = sorted((d, s) for d, s in entries if start <= d <= end)
    words = {value: word for value, word, _ in scale}
    low, high = min(words), max(words)
    span_x = (WIDTH - LEFT - RIGHT) / max(days - 1, 1)
    span_y = (HEIGHT - TOP - BOTTOM) / max(high - low, 1)

    def x(day: date) -> float:
        return round(LEFT + (day - start).days * span_x, 1)

    def y(score: int) -> float:
        return round(TOP + (high - score) * span_y, 1)

    title = f"Your mood, {_day(start)} to {_day(end)}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" class="chart" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-size="15" '
        f'font-family="system-ui, sans-serif" fill="currentColor">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(_describe(points, words, days))}</desc>',
    ]
    parts += _value_axis(words, y)
    parts += _date_axis(start, end, x)
    parts += _line(points, x, y)
    parts += [_point(day, score, words, x, y) for day, score in points]
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every text part above is escaped


def _day(day: date) -> str:
    return f"{day.day} {day:%b}"


def _describe(points: list[tuple[date, int]], words: dict[int, str], days: int) -> str:
    if not points:
        return f"No moods logged in the last {days} days."
    scores = [score for _, score in points]
    average = sum(scores) / len(scores)
    last_day, last_score = points[-1]
    return (f"Logged on {len(points)} of the last {days} days. Average {average:.1f} out of "
            f"{max(words)}. Most recent: {words.get(last_score, last_score)} "
            f"({last_score}) on {_day(last_day)}.")


def _value_axis(words: dict[int, str], y) -> list[str]:
    lines = []
    for value in sorted(words):
        lines.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value)}" y2="{y(value)}" '
                     f'stroke="currentColor" stroke-opacity="0.2" stroke-width="1"/>')
        lines.append(f'<text x="{LEFT - 8}" y="{y(value) + 5}" text-anchor="end">'
                     f'{value} {escape(words[value])}</text>')
    return lines


def _date_axis(start: date, end: date, x) -> list[str]:
    """A date label every week, counted back from ``end`` so the last day is labelled."""
    base = HEIGHT - BOTTOM
    lines = [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" '
             f'stroke="currentColor" stroke-opacity="0.5" stroke-width="1"/>']
    day = end
    while day >= start:
        lines.append(f'<line x1="{x(day)}" x2="{x(day)}" y1="{base}" y2="{base + 6}" '
                     f'stroke="currentColor" stroke-width="1"/>')
        anchor = "end" if day == end else "middle"
        lines.append(f'<text x="{x(day)}" y="{base + 24}" text-anchor="{anchor}">'
                     f'{escape(_day(day))}</text>')
        day -= timedelta(days=7)
    return lines


def _line(points: list[tuple[date, int]], x, y) -> list[str]:
    """One polyline per run of consecutive days: a missing day is a visible gap."""
    runs: list[list[tuple[date, int]]] = []
    for day, score in points:
        if runs and (day - runs[-1][-1][0]).days == 1:
            runs[-1].append((day, score))
        else:
            runs.append([(day, score)])
    return ['<polyline fill="none" stroke="currentColor" stroke-width="2.5" '
            'stroke-linejoin="round" points="'
            + " ".join(f"{x(d)},{y(s)}" for d, s in run) + '"/>'
            for run in runs if len(run) > 1]


def _point(day: date, score: int, words: dict[int, str], x, y) -> str:
    label = f"{_day(day)}: {words.get(score, score)} ({score})"
    return (f'<circle cx="{x(day)}" cy="{y(score)}" r="5" fill="currentColor">'
            f"<title>{escape(label)}</title></circle>")
