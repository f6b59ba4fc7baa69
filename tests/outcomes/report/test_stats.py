"""The report's statistics against values worked out independently in the test: ANCOVA by
least squares by hand, Hedges' g by its formula, the mixed model on a balanced design
whose time x arm estimate is the difference of mean changes, reliable change by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as t_dist

from outcomes.report import stats

RNG = np.random.default_rng(20260305)


def constructed_trial(n_per_arm: int = 12) -> pd.DataFrame:
    baseline = RNG.normal(50, 8, size=2 * n_per_arm)
    arm = np.array(["ctl"] * n_per_arm + ["int"] * n_per_arm)
    post = 10 + 0.7 * baseline - 4.0 * (arm == "int") + RNG.normal(0, 3, size=2 * n_per_arm)
    return pd.DataFrame({"arm": arm, "baseline": baseline, "post": post})


def test_ancova_matches_least_squares_by_hand():
    """It gives the arm coefficient of post ~ arm + baseline and its t-based 95 % CI."""
    data = constructed_trial()
    x = np.column_stack([np.ones(len(data)), (data["arm"] == "int").astype(float),
                         data["baseline"]])
    y = data["post"].to_numpy()
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residuals = y - x @ beta
    df = len(y) - x.shape[1]
    sigma2 = residuals @ residuals / df
    se = math.sqrt(sigma2 * np.linalg.inv(x.T @ x)[1, 1])
    half = t_dist.ppf(0.975, df) * se
    result = stats.ancova(data, "ctl")["int"]
    assert result.value == pytest.approx(beta[1], abs=1e-9)
    assert (result.low, result.high) == (pytest.approx(beta[1] - half, abs=1e-9),
                                         pytest.approx(beta[1] + half, abs=1e-9))
    assert 0 <= result.p < 0.05


def test_ancova_leaves_out_incomplete_rows_and_refuses_too_few():
    data = constructed_trial()
    with_gaps = pd.concat([data, pd.DataFrame({"arm": ["int"], "baseline": [40.0],
                                               "post": [float("nan")]})])
    assert stats.ancova(with_gaps, "ctl")["int"].value == pytest.approx(
        stats.ancova(data, "ctl")["int"].value)
    with pytest.raises(stats.TooFewData, match="fewer than 3"):
        stats.ancova(data.iloc[[0, 1, 12, 13]], "ctl")
    with pytest.raises(stats.TooFewData, match="only one arm"):
        stats.ancova(data[data["arm"] == "ctl"], "ctl")
    with pytest.raises(stats.TooFewData, match="nobody"):
        stats.ancova(data.iloc[:0], "ctl")


def test_hedges_g_matches_its_formula():
    """It is Cohen's d with the pooled SD times 1 - 3 / (4 (n1 + n2) - 9), with the
    interval g +/- t(n1 + n2 - 2) x sqrt((n1 + n2) / (n1 n2) + g^2 / (2 (n1 + n2)))."""
    x = pd.Series([12.0, 15, 11, 14, 18, 13, 16])
    y = pd.Series([10.0, 9, 13, 8, 11, 12])
    nx, ny = len(x), len(y)
    pooled = math.sqrt(((nx - 1) * x.var() + (ny - 1) * y.var()) / (nx + ny - 2))
    g = (x.mean() - y.mean()) / pooled * (1 - 3 / (4 * (nx + ny) - 9))
    se = math.sqrt((nx + ny) / (nx * ny) + g ** 2 / (2 * (nx + ny)))
    crit = t_dist.ppf(0.975, nx + ny - 2)
    result = stats.hedges_g(x, y)
    assert result.value == pytest.approx(g, abs=1e-9)
    assert result.low == pytest.approx(g - crit * se, abs=1e-6)
    assert result.high == pytest.approx(g + crit * se, abs=1e-6)
    with pytest.raises(stats.TooFewData):
        stats.hedges_g(x[:2], y)
    with pytest.raises(stats.TooFewData, match="vary"):
        stats.hedges_g(pd.Series([1.0] * 4), pd.Series([1.0] * 4))


def balanced_long(n_per_arm: int = 8) -> pd.DataFrame:
    """Every participant scored at every timepoint: the fixed effects of the random
    intercept model equal those of OLS, so the time x arm term at post is the difference
    of the arms' mean changes from baseline."""
    rows = []
    for arm, change in (("ctl", -1.0), ("int", -6.0)):
        for i in range(n_per_arm):
            person = f"{arm}-{i}"
            level = 50 + RNG.normal(0, 6)
            for time, share in (("base", 0.0), ("mid", 0.5), ("post", 1.0)):
                rows.append({"participant": person, "arm": arm, "time": time,
                             "score": level + share * change + RNG.normal(0, 2)})
    return pd.DataFrame(rows)


