"""Each report section on constructed export frames (no database): the numbers it shows
are those worked out independently here, and a tiny study gets notes, not errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure as MplFigure

from outcomes.report import SECTIONS, effects, figures, sections
from outcomes.report.settings import ArmInfo, Settings, TimepointInfo

RNG = np.random.default_rng(7)


def settings() -> Settings:
    return Settings(
        arms=[ArmInfo("int", "Guided", True, 5), ArmInfo("ctl", "On your own", False, 3)],
        reference="ctl",
        timepoints=[TimepointInfo("base", "Baseline", 0), TimepointInfo("post", "Post", 1)],
        baseline="base", post="post", outcomes={"ucla20": "UCLA-LS v3"}, absent=["lsns6"])


def frames(n_per_arm: int = 10) -> dict[str, pd.DataFrame]:
    names = [f"P-{i:012x}" for i in range(2 * n_per_arm)]
    arm = ["int"] * n_per_arm + ["ctl"] * n_per_arm
    base = RNG.normal(55, 7, size=2 * n_per_arm).round(0)
    post = (base - np.where(np.array(arm) == "int", 8, 1) + RNG.normal(0, 3, 2 * n_per_arm)
            ).round(0)
    ratio = np.linspace(0.1, 1.0, 2 * n_per_arm)
    participants = pd.DataFrame({"pseudonym": names, "arm": arm, "site": "North",
                                 "randomised": True, "status": "active"})
    unrandomised = pd.DataFrame({"pseudonym": ["P-ffffffffffff"], "arm": [""], "site": "North",
                                 "randomised": [False], "status": ["consented"]})
    sms = pd.DataFrame({"pseudonym": [names[0], names[0], names[1], names[-1]],
                        "prompt_key": "mood", "planned_day": [0.5, 3.0, 8.0, 1.0],
                        "answered": [True, True, True, True], "value": [4.0, 6.0, 7.0, 2.0]})
    consort = pd.DataFrame([
        {"stage": "enrolled", "order": 0, "label": "Enrolled", "arm": "all", "count": 21},
        {"stage": "allocated", "order": 1, "label": "Randomised", "arm": "all", "count": 20},
        {"stage": "allocated", "order": 1, "label": "Randomised", "arm": "int", "count": 10},
        {"stage": "allocated", "order": 1, "label": "Randomised", "arm": "ctl", "count": 10}])
    return {
        "participants": pd.concat([participants, unrandomised], ignore_index=True),
        "scores_wide": pd.DataFrame({"pseudonym": names, "arm": arm, "ucla20_total_base": base,
                                     "ucla20_total_post": post}),
        "adherence": pd.DataFrame({"pseudonym": names, "arm": arm, "adherence_ratio": ratio,
                                   "active_days": range(2 * n_per_arm)}),
        "sms": sms, "consort": consort}


def test_consort_section_counts_by_arm():
    section = sections.consort(frames(), settings())
    assert section.results["enrolled"] == {"all": 21}
    assert section.results["allocated"] == {"all": 20, "int": 10, "ctl": 10}
    assert section.figures[0].png.startswith(b"\x89PNG")
    assert "Enrolled 21" in section.figures[0].alt


def test_baseline_section_is_the_randomised_participants_by_arm():
    data = frames()
    section = sections.baseline(data, settings())
    wide = data["scores_wide"]
    n, mean, sd = section.results[("ucla20", "int")]
    mine = wide.loc[wide["arm"] == "int", "ucla20_total_base"]
    assert (n, mean, sd) == (10, pytest.approx(mine.mean()), pytest.approx(mine.std()))
    assert section.results["randomised"] == {"int": 10, "ctl": 10}


def test_trajectories_give_mean_and_ci_per_timepoint_and_arm():
    data = frames()
    section = effects.trajectories(data, settings())
    ci = section.results[("ucla20", "ctl", "post")]
    values = data["scores_wide"].loc[data["scores_wide"]["arm"] == "ctl", "ucla20_total_post"]
    assert (ci.n, ci.mean) == (10, pytest.approx(values.mean()))
    assert ci.low < ci.mean < ci.high
    assert [f.name for f in section.figures] == ["trajectory-ucla20"]
    assert any("not defined on this platform" in note for note in section.notes)


def test_primary_section_ancova_and_g_match_by_hand():
    data = frames()
    section = effects.primary(data, settings())
    result = section.results[("ucla20", "int")]
    wide = data["scores_wide"]
    x = np.column_stack([np.ones(20), (wide["arm"] == "int").astype(float),
                         wide["ucla20_total_base"]])
    beta, *_ = np.linalg.lstsq(x, wide["ucla20_total_post"].to_numpy(), rcond=None)
    assert result["ancova"].value == pytest.approx(beta[1], abs=1e-9)
    a = wide.loc[wide["arm"] == "int", "ucla20_total_post"]
    b = wide.loc[wide["arm"] == "ctl", "ucla20_total_post"]
    pooled = math.sqrt((9 * a.var() + 9 * b.var()) / 18)
    assert result["g"].value == pytest.approx((a.mean() - b.mean()) / pooled
                                              * (1 - 3 / (4 * 20 - 9)), abs=1e-9)
    assert result["n"] == 20
    assert "Adjusted difference (95 % CI)" in section.tables[0].header


def test_itt_and_completers_side_by_side():
    data = frames()
    wide = data["scores_wide"]
    wide.loc[0, "ucla20_total_post"] = float("nan")  # one guided participant missed post
    section = effects.itt(data, settings())
    fits = section.results["ucla20"]
    assert fits["itt"].observations == 39 and fits["completers"].observations == 38
    assert fits["itt"].participants == 20 and fits["completers"].participants == 19
    complete = wide.dropna()
    change = complete["ucla20_total_post"] - complete["ucla20_total_base"]
    expected = change[complete["arm"] == "int"].mean() - change[complete["arm"] == "ctl"].mean()
    assert fits["completers"].interaction["int"].value == pytest.approx(expected, abs=1e-4)
    header = section.tables[0].header
    assert "ITT estimate (95 % CI)" in header and "Completers estimate (95 % CI)" in header


def test_reliable_change_rates_by_arm_and_the_alpha_used():
    data = frames()
    section = effects.reliable_change(data, settings())
    wide = data["scores_wide"]
    s_diff = math.sqrt(2) * wide["ucla20_total_base"].std() * math.sqrt(1 - 0.92)
    rci = -(wide["ucla20_total_post"] - wide["ucla20_total_base"]) / s_diff
    for arm in ("int", "ctl"):
        mine = rci[wide["arm"] == arm]
        assert section.results[("ucla20", arm)] == {
            "n": 10, "improved": int((mine >= 1.96).sum()),
            "deteriorated": int((mine <= -1.96).sum())}
    assert any("alpha = 0.92" in note for note in section.notes)


def test_adherence_section_relates_adherence_to_change():
    data = frames()
    section = sections.adherence(data, settings())
    wide = data["scores_wide"]
    change = wide["ucla20_total_post"] - wide["ucla20_total_base"]
    ranks = pd.DataFrame({"a": data["adherence"]["adherence_ratio"].rank(),
                          "c": change.rank()})
    rho, _p, n = section.results[("spearman", "ucla20")]
    assert (rho, n) == (pytest.approx(ranks["a"].corr(ranks["c"])), 20)
    assert {f.name for f in section.figures} == {"adherence-ratio", "adherence-change-ucla20"}


def test_guided_section_compares_guided_with_unguided_arms():
    """With one guided and one unguided arm it is the primary contrast by guidance."""
    data = frames()
    section = sections.guided(data, settings())
    primary = effects.primary(data, settings())
    assert "primary contrast" in section.notes[0]
    assert section.results["ucla20"].value == pytest.approx(
        primary.results[("ucla20", "int")]["ancova"].value, abs=1e-9)
    assert any(note.startswith("Median adherence ratio: guided") for note in section.notes)
    unguided = settings()
    unguided.arms = [ArmInfo("int", "A", False, 5), ArmInfo("ctl", "B", False, 3)]
    assert "no pair of guided and unguided" in sections.guided(data, unguided).notes[0]


def test_weekly_figures_count_whole_weeks():
    """A series of one week read 0.96, 0.98 ... 1.04 on its axis."""
    for weeks in ([1], [1, 2, 5], [0, 12]):
        ax = MplFigure().subplots()
        ax.plot(weeks, [3.0] * len(weeks), marker="o")
        figures.week_axis(ax, weeks)
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), (weeks, ticks)
        assert low < min(weeks) and max(weeks) < high


def test_sms_series_weekly_means_by_arm():
    section = sections.sms_series(frames(), settings())
    weekly = section.results["mood"].set_index(["week", "arm"])
    assert weekly.loc[(1, "int"), "mean"] == 5.0 and weekly.loc[(1, "int"), "count"] == 2
    assert weekly.loc[(2, "int"), "mean"] == 7.0
    assert weekly.loc[(1, "ctl"), "mean"] == 2.0
    assert section.figures[0].name == "sms-mood"


def test_a_tiny_study_gets_notes_not_errors():
    """Two randomised participants: every section is built and says the data are too few."""
    tiny = frames(n_per_arm=1)
    built = [make(tiny, settings()) for make in SECTIONS]
    notes = " ".join(note for section in built for note in section.notes)
    assert "too few data" in notes
    by_key = {section.key: section for section in built}
    assert not by_key["primary"].tables
    assert "too few data" in by_key["itt"].tables[0].rows[0][3]
    empty = {name: frame.iloc[:0] for name, frame in tiny.items()}
    assert [make(empty, settings()).key for make in SECTIONS]


def test_a_section_that_fails_unexpectedly_becomes_a_note(caplog):
    """An error no section foresaw costs that section, with a note, not the report."""
    from outcomes import report

    def broken(_frames, _settings):
        raise RuntimeError("singular somewhere")

    section = report._section(broken, frames(), settings())
    assert section.notes == ["This section could not be computed from the current data; "
                             "the error is in the application log."]
    assert "singular somewhere" in caplog.text


def test_figures_take_names_as_plain_text():
    """A "$" in an arm or timepoint name is drawn as given, not read as mathtext."""
    from outcomes.report import figures

    drawn = [
        figures.trajectories("t", "Score $ by arm", ["T$0", "T1"],
                             {"$arm$": [(1.0, 0.5, 1.5), None]}),
        figures.box_plot("b", "Ratio", {"$a": [0.1, 0.5], "b$": [0.2]}, "ratio $"),
        figures.consort("c", [("Enrolled $", 3)], {"$x$": [("Randomised", 1)]}),
    ]
    assert all(f.png.startswith(b"\x89PNG") for f in drawn)
