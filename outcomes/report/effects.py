"""The outcome sections of the report: trajectories, the primary analysis (ANCOVA and
Hedges' g), intention to treat against completers (mixed models) and reliable change.

Each function takes the export frames and the settings and returns a
:class:`~outcomes.report.document.Section`; too few data give a note, never an error.
No queries.
"""

from __future__ import annotations

import pandas as pd

from outcomes.report import figures, stats
from outcomes.report.document import (
    Section,
    Table,
    estimate,
    long_scores,
    number,
    p_value,
    percent,
    pre_post,
)
from outcomes.report.settings import HIGHER_IS_BETTER, RELIABILITY, Settings

Frames = dict[str, pd.DataFrame]


def _absent_note(settings: Settings) -> list[str]:
    return [f"{name}: not defined on this platform, so not analysed."
            for name in settings.absent]


def _no_endpoints(settings: Settings) -> str | None:
    if settings.baseline is None or settings.post is None:
        return ("The schedule names no baseline or no post-treatment timepoint, so this "
                "analysis cannot be run.")
    if settings.reference is None or len(settings.arms) < 2:
        return "The study has fewer than two arms: there is nothing to compare."
    return None


def trajectories(frames: Frames, settings: Settings) -> Section:
    section = Section("trajectories", "Outcome trajectories by arm",
                      notes=_absent_note(settings))
    labels = [t.label for t in settings.timepoints]
    for instrument, name in settings.outcomes.items():
        data = long_scores(frames, settings, instrument)
        if data.empty:
            section.notes.append(f"{name}: no scores yet.")
            continue
        series: dict[str, list] = {}
        rows = []
        for arm in settings.arms:
            points = []
            for tp in settings.timepoints:
                ci = stats.mean_ci(data.loc[(data["arm"] == arm.code) & (data["time"] == tp.key),
                                            "score"])
                points.append((ci.mean, ci.low, ci.high) if ci else None)
                rows.append([tp.label, arm.name, str(ci.n) if ci else "0",
                             f"{number(ci.mean)} ({number(ci.low)} to {number(ci.high)})"
                             if ci else "–"])
                section.results[(instrument, arm.code, tp.key)] = ci
            series[arm.name] = points
        section.tables.append(Table(f"{name}: mean (95 % CI) by timepoint and arm",
                                    ["Timepoint", "Arm", "n", "Mean (95 % CI)"], rows))
        section.figures.append(figures.trajectories(
            f"trajectory-{instrument}", f"{name} by arm", labels, series))
    return section


def _endpoint_section(key: str, title: str, settings: Settings) -> tuple[Section, bool]:
    """A section comparing baseline and post-treatment scores; ``False`` when the study
    has no such endpoints to compare (the section then says why)."""
    section = Section(key, title, notes=_absent_note(settings))
    problem = _no_endpoints(settings)
    if problem:
        section.notes.append(problem)
    return section, not problem


def primary(frames: Frames, settings: Settings) -> Section:
    section, ready = _endpoint_section(
        "primary", "Primary analysis: ANCOVA and Hedges' g", settings)
    if not ready:
        return section
    rows = []
    for instrument, name in settings.outcomes.items():
        data = pre_post(frames, settings, instrument)
        try:
            adjusted = stats.ancova(data, settings.reference, settings.confidence)
        except stats.TooFewData as exc:
            section.notes.append(f"{name}: too few data for the ANCOVA ({exc}).")
            continue
        for arm, diff in adjusted.items():
            complete = data.dropna(subset=["baseline", "post"])
            try:
                g = stats.hedges_g(complete.loc[complete["arm"] == arm, "post"],
                                   complete.loc[complete["arm"] == settings.reference, "post"],
                                   settings.confidence)
                g_text = estimate(g)
            except stats.TooFewData as exc:
                g, g_text = None, f"too few data ({exc})"
            section.results[(instrument, arm)] = {"ancova": diff, "g": g,
                                                  "n": len(complete)}
            rows.append([name, f"{settings.arm_name(arm)} vs "
                               f"{settings.arm_name(settings.reference)}",
                         str(len(complete)), estimate(diff), p_value(diff.p), g_text])
    if rows:
        section.tables.append(Table(
            "Post-treatment score adjusted for baseline: difference from the comparison arm",
            ["Outcome", "Contrast", "n (complete cases)", "Adjusted difference (95 % CI)",
             "p", "Hedges' g (95 % CI)"], rows))
    return section


