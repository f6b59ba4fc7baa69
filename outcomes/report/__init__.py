"""The built-in effectiveness report: CONSORT flow, baseline characteristics, outcome
trajectories, the primary analysis (ANCOVA, Hedges' g), intention to treat against
completers (mixed models), reliable change, adherence, guided against unguided arms and
the SMS symptom series, with figures.

Built only from the export tables (``outcomes.exports``) of one snapshot, whose bundle
checksum the report names, plus the study's set-up for the analysis settings
(``settings``). ``build`` computes it; ``render`` writes it as HTML for the researcher
page or as a self-contained folder for ``flask outcomes report``; ``cache`` keeps rendered
reports keyed by the snapshot checksum.

Transaction contract: read-only, except that the first export of a study creates (flushes)
its pseudonym secret, and ``record_view`` appends an ``outcomes.report`` audit entry
(flushes): looks at interim results are worth a record while a trial runs. The caller
commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd

from core import audit
from outcomes.exports import bundle
from outcomes.models import Study
from outcomes.report import effects, sections
from outcomes.report.document import Report, Section
from outcomes.report.settings import Settings, package_versions, settings_for

logger = logging.getLogger(__name__)

#: the sections, in the order the report shows them
SECTIONS = (sections.consort, sections.baseline, effects.trajectories, effects.primary,
            effects.itt, effects.reliable_change, sections.adherence, sections.guided,
            sections.sms_series)

__all__ = ["SECTIONS", "Report", "Section", "assemble", "build", "record_view", "snapshot"]


def build(study: Study, *, now: datetime | None = None) -> Report:
    """The report of ``study`` as of ``now``, from the export tables of that snapshot."""
    return assemble(study, *snapshot(study, now=now))


def snapshot(study: Study, *, now: datetime | None = None
             ) -> tuple[bundle.Bundle, dict[str, pd.DataFrame]]:
    """The export of ``study`` as of ``now`` (its checksum keys the report cache) and its
    tables."""
    return bundle.snapshot(study, "csv", now=now)


def assemble(study: Study, result: bundle.Bundle, frames: dict[str, pd.DataFrame]) -> Report:
    """Every section, worked out from the tables of one snapshot."""
    settings = settings_for(study)
    return Report(
        study_name=study.name, study_slug=study.slug, snapshot_at=result.at,
        checksum=result.checksum, software=bundle.software_version(),
        settings=settings.describe(), packages=package_versions(),
        sections=[_section(make, frames, settings) for make in SECTIONS])


def _section(make: Callable[..., Section], frames: dict[str, pd.DataFrame],
             settings: Settings) -> Section:
    """One section; a model that fails in a way the section did not foresee costs that
    section (with a note, and the error in the log), never the whole report."""
    try:
        return make(frames, settings)
    except Exception:  # noqa: BLE001 - the report must open whatever the data
        logger.exception("report section %s failed", make.__name__)
        return Section(make.__name__, make.__name__.replace("_", " ").capitalize(),
                       notes=["This section could not be computed from the current data; "
                              "the error is in the application log."])


def record_view(study: Study, checksum: str, *, actor: Any, via: str) -> None:
    """Audit-log that ``actor`` (None from the command line) produced or read the report of
    the snapshot ``checksum``. Flushes; the caller commits."""
    audit.record("outcomes.report", actor=actor, target=study, via=via, checksum=checksum)
