"""Stratum levels worked out from baseline scores, and what happens when a participant
completes the baseline.

A stratification factor other than ``site`` (e.g. ``baseline_loneliness``) is derived by
the rule stored with the baseline timepoint (``outcomes.assessments.schedule``): a score
compared with a cut-off (at or above: one level; below: the other), or the value of an
instrument's label. The stored score is used, exactly as ``outcomes.scoring`` gave it
(never rounded before comparing). When a level cannot be derived the reason says why.

Transaction contract: :func:`baseline_completed` flushes and leaves the commit to its
caller.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core import audit
from core.extensions import db
from core.models import Participant
from outcomes import randomisation
from outcomes.assessments.models import AssessmentResponse, Timepoint
from outcomes.models import Study
from outcomes.participants import TrialError, transition


def _label(factor: str) -> str:
    return factor.replace("_", " ")


def _score_of(response: AssessmentResponse, name: str) -> float | None:
    if name == "total":
        return response.total
    if name in (response.extra_totals or {}):
        return response.extra_totals[name]
    return (response.subscales or {}).get(name)


def level_from(rule: dict[str, Any], response: AssessmentResponse | None, factor: str) -> str:
    """The level of ``factor`` that ``rule`` gives for a submitted baseline response."""
    what = f"The {_label(factor)} stratum cannot be worked out"
    if response is None or response.submitted_at is None:
        raise TrialError(f"{what}: the baseline {rule['instrument']} questionnaire is not "
                         "complete.", factor)
    if "label" in rule:
        value = (response.labels or {}).get(rule["label"])
        if value is None:
            raise TrialError(f"{what}: the {rule['instrument']} {rule['label']} label could "
                             "not be scored (too many answers missing).", factor)
        return str(value).lower() if isinstance(value, bool) else str(value)
    value = _score_of(response, rule["score"])
    if value is None:
        raise TrialError(f"{what}: the {rule['instrument']} {rule['score']} could not be "
                         "scored (too many answers missing).", factor)
    return rule["at_or_above"] if value >= rule["cut_off"] else rule["below"]


def derive_strata(study: Study, participant: Participant, baseline: Timepoint
                  ) -> dict[str, str]:
    """Every stratification factor except ``site`` (the participant's own), worked out
    from their baseline scores; a ``TrialError`` names the first that cannot be."""
    factors = [factor for factor in study.strata if factor != "site"]
    if not factors:
        return {}
    responses = {r.instrument: r for r in db.session.scalars(select(AssessmentResponse).where(
        AssessmentResponse.participant_id == participant.id,
        AssessmentResponse.timepoint_id == baseline.id))}
    values = {}
    for factor in factors:
        rule = (baseline.stratum_rules or {}).get(factor)
        if rule is None:
            raise TrialError(f"The {_label(factor)} stratum cannot be worked out: the "
                             "assessment schedule has no rule for it (add one under the "
                             "baseline's strata).", factor)
        level = level_from(rule, responses.get(rule["instrument"]), factor)
        levels = (study.stratum_levels or {}).get(factor, [])
        if level not in levels:
            raise TrialError(f"The {_label(factor)} stratum cannot be worked out: the rule "
                             f"gives {level!r}, which is not one of its levels "
                             f"({', '.join(map(str, levels))}).", factor)
        values[factor] = level
    return values


def randomise_automatically(participant: Participant, baseline: Timepoint) -> str:
    """Randomise a participant whose baseline is done, as the system; return the arm's
    code. Raises ``TrialError`` (before anything is written) when it cannot be done."""
    study = db.session.get(Study, participant.study_id)
    if not randomisation.is_open(study):
        raise TrialError("Enrolment is not open yet, so nobody can be randomised.")
    if "site" in study.strata and participant.site not in (study.sites or []):
        raise TrialError(f"{participant.study_code}'s site is not one of the study's sites; "
                         "a researcher needs to choose it.", "site")
    strata = derive_strata(study, participant, baseline)
    randomisation.stratum_values(study, participant, strata)  # refuses before any write
    return randomisation.randomise(participant, actor=None, strata=strata).code


def baseline_completed(participant: Participant, baseline: Timepoint
                       ) -> tuple[str | None, str | None]:
    """Every baseline questionnaire is in: move to ``baseline_done`` and, if the study
    randomises on baseline, randomise. Returns (arm code, None) or (None, why not)."""
    if participant.status == "consented":
        transition(participant, "baseline_done", actor=None)
    study = db.session.get(Study, participant.study_id)
    if not study.randomise_on_baseline or participant.status != "baseline_done":
        return None, None
    try:
        return randomise_automatically(participant, baseline), None
    except TrialError as exc:
        # stays baseline_done: the researcher randomises by hand and sees why here
        audit.record("participant.randomisation_deferred", actor=None, target=participant,
                     reason=str(exc))
        return None, str(exc)
