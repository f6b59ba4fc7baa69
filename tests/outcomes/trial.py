"""Helpers for the trial tests: a stratified study and participants at a given step."""

from __future__ import annotations

from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from outcomes.models import Arm, Study
from tests.factories import make_participant, make_staff, make_study

SITES = ["North", "South"]
LONELINESS = ["high", "low"]


def make_trial(*, sites: list[str] | None = None, ratios: dict[str, int] | None = None,
               strata: list[str] | None = None) -> Study:
    """The factory study (arms guided and self), stratified by site and baseline loneliness."""
    study = make_study(sites=list(sites or SITES),
                       strata=list(strata if strata is not None else
                                   ["site", "baseline_loneliness"]),
                       stratum_levels={"baseline_loneliness": list(LONELINESS)})
    for arm in study.arms:
        arm.ratio = (ratios or {}).get(arm.code, 1)
    db.session.commit()
    return study


def researcher() -> User:
    """The researcher account, made on first use."""
    found = db.session.scalar(db.select(User).where(User.email == "researcher@example.org"))
    return found or make_staff(Role.RESEARCHER)


def at_baseline(study: Study, code: str, site: str | None = "North", *,
                account: bool = False) -> Participant:
    """A participant whose baseline is done (an invited one without an account, which is
    quicker to make, unless ``account``)."""
    person = make_participant(study, code, name=f"Person {code[-4:]}" if account else None)
    person.site = site
    person.status = "baseline_done"
    db.session.commit()
    return person


def arm_codes(study: Study) -> dict[int, str]:
    return {arm.id: arm.code for arm in db.session.scalars(
        db.select(Arm).where(Arm.study_id == study.id))}
