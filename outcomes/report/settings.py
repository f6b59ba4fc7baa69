"""The report's analysis settings: which arms are compared with which, which timepoints
are baseline and post-treatment, which outcomes are analysed, and the reliabilities used
for reliable change. Read from the study's set-up (arms, schedule), never from
participants' data, and printed in the report's header. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata

from sqlalchemy import select

from core.extensions import db
from outcomes import instruments
from outcomes.assessments.models import Timepoint
from outcomes.models import Study

#: the issue's outcomes, in order: UCLA Loneliness Scale v3, MSPSS, LSNS-6
OUTCOMES = ("ucla20", "mspss", "lsns6")
#: instrument -> (Cronbach's alpha, its source): the reliability used for reliable change
RELIABILITY = {
    "ucla20": (0.92, "Russell 1996"),
    "mspss": (0.88, "Zimet et al. 1988"),
    "lsns6": (0.83, "Lubben et al. 2006"),
}
#: instrument -> a higher total is the better outcome
HIGHER_IS_BETTER = {"ucla20": False, "mspss": True, "lsns6": True}
#: the arm feature that makes an arm "guided" (moderators check in with participants)
GUIDED_FEATURE = "checkins"
CONFIDENCE = 0.95
PACKAGES = ("pandas", "numpy", "scipy", "statsmodels", "pingouin", "matplotlib")


@dataclass(frozen=True)
class ArmInfo:
    code: str
    name: str
    guided: bool
    features: int


@dataclass(frozen=True)
class TimepointInfo:
    key: str
    label: str
    position: int


@dataclass
class Settings:
    arms: list[ArmInfo]
    #: the comparison arm: the one with the fewest features (the last such arm)
    reference: str | None
    timepoints: list[TimepointInfo]
    baseline: str | None
    post: str | None
    #: outcome instrument id -> short name, for those defined on this platform
    outcomes: dict[str, str] = field(default_factory=dict)
    #: outcomes of the issue with no definition here
    absent: list[str] = field(default_factory=list)
    confidence: float = CONFIDENCE

    def arm_name(self, code: str) -> str:
        return next((a.name for a in self.arms if a.code == code), code)

    @property
    def has_guidance_contrast(self) -> bool:
        kinds = {arm.guided for arm in self.arms}
        return kinds == {True, False}

    def describe(self) -> list[tuple[str, str]]:
        """(setting, value) lines for the report header."""
        tp = {t.key: t.label for t in self.timepoints}
        rel = "; ".join(f"{self.outcomes[i]} alpha {RELIABILITY[i][0]:.2f} ({RELIABILITY[i][1]})"
                        for i in self.outcomes if i in RELIABILITY)
        return [
            ("Arms", "; ".join(f"{a.name} ({a.code}{', guided' if a.guided else ''})"
                               for a in self.arms) or "none"),
            ("Comparison arm", self.arm_name(self.reference) if self.reference else "none"),
            ("Baseline timepoint", tp.get(self.baseline or "", "none")),
            ("Primary endpoint (post-treatment)", tp.get(self.post or "", "none")),
            ("Outcomes", ", ".join(self.outcomes.values()) or "none"),
            ("Primary analysis", "ANCOVA, post ~ arm + baseline (OLS), complete cases"),
            ("Effect size", "Hedges' g on post-treatment scores, pooled SD"),
            ("Intention to treat", "linear mixed model, score ~ time x arm, random "
                                   "intercept per participant (REML), all available scores"),
            ("Reliable change", f"Jacobson-Truax, |RCI| >= 1.96; {rel or 'no reliabilities'}"),
            ("Guided arm", f"an arm with the '{GUIDED_FEATURE}' feature (moderator check-ins)"),
            ("Confidence intervals", f"{self.confidence:.0%}"),
        ]


def settings_for(study: Study) -> Settings:
    arms = [ArmInfo(arm.code, arm.name, arm.has(GUIDED_FEATURE),
                    sum(1 for on in (arm.features or {}).values() if on))
            for arm in study.arms]
    reference = min(reversed(arms), key=lambda a: a.features).code if arms else None
    rows = list(db.session.scalars(select(Timepoint).where(Timepoint.study_id == study.id)
                                   .order_by(Timepoint.position, Timepoint.id)))
    timepoints = [TimepointInfo(t.key, t.label, t.position) for t in rows]
    baseline = next((t.key for t in rows if t.is_baseline), None)
    post = next((t.key for t in rows if t.is_post_treatment), None)
    outcomes, absent = {}, []
    for instrument_id in OUTCOMES:
        try:
            outcomes[instrument_id] = instruments.get(instrument_id).short_name
        except instruments.UnknownInstrument:
            absent.append(instrument_id)
    return Settings(arms, reference, timepoints, baseline, post, outcomes, absent)


def package_versions() -> list[tuple[str, str]]:
    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, "not installed"))
    return found
