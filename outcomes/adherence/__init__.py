"""Adherence and dropout: what each participant did with the intervention, per period.

- ``definitions``: the codebook (``DEFINITIONS``: metric -> label, type, values,
  definition) and which activity-event kinds count as use, intervention and so on.
- ``sources``: reads everything for a set of participants in a fixed number of queries.
- ``metrics``: the figures per participant for the trial so far (``adherence``,
  ``for_study``) or per trial week (``weekly``).
- ``summary``: distributions by arm for the dashboard.

Read-only throughout. ``metrics`` reads the modules package, whose gamification imports
``outcomes.services``, which imports this package: so the metric functions are loaded on
first use (PEP 562), and importing this package stays free of that cycle.
"""

from __future__ import annotations

from typing import Any

from outcomes.adherence.definitions import (
    DEFAULT_STOPPED_AFTER_DAYS,
    DEFINITIONS,
    INTERVENTION_KINDS,
    USE_KINDS,
)

_LAZY = ("Adherence", "adherence", "for_study", "weekly")

__all__ = ["DEFAULT_STOPPED_AFTER_DAYS", "DEFINITIONS", "INTERVENTION_KINDS", "USE_KINDS",
           *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from outcomes.adherence import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