def _completers(data: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    has = data.groupby("participant")["time"].agg(set)
    keep = has[has.map(lambda times: {settings.baseline, settings.post} <= times)].index
    return data[data["participant"].isin(keep)]


def itt(frames: Frames, settings: Settings) -> Section:
    section, ready = _endpoint_section(
        "itt", "Intention to treat (mixed model) and completers only", settings)
    if not ready:
        return section
    rows = []
    for instrument, name in settings.outcomes.items():
        data = long_scores(frames, settings, instrument)
        completers = _completers(data, settings)
        fits = {"itt": _fit(data, settings)}
        # everybody complete: the same model on the same rows (fitted once; it is the
        # report's slowest step)
        fits["completers"] = (fits["itt"] if len(completers) == len(data)
                              else _fit(completers, settings))
        section.results[instrument] = fits
        for arm in [a.code for a in settings.arms if a.code != settings.reference]:
            rows.append([name, f"{settings.arm_name(arm)} vs "
                               f"{settings.arm_name(settings.reference)}",
                         *_fit_cells(fits["itt"], arm), *_fit_cells(fits["completers"], arm)])
    if rows:
        section.tables.append(Table(
            "Time x arm at the post-treatment timepoint (difference in mean change from "
            "baseline), side by side",
            ["Outcome", "Contrast", "ITT n (obs.)", "ITT estimate (95 % CI)", "ITT p",
             "Completers n (obs.)", "Completers estimate (95 % CI)", "Completers p"], rows))
        section.notes.append("ITT: every randomised participant's available scores at every "
                             "timepoint. Completers: only participants with both the baseline "
                             "and the post-treatment score.")
    return section


def _fit(data: pd.DataFrame, settings: Settings) -> stats.MixedResult | str:
    """The mixed model, or why it could not be fitted."""
    try:
        return stats.mixed_model(data, reference=settings.reference, baseline=settings.baseline,
                                 post=settings.post, confidence=settings.confidence)
    except stats.TooFewData as exc:
        return str(exc)


def _fit_cells(fit: stats.MixedResult | str, arm: str) -> list[str]:
    if isinstance(fit, str):
        return ["–", f"too few data ({fit})", "–"]
    value = fit.interaction[arm]
    flag = "" if fit.converged else " (did not converge)"
    return [f"{fit.participants} ({fit.observations})", estimate(value) + flag,
            p_value(value.p)]


def reliable_change(frames: Frames, settings: Settings) -> Section:
    section, ready = _endpoint_section(
        "reliable_change", "Reliable change (Jacobson-Truax)", settings)
    if not ready:
        return section
    rows = []
    for instrument, name in settings.outcomes.items():
        alpha, source = RELIABILITY[instrument]
        data = pre_post(frames, settings, instrument)
        try:
            change = stats.reliable_change(data["baseline"], data["post"], reliability=alpha,
                                           higher_is_better=HIGHER_IS_BETTER[instrument])
        except stats.TooFewData as exc:
            section.notes.append(f"{name}: too few data for reliable change ({exc}).")
            continue
        section.notes.append(
            f"{name}: reliability alpha = {alpha:.2f} ({source}); baseline SD "
            f"{change.baseline_sd:.2f}; a change of at least {change.threshold:.2f} points "
            f"is reliable.")
        categories = data.loc[change.category.index, "arm"].to_frame().assign(
            category=change.category)
        for arm in settings.arms:
            mine = categories[categories["arm"] == arm.code]["category"]
            counts = mine.value_counts()
            improved, worse = int(counts.get("improved", 0)), int(counts.get("deteriorated", 0))
            section.results[(instrument, arm.code)] = {"n": len(mine), "improved": improved,
                                                       "deteriorated": worse}
            rows.append([name, arm.name, str(len(mine)), percent(improved, len(mine)),
                         percent(worse, len(mine))])
    if rows:
        section.tables.append(Table("Reliable improvement (response) and deterioration by arm",
                                    ["Outcome", "Arm", "n (both scores)", "Improved",
                                     "Deteriorated"], rows))
    return section
