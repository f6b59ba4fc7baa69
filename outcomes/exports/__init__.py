"""Researcher exports: pseudonymised, analysis-ready tables with a codebook.

``REGISTRY`` maps each table name to the function that builds it as a pandas DataFrame
from a :class:`~outcomes.exports.context.Context`; ``tables_for`` builds them all (and the
codebook) for a study. The researcher page, ``flask outcomes export`` and the analysis
report all read the same functions. ``bundle`` writes them in one format with a README and
SHA-256 checksums, and audit-logs the export.

Transaction contract: everything is read-only except the first export of a study, which
creates (flushes) the study's pseudonym secret, and ``bundle.export``, which appends an
audit entry (flushes). The caller commits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd

from outcomes.exports import activity, tables
from outcomes.exports import codebook as _codebook
from outcomes.exports.context import Context, for_study
from outcomes.models import Study

#: table name -> builder, in the order the files are listed (the codebook comes last)
REGISTRY: dict[str, Callable[[Context], pd.DataFrame]] = {
    "participants": tables.participants,
    "assessments_long": tables.assessments_long,
    "scores_wide": tables.scores_wide,
    "adherence": tables.adherence,
    "events": tables.events,
    "sms": activity.sms,
    "moderation": activity.moderation,
    "consort": activity.consort,
}
NAMES = (*REGISTRY, "codebook")

__all__ = ["NAMES", "REGISTRY", "Context", "for_study", "tables_for"]


def tables_for(study: Study, *, now: datetime | None = None
               ) -> tuple[Context, dict[str, pd.DataFrame]]:
    """Every export table of ``study`` and its codebook, as of ``now``."""
    ctx = for_study(study, now=now)
    frames = {name: build(ctx) for name, build in REGISTRY.items()}
    frames["codebook"] = _codebook.describe(ctx, frames)
    return ctx, frames
