"""The report as HTML: a self-contained folder for ``flask outcomes report``
(``report.html`` and ``figures/*.png``), and the researcher page's body, cached on disk
under the instance folder keyed by the snapshot checksum (the same data give the same
checksum, so a reload, and the figure requests that follow a page, cost one export instead
of every model and figure again).

Needs an app context (templates, instance folder). Read-only on the database (see
:mod:`outcomes.report`); writes only files.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

from flask import current_app, render_template, url_for
from markupsafe import Markup

from core.clock import utcnow
from outcomes import report as reports
from outcomes.models import Study
from outcomes.report.document import Report

#: rendered reports kept on disk (the newest ones)
KEEP = 8
CHECKSUM = re.compile(r"^[0-9a-f]{64}$")
FIGURE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}$")


def write_folder(report: Report, folder: Path) -> list[Path]:
    """``report.html`` and its figures under ``folder`` (made if missing)."""
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in report.figures().items():
        target = figures / f"{name}.png"
        target.write_bytes(figure.png)
        written.append(target)
    page = folder / "report.html"
    page.write_text(render_template("outcomes/report/standalone.html", report=report,
                                    figure_src=lambda name: f"figures/{name}.png"),
                    encoding="utf-8")
    return [page, *written]


def cache_root() -> Path:
    """``REPORT_CACHE_DIR`` when set, else ``report-cache`` in the instance folder."""
    configured = current_app.config.get("REPORT_CACHE_DIR")
    if configured:
        return Path(configured)
    instance = current_app.config.get("INSTANCE_DIR") or current_app.instance_path
    return Path(instance) / "report-cache"


def snapshot_time(now: datetime | None = None) -> datetime:
    """The page's snapshot moment: the current minute, so that reloads within it (and the
    figure requests of one page) find the cached report."""
    return (now or utcnow()).replace(second=0, microsecond=0)


def page_body(study: Study, *, now: datetime | None = None) -> tuple[Markup, str]:
    """The report body for the researcher page and its checksum, from the cache when the
    snapshot's checksum has been rendered before."""
    result, frames = reports.snapshot(study, now=snapshot_time(now))
    folder = cache_root() / result.checksum
    body_file = folder / "body.html"
    if body_file.is_file():
        return Markup(body_file.read_text(encoding="utf-8")), result.checksum  # noqa: S704
    report = reports.assemble(study, result, frames)
    body = render_template(
        "outcomes/report/_body.html", report=report,
        figure_src=lambda name: url_for("outcomes.report_figure", checksum=report.checksum,
                                        figure=name))
    _store(folder, report, body)
    return Markup(body), report.checksum  # noqa: S704 (our own template's output)


def _store(folder: Path, report: Report, body: str) -> None:
    """Write the figures first and the body last (a body on disk means a complete entry),
    via a temporary folder so a concurrent request never reads half an entry."""
    root = folder.parent
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f".{folder.name}.{id(report)}"
    (temporary / "figures").mkdir(parents=True, exist_ok=True)
    for name, figure in report.figures().items():
        (temporary / "figures" / f"{name}.png").write_bytes(figure.png)
    (temporary / "body.html").write_text(body, encoding="utf-8")
    try:
        temporary.rename(folder)
    except OSError:  # another request stored the same snapshot first
        shutil.rmtree(temporary, ignore_errors=True)
    _prune(root)


def _prune(root: Path) -> None:
    entries = sorted((p for p in root.iterdir() if p.is_dir() and CHECKSUM.match(p.name)),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def figure_file(checksum: str, name: str) -> Path | None:
    """The cached PNG of a figure, or None (unknown, pruned, or a malformed name)."""
    if not CHECKSUM.match(checksum) or not FIGURE_NAME.match(name):
        return None
    path = cache_root() / checksum / "figures" / f"{name}.png"
    return path if path.is_file() else None
