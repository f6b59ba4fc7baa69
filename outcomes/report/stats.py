"""The report's statistics, as plain functions over pandas DataFrames (no queries).

Each function raises :class:`TooFewData` when the data cannot support its model (too few
participants per arm, no variance, a model that does not converge), so a section can say
so instead of failing. Confidence intervals are 95 % unless ``confidence`` says otherwise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pingouin
import statsmodels.formula.api as smf
from scipy import stats as scipy_stats

#: fewest participants with data in each arm before a between-arm model is fitted
MIN_PER_ARM = 3


class TooFewData(ValueError):
    """The data are too few (or too uniform) for this analysis; the message says why."""


@dataclass(frozen=True)
class Estimate:
    """One estimate with its confidence interval (and p value where one is defined)."""

    value: float
    low: float
    high: float
    p: float | None = None


@dataclass(frozen=True)
class MeanCI:
    n: int
    mean: float
    low: float
    high: float


def mean_ci(values: pd.Series, confidence: float = 0.95) -> MeanCI | None:
    """Mean and its t-based confidence interval; None without values (the interval is
    NaN with one value)."""
    clean = pd.to_numeric(values, errors="coerce").dropna().astype("float64")
    n = len(clean)
    if n == 0:
        return None
    mean = float(clean.mean())
    if n < 2:
        return MeanCI(n, mean, float("nan"), float("nan"))
    half = scipy_stats.t.ppf((1 + confidence) / 2, n - 1) * float(clean.std(ddof=1)) / np.sqrt(n)
    return MeanCI(n, mean, mean - half, mean + half)


def _check_arms(frame: pd.DataFrame, column: str, minimum: int = MIN_PER_ARM) -> None:
    counts = frame[column].value_counts()
    if counts.empty:
        raise TooFewData("nobody has the scores this needs yet")
    if len(counts) < 2:
        raise TooFewData("only one arm has data")
    if counts.min() < minimum:
        raise TooFewData(f"fewer than {minimum} participants with data in an arm "
                         f"({', '.join(f'{k}: {v}' for k, v in counts.items())})")


def ancova(frame: pd.DataFrame, reference: str, confidence: float = 0.95
           ) -> dict[str, Estimate]:
    """OLS of ``post ~ arm + baseline`` (arm as a treatment contrast against
    ``reference``): arm code -> the baseline-adjusted difference from the reference arm.

    ``frame`` has columns ``arm``, ``baseline``, ``post``; rows missing either score are
    left out (complete cases)."""
    data = frame.dropna(subset=["baseline", "post"]).copy()
    _check_arms(data, "arm")
    if reference not in set(data["arm"]):
        raise TooFewData(f"the reference arm {reference!r} has no data")
    if data["baseline"].nunique() < 2:
        raise TooFewData("the baseline scores do not vary")
    arms = [reference, *sorted(set(data["arm"]) - {reference})]
    data["arm"] = pd.Categorical(data["arm"], categories=arms)
    if len(data) <= len(arms) + 1:
        raise TooFewData("no residual degrees of freedom")
    fit = smf.ols("post ~ C(arm) + baseline", data=data).fit()
    ci = fit.conf_int(alpha=1 - confidence)
    result = {}
    for arm in arms[1:]:
        term = f"C(arm)[T.{arm}]"
        result[arm] = Estimate(float(fit.params[term]), float(ci.loc[term, 0]),
                               float(ci.loc[term, 1]), float(fit.pvalues[term]))
    return result


def hedges_g(treated: pd.Series, reference: pd.Series, confidence: float = 0.95) -> Estimate:
    """Hedges' g of ``treated`` minus ``reference`` (pooled SD, small-sample corrected)
    with its confidence interval (pingouin)."""
    x = pd.to_numeric(treated, errors="coerce").dropna().to_numpy(dtype="float64")
    y = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(dtype="float64")
    if min(len(x), len(y)) < MIN_PER_ARM:
        raise TooFewData(f"fewer than {MIN_PER_ARM} scores in an arm")
    if np.var(np.concatenate([x, y])) == 0 or (np.var(x, ddof=1) + np.var(y, ddof=1)) == 0:
        raise TooFewData("the scores do not vary")
    g = float(pingouin.compute_effsize(x, y, eftype="hedges"))
    low, high = pingouin.compute_esci(stat=g, nx=len(x), ny=len(y), eftype="hedges",
                                      confidence=confidence, decimals=12)
    return Estimate(g, float(low), float(high))


@dataclass(frozen=True)
class MixedResult:
    #: the time x arm interaction at the post-treatment timepoint, by non-reference arm
    interaction: dict[str, Estimate]
    participants: int
    observations: int
    converged: bool


def mixed_model(long: pd.DataFrame, *, reference: str, baseline: str, post: str,
                confidence: float = 0.95) -> MixedResult:
    """Linear mixed model ``score ~ time * arm`` with a random intercept per participant
    (statsmodels MixedLM, REML), on every available score: the estimate of interest is the
    time x arm interaction at ``post`` (the difference in mean change from ``baseline``
    between each arm and ``reference``).

    ``long`` has columns ``participant``, ``arm``, ``time`` (timepoint key, in schedule
    order), ``score``."""
    data = long.dropna(subset=["score"]).copy()
    times = [t for t in dict.fromkeys(data["time"]) if t != baseline]
    if baseline not in set(data["time"]) or post not in set(data["time"]):
        raise TooFewData("no scores at the baseline or the post-treatment timepoint")
    per_arm = data[data["time"] == post].groupby("arm")["participant"].nunique()
    _check_arms(pd.DataFrame({"arm": per_arm.index.repeat(per_arm.to_numpy())}), "arm")
    arms = [reference, *sorted(set(data["arm"]) - {reference})]
    data["time"] = pd.Categorical(data["time"], categories=[baseline, *times])
    data["arm"] = pd.Categorical(data["arm"], categories=arms)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = smf.mixedlm("score ~ C(time) * C(arm)", data,
                              groups=data["participant"]).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise TooFewData(f"the mixed model could not be fitted ({exc})") from exc
    converged = bool(getattr(fit, "converged", True)) and not any(
        "converge" in str(w.message).lower() for w in caught)
    ci = fit.conf_int(alpha=1 - confidence)
    interaction = {}
    for arm in arms[1:]:
        term = f"C(time)[T.{post}]:C(arm)[T.{arm}]"
        if term not in fit.params.index or not np.isfinite(fit.params[term]):
            raise TooFewData("the time x arm term could not be estimated")
        interaction[arm] = Estimate(float(fit.params[term]), float(ci.loc[term, 0]),
                                    float(ci.loc[term, 1]), float(fit.pvalues[term]))
    return MixedResult(interaction, int(data["participant"].nunique()), len(data), converged)


@dataclass(frozen=True)
class ReliableChange:
    #: the reliability (Cronbach's alpha) used
    reliability: float
    #: SD of the baseline scores the standard error of measurement is made from
    baseline_sd: float
    #: the smallest change counted as reliable: 1.96 x the SE of the difference
    threshold: float
    #: per participant: "improved", "deteriorated" or "no reliable change"
    category: pd.Series


def reliable_change(baseline: pd.Series, post: pd.Series, *, reliability: float,
                    higher_is_better: bool) -> ReliableChange:
    """Jacobson-Truax: RCI = (post - baseline) / S_diff with S_diff = sqrt(2) x SD_baseline
    x sqrt(1 - reliability); |RCI| >= 1.96 in the better direction is a reliable
    improvement, in the worse direction a reliable deterioration."""
    pairs = pd.DataFrame({"baseline": baseline, "post": post}).dropna()
    if len(pairs) < 2:
        raise TooFewData("fewer than 2 participants with both scores")
    sd = float(pairs["baseline"].std(ddof=1))
    if not sd > 0:
        raise TooFewData("the baseline scores do not vary")
    s_diff = np.sqrt(2) * sd * np.sqrt(1 - reliability)
    rci = (pairs["post"] - pairs["baseline"]) / s_diff
    better = rci if higher_is_better else -rci
    category = pd.Series("no reliable change", index=pairs.index)
    category[better >= 1.96] = "improved"
    category[better <= -1.96] = "deteriorated"
    return ReliableChange(reliability, sd, float(1.96 * s_diff), category)


def spearman(x: pd.Series, y: pd.Series) -> tuple[float, float, int]:
    """Spearman's rho, its p value and the number of complete pairs."""
    pairs = pd.DataFrame({"x": x, "y": y}).dropna()
    if len(pairs) < 4:
        raise TooFewData("fewer than 4 participants with both figures")
    if pairs["x"].nunique() < 2 or pairs["y"].nunique() < 2:
        raise TooFewData("one of the figures does not vary")
    rho, p = scipy_stats.spearmanr(pairs["x"], pairs["y"])
    return float(rho), float(p), len(pairs)
