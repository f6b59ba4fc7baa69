"""The study-process sections of the report: CONSORT flow, baseline characteristics,
adherence (and its association with outcome change), guided against unguided arms, and
the SMS symptom series.

Each function takes the export frames and the settings and returns a
:class:`~outcomes.report.document.Section`; too few data give a note. No queries.
"""

from __future__ import annotations

import pandas as pd

from outcomes.report import figures, stats
from outcomes.report.document import (
    Section,
    Table,
    estimate,
    number,
    p_value,
    percent,
    pre_post,
    randomised,
    score_column,
)
from outcomes.report.settings import Settings

Frames = dict[str, pd.DataFrame]


def consort(frames: Frames, settings: Settings) -> Section:
    section = Section("consort", "CONSORT flow by arm")
    flow = frames["consort"]
    if flow.empty:
        section.notes.append("No participants yet.")
        return section
    stages = flow.drop_duplicates("stage").sort_values("order")
    split = set(flow.loc[flow["arm"] != "all", "stage"])
    codes = [a.code for a in settings.arms]
    rows, before, by_arm = [], [], {settings.arm_name(c): [] for c in codes}
    for stage, label in stages[["stage", "label"]].itertuples(index=False):
        counts = flow[flow["stage"] == stage].set_index("arm")["count"]
        total = int(counts.get("all", 0))
        per_arm = [int(counts.get(code, 0)) for code in codes] if stage in split else []
        section.results[stage] = {"all": total, **dict(zip(codes, per_arm, strict=False))}
        rows.append([label, *(str(n) for n in per_arm or [""] * len(codes)), str(total)])
        if stage in split:
            for code, n in zip(codes, per_arm, strict=True):
                by_arm[settings.arm_name(code)].append((label, n))
        else:
            before.append((label, total))
    section.tables.append(Table("Participants at each stage",
                                ["Stage", *(settings.arm_name(c) for c in codes), "All"], rows))
    section.figures.append(figures.consort("consort", before, by_arm))
    return section


def baseline(frames: Frames, settings: Settings) -> Section:
    section = Section("baseline", "Baseline characteristics by arm")
    people = frames["participants"].merge(randomised(frames)[["pseudonym"]], on="pseudonym")
    if people.empty:
        section.notes.append("Nobody has been randomised yet.")
        return section
    arms = settings.arms
    groups = {a.code: people[people["arm"] == a.code] for a in arms}
    rows = [["Randomised", *(str(len(g)) for g in groups.values()), str(len(people))]]
    factors = ["site", *[c for c in people.columns if c.startswith("stratum_")]]
    for factor in factors:
        for level in sorted(set(people[factor].astype(str)) - {""}):
            rows.append([f"{factor.removeprefix('stratum_')}: {level}",
                         *(percent(int((g[factor].astype(str) == level).sum()), len(g))
                           for g in groups.values()),
                         percent(int((people[factor].astype(str) == level).sum()), len(people))])
    wide = frames["scores_wide"].merge(people[["pseudonym"]], on="pseudonym")
    for instrument, name in settings.outcomes.items():
        column = score_column(instrument, settings.baseline or "")
        if column not in wide.columns:
            continue
        cells = []
        for code in [*groups, None]:
            values = wide[column] if code is None else wide.loc[wide["arm"] == code, column]
            values = values.dropna()
            section.results[(instrument, code or "all")] = (len(values), values.mean(),
                                                            values.std(ddof=1))
            cells.append(f"{number(values.mean(), 1)} ({number(values.std(ddof=1), 1)}), "
                         f"n = {len(values)}" if len(values) else "–")
        rows.append([f"{name} at baseline, mean (SD)", *cells])
    section.results["randomised"] = {code: len(g) for code, g in groups.items()}
    section.tables.append(Table("Randomised participants: n (%) or mean (SD)",
                                ["Characteristic", *(a.name for a in arms), "All"], rows))
    return section


ADHERENCE_METRICS = ("adherence_ratio", "module_adherence_ratio", "active_days", "logins",
                     "sms_response_rate", "moderator_contacts")


def _adherence_frame(frames: Frames) -> pd.DataFrame:
    adherence = frames["adherence"]
    return adherence.drop(columns=[c for c in ("arm",) if c in adherence.columns]).merge(
        randomised(frames), on="pseudonym")


def adherence(frames: Frames, settings: Settings) -> Section:
    section = Section("adherence", "Adherence by arm, and adherence against outcome change")
    data = _adherence_frame(frames)
    if data.empty:
        section.notes.append("No adherence figures yet (nobody randomised).")
        return section
    rows = []
    for metric in ADHERENCE_METRICS:
        if metric not in data.columns:
            continue
        for arm in settings.arms:
            values = pd.to_numeric(data.loc[data["arm"] == arm.code, metric],
                                   errors="coerce").dropna().astype("float64")
            if values.empty:
                rows.append([metric, arm.name, "0", "–", "–"])
                continue
            rows.append([metric, arm.name, str(len(values)), number(values.median()),
                         f"{number(values.quantile(0.25))} to {number(values.quantile(0.75))}"])
    section.tables.append(Table("Adherence figures by arm (randomised participants)",
                                ["Metric", "Arm", "n", "Median", "Interquartile range"], rows))
    groups = {arm.name: pd.to_numeric(data.loc[data["arm"] == arm.code, "adherence_ratio"],
                                      errors="coerce").dropna().astype("float64").tolist()
              for arm in settings.arms}
    if any(groups.values()):
        section.figures.append(figures.box_plot(
            "adherence-ratio", "Adherence ratio (steps completed / available)",
            {k: v for k, v in groups.items() if v}, "Adherence ratio"))
    _association(section, frames, settings, data)
    return section