def mean_change(data: pd.DataFrame, arm: str) -> float:
    wide = data[data["arm"] == arm].pivot(index="participant", columns="time", values="score")
    return float((wide["post"] - wide["base"]).mean())


def test_mixed_model_time_by_arm_is_the_difference_of_mean_changes():
    data = balanced_long()
    expected = mean_change(data, "int") - mean_change(data, "ctl")
    fit = stats.mixed_model(data, reference="ctl", baseline="base", post="post")
    estimate = fit.interaction["int"]
    assert estimate.value == pytest.approx(expected, abs=1e-4)
    assert estimate.low < estimate.value < estimate.high
    assert (fit.participants, fit.observations) == (16, 48)


def test_mixed_model_uses_every_available_score_and_refuses_too_few():
    data = balanced_long()
    dropped = data.drop(data[(data["participant"] == "int-0") & (data["time"] == "post")].index)
    fit = stats.mixed_model(dropped, reference="ctl", baseline="base", post="post")
    assert (fit.participants, fit.observations) == (16, 47)
    with pytest.raises(stats.TooFewData, match="post-treatment"):
        stats.mixed_model(data[data["time"] != "post"], reference="ctl", baseline="base",
                          post="post")
    few = data[data["participant"].isin(["ctl-0", "ctl-1", "int-0", "int-1"])]
    with pytest.raises(stats.TooFewData, match="fewer than 3"):
        stats.mixed_model(few, reference="ctl", baseline="base", post="post")


def test_reliable_change_by_hand():
    """RCI = change / (sqrt 2 x SD_baseline x sqrt(1 - alpha)); |RCI| >= 1.96 counts, in
    the instrument's better direction."""
    baseline = pd.Series([40.0, 50, 60, 45, 55])
    post = pd.Series([30.0, 50, 75, 44, 60])
    sd = baseline.std(ddof=1)
    s_diff = math.sqrt(2) * sd * math.sqrt(1 - 0.9)
    lower_is_better = stats.reliable_change(baseline, post, reliability=0.9,
                                            higher_is_better=False)
    assert lower_is_better.threshold == pytest.approx(1.96 * s_diff)
    expected = ["improved" if -(b - a) / s_diff >= 1.96 else "deteriorated"
                if -(b - a) / s_diff <= -1.96 else "no reliable change"
                for a, b in zip(baseline, post, strict=True)]
    assert lower_is_better.category.tolist() == expected
    assert expected == ["improved", "no reliable change", "deteriorated",
                        "no reliable change", "no reliable change"]
    higher = stats.reliable_change(baseline, post, reliability=0.9, higher_is_better=True)
    assert higher.category.tolist()[:3] == ["deteriorated", "no reliable change", "improved"]
    with pytest.raises(stats.TooFewData):
        stats.reliable_change(baseline[:1], post[:1], reliability=0.9, higher_is_better=True)


def test_mean_ci_and_spearman():
    ci = stats.mean_ci(pd.Series([1.0, 2, 3, 4]))
    half = t_dist.ppf(0.975, 3) * pd.Series([1.0, 2, 3, 4]).std() / 2
    assert (ci.n, ci.mean, ci.low, ci.high) == (4, 2.5, pytest.approx(2.5 - half),
                                                pytest.approx(2.5 + half))
    assert stats.mean_ci(pd.Series([], dtype="float64")) is None
    rho, _p, n = stats.spearman(pd.Series([1.0, 2, 3, 4, 5]), pd.Series([2.0, 4, 5, 9, 10]))
    assert (rho, n) == (pytest.approx(1.0), 5)
    with pytest.raises(stats.TooFewData):
        stats.spearman(pd.Series([1.0, 2]), pd.Series([1.0, 2]))