def _association(section: Section, frames: Frames, settings: Settings,
                 data: pd.DataFrame) -> None:
    rows, plotted = [], False
    for instrument, name in settings.outcomes.items():
        change = pre_post(frames, settings, instrument)
        joined = change.merge(data[["pseudonym", "adherence_ratio"]],
                              left_on="participant", right_on="pseudonym")
        ratio = pd.to_numeric(joined["adherence_ratio"], errors="coerce").astype("float64")
        try:
            rho, p, n = stats.spearman(ratio, joined["change"])
        except stats.TooFewData as exc:
            section.notes.append(f"{name}: too few data to relate adherence to change ({exc}).")
            continue
        section.results[("spearman", instrument)] = (rho, p, n)
        rows.append([name, str(n), number(rho), p_value(p)])
        if not plotted:
            plotted = True
            complete = joined.assign(ratio=ratio).dropna(subset=["ratio", "change"])
            section.figures.append(figures.scatter(
                f"adherence-change-{instrument}", f"Adherence against change in {name}",
                {settings.arm_name(a): (g["ratio"].tolist(), g["change"].tolist())
                 for a, g in complete.groupby("arm")},
                "Adherence ratio", f"Change in {name} (post - baseline)"))
    if rows:
        section.tables.append(Table("Adherence ratio against change from baseline to "
                                    "post-treatment (Spearman)",
                                    ["Outcome", "n", "rho", "p"], rows))


def guided(frames: Frames, settings: Settings) -> Section:
    section = Section("guided", "Guided against unguided arms")
    if not settings.has_guidance_contrast:
        section.notes.append("The study has no pair of guided and unguided arms (an arm is "
                             "guided when moderators check in with its participants).")
        return section
    if settings.baseline is None or settings.post is None:
        section.notes.append("The schedule names no baseline or no post-treatment timepoint.")
        return section
    kind = {a.code: ("guided" if a.guided else "unguided") for a in settings.arms}
    if len(settings.arms) == 2:
        section.notes.append("With two arms this is the primary contrast, shown here by "
                             "guidance.")
    rows = []
    for instrument, name in settings.outcomes.items():
        data = pre_post(frames, settings, instrument)
        data["arm"] = data["arm"].map(kind)
        try:
            diff = stats.ancova(data, "unguided", settings.confidence)["guided"]
        except stats.TooFewData as exc:
            section.notes.append(f"{name}: too few data ({exc}).")
            continue
        complete = data.dropna(subset=["baseline", "post"])
        try:
            g_text = estimate(stats.hedges_g(complete.loc[complete["arm"] == "guided", "post"],
                                             complete.loc[complete["arm"] == "unguided", "post"],
                                             settings.confidence))
        except stats.TooFewData as exc:
            g_text = f"too few data ({exc})"
        section.results[instrument] = diff
        rows.append([name, str(len(complete)), estimate(diff), p_value(diff.p), g_text])
    if rows:
        section.tables.append(Table("Guided minus unguided, post-treatment adjusted for "
                                    "baseline", ["Outcome", "n", "Adjusted difference (95 % CI)",
                                                 "p", "Hedges' g (95 % CI)"], rows))
    adh = _adherence_frame(frames)
    ratio = pd.to_numeric(adh["adherence_ratio"], errors="coerce").astype("float64")
    medians = ratio.groupby(adh["arm"].map(kind)).median()
    section.notes.append("Median adherence ratio: " + "; ".join(
        f"{k} {number(v)}" for k, v in medians.items()) if len(medians) else
        "No adherence figures yet.")
    return section


def sms_series(frames: Frames, settings: Settings) -> Section:
    section = Section("sms", "SMS symptom series by arm (weekly means)")
    sms = frames["sms"].merge(randomised(frames), on="pseudonym")
    sms = sms[sms["answered"].astype(bool) & sms["value"].notna() & (sms["planned_day"] >= 0)]
    if sms.empty:
        section.notes.append("No answered SMS prompts yet.")
        return section
    sms = sms.assign(week=(sms["planned_day"] // 7).astype("int64") + 1)
    for key, prompts in sms.groupby("prompt_key", sort=True):
        weekly = prompts.groupby(["week", "arm"])["value"].agg(["mean", "count"]).reset_index()
        section.results[key] = weekly
        rows = [[str(w), settings.arm_name(a), str(int(n)), number(m)]
                for w, a, m, n in weekly[["week", "arm", "mean", "count"]].itertuples(
                    index=False)]
        section.tables.append(Table(f"Prompt {key}: weekly mean of the answers",
                                    ["Week", "Arm", "Answers", "Mean"], rows))
        section.figures.append(figures.weekly(
            f"sms-{_slug(key)}", f"SMS prompt {key}",
            {settings.arm_name(a): (g["week"].tolist(), g["mean"].tolist())
             for a, g in weekly.groupby("arm")}))
    return section


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text).lower())[:40]
