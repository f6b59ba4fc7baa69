"""A study's assessment schedule as data: export, check, apply, and the change guard.

The schedule is a list of timepoints, in order, each a mapping (this is also its form in
the study YAML)::

    - key: baseline               # letters, digits, _ or -; stable: exports use it
      label: Baseline
      baseline: true              # open from consent until randomisation
      instruments: [ucla20, mspss, lsns6]
      overdue_after: 7            # days after opening (consent, for baseline)
      reminders: [0, 3, 7]        # in-app reminders, days after opening
      sms_reminders: [3]          # SMS reminders (a link), days after opening
      strata:                     # baseline only: strata worked out from baseline scores
        baseline_loneliness: {instrument: ucla20, score: total, cut_off: 50,
                              at_or_above: high, below: low}
    - key: week12
      label: Week 12 (end of treatment)
      post_treatment: true        # missing this one = study dropout
      instruments: [ucla20, mspss, lsns6, sus, acceptability]
      opens: 77                   # days after randomisation (local days)
      closes: 98
      overdue_after: 7
      reminders: [0, 3, 7]
      sms_reminders: [0, 7]

A stratum rule either cuts a score (``score`` is ``total``, an extra total or a subscale;
the level is ``at_or_above`` when the score is at or above ``cut_off``, else ``below``)
or reads a label of the instrument (``label: band``: the label's value is the level).

Once responses exist for a timepoint it cannot be removed nor its instruments changed;
once enrolment has opened no window, baseline or post-treatment marker, or stratum rule
can change (:func:`schedule_change_refusal`). Labels and reminders can always change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select

from core import audit
from core.extensions import db
from core.models import User
from outcomes import instruments
from outcomes.assessments.models import AssessmentReminder, AssessmentResponse, Timepoint
from outcomes.models import Study

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
FIELDS = {"key", "label", "baseline", "post_treatment", "instruments", "opens", "closes",
          "overdue_after", "reminders", "sms_reminders", "strata"}
DEFAULT_OVERDUE_AFTER = 7
#: the fields that decide who is due when, and so cannot change once enrolment is open
WINDOW_FIELDS = ("baseline", "post_treatment", "opens", "closes", "overdue_after")


class ScheduleError(ValueError):
    """A schedule that cannot be applied; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(" ".join(problems))


# --------------------------------------------------------------------------- export

def timepoints_of(study: Study | int) -> list[Timepoint]:
    study_id = study if isinstance(study, int) else study.id
    return list(db.session.scalars(select(Timepoint).where(Timepoint.study_id == study_id)
                                   .order_by(Timepoint.position, Timepoint.id)))


def as_data(timepoint: Timepoint) -> dict[str, Any]:
    data: dict[str, Any] = {"key": timepoint.key, "label": timepoint.label}
    if timepoint.is_baseline:
        data["baseline"] = True
    if timepoint.is_post_treatment:
        data["post_treatment"] = True
    data["instruments"] = list(timepoint.instruments)
    if not timepoint.is_baseline:
        data["opens"] = timepoint.opens_day
        data["closes"] = timepoint.closes_day
    data["overdue_after"] = timepoint.overdue_after_days
    data["reminders"] = list(timepoint.reminder_days)
    data["sms_reminders"] = list(timepoint.sms_reminder_days)
    if timepoint.stratum_rules:
        data["strata"] = {factor: dict(rule) for factor, rule in timepoint.stratum_rules.items()}
    return data


def export_schedule(study: Study) -> list[dict[str, Any]]:
    """The study's schedule as plain data (for the study YAML)."""
    return [as_data(timepoint) for timepoint in timepoints_of(study)]


# --------------------------------------------------------------------------- check

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_days(name: str, where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(_is_int(v) and v >= 0 for v in value):
        return [f"{where}: {name} must be a list of whole numbers of days (0 or more)."]
    if value != sorted(set(value)):
        return [f"{where}: {name} must be in increasing order, each day once."]
    return []


def _check_instruments(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        return [f"{where}: list the instruments to fill (at least one)."]
    known = instruments.builtin()
    problems = [f"{where}: {name!r} is not a known instrument (choose from "
                f"{', '.join(sorted(known))})." for name in value if name not in known]
    if len(set(map(str, value))) != len(value):
        problems.append(f"{where}: an instrument is listed twice.")
    return problems


def _check_window(where: str, entry: Mapping[str, Any]) -> list[str]:
    overdue = entry.get("overdue_after", DEFAULT_OVERDUE_AFTER)
    problems = [] if _is_int(overdue) and overdue >= 0 else [
        f"{where}: overdue_after must be a whole number of days (0 or more)."]
    if entry.get("baseline"):
        return problems + [f"{where}: the baseline is open from consent until randomisation, "
                           f"so it takes no {name}." for name in ("opens", "closes")
                           if name in entry]
    opens, closes = entry.get("opens"), entry.get("closes")
    if not _is_int(opens) or opens < 0:
        return problems + [f"{where}: opens must be a whole number of days after "
                           "randomisation (0 or more)."]
    if not _is_int(closes) or closes < opens:
        return problems + [f"{where}: closes must be a whole number of days, not before "
                           "opens."]
    if not problems and opens + overdue > closes:
        problems.append(f"{where}: overdue_after ({overdue}) goes past closing "
                        f"(day {closes}); the window is only {closes - opens} days.")
    return problems


def _check_rule(where: str, factor: str, rule: Any, timepoint_instruments: list[Any]) -> list[str]:
    place = f"{where}: stratum {factor}"
    if not isinstance(rule, Mapping):
        return [f"{place}: give instrument and score/cut_off, or instrument and label."]
    name = rule.get("instrument")
    if name not in timepoint_instruments:
        return [f"{place}: instrument must be one of this timepoint's instruments."]
    instrument = instruments.builtin()[name]
    if "label" in rule:
        known = [label.name for label in instrument.labels]
        if set(rule) != {"instrument", "label"} or rule["label"] not in known:
            return [f"{place}: label must be one of {', '.join(known) or 'none'} "
                    f"(labels of {name}), with no other settings."]
        return []
    scores = [score.name for score in instrument.rules]
    problems = []
    if set(rule) != {"instrument", "score", "cut_off", "at_or_above", "below"}:
        problems.append(f"{place}: give instrument, score, cut_off, at_or_above and below.")
    if rule.get("score") not in scores:
        problems.append(f"{place}: score must be one of {', '.join(scores)}.")
    cut = rule.get("cut_off")
    if not isinstance(cut, int | float) or isinstance(cut, bool):
        problems.append(f"{place}: cut_off must be a number.")
    levels = [rule.get("at_or_above"), rule.get("below")]
    if not all(isinstance(level, str) and level.strip() for level in levels) \
            or levels[0] == levels[1]:
        problems.append(f"{place}: at_or_above and below must be two different level names.")
    return problems


def _check_strata(where: str, entry: Mapping[str, Any]) -> list[str]:
    strata = entry.get("strata")
    if strata is None:
        return []
    if not entry.get("baseline"):
        return [f"{where}: strata are worked out from baseline scores; put them on the "
                "baseline."]
    if not isinstance(strata, Mapping) or "site" in strata:
        return [f"{where}: strata must map a factor name (not site) to its rule."]
    problems = []
    for factor, rule in strata.items():
        problems.extend(_check_rule(where, str(factor), rule, list(entry.get("instruments") or [])))
    return problems


def _check_entry(index: int, entry: Any) -> list[str]:
    if not isinstance(entry, Mapping):
        return [f"timepoint {index}: must be a mapping with key, label and instruments."]
    key = entry.get("key")
    where = f"timepoint {key}" if isinstance(key, str) else f"timepoint {index}"
    problems = [f"{where}: unknown setting {name!r}." for name in sorted(set(entry) - FIELDS,
                                                                           key=str)]
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        problems.append(f"{where}: key must be 1-40 lower-case letters, digits, _ or -, "
                        "starting with a letter or digit.")
    label = entry.get("label")
    if not isinstance(label, str) or not label.strip() or len(label) > 80:
        problems.append(f"{where}: give a label of at most 80 characters.")
    for flag in ("baseline", "post_treatment"):
        if not isinstance(entry.get(flag, False), bool):
            problems.append(f"{where}: {flag} must be true or false.")
    if entry.get("baseline") and entry.get("post_treatment"):
        problems.append(f"{where}: the baseline cannot be the post-treatment timepoint.")
    problems += _check_instruments(where, entry.get("instruments"))
    problems += _check_window(where, entry)
    for name in ("reminders", "sms_reminders"):
        problems += _check_days(name, where, entry.get(name, []))
    problems += _check_strata(where, entry)
    return problems


def check_schedule(data: Any) -> list[str]:
    """Every problem with a schedule given as data (empty when it is fine)."""
    if not isinstance(data, list):
        return ["The schedule must be a list of timepoints."]
    problems = []
    for index, entry in enumerate(data, start=1):
        problems.extend(_check_entry(index, entry))
    entries = [entry for entry in data if isinstance(entry, Mapping)]
    keys = [entry.get("key") for entry in entries]
    for key in sorted({k for k in keys if keys.count(k) > 1}, key=str):
        problems.append(f"Timepoint key {key!r} is used more than once.")
    baselines = [i for i, entry in enumerate(entries) if entry.get("baseline")]
    if len(baselines) > 1:
        problems.append("Only one timepoint can be the baseline.")
    elif baselines and baselines[0] != 0:
        problems.append("The baseline must be the first timepoint.")
    if sum(bool(entry.get("post_treatment")) for entry in entries) > 1:
        problems.append("Only one timepoint can be marked post_treatment.")
    return problems


# --------------------------------------------------------------------------- change guard

def _normalised(entry: Mapping[str, Any]) -> dict[str, Any]:
    baseline = bool(entry.get("baseline", False))
    return {"baseline": baseline, "post_treatment": bool(entry.get("post_treatment", False)),
            "opens": None if baseline else entry.get("opens"),
            "closes": None if baseline else entry.get("closes"),
            "overdue_after": entry.get("overdue_after", DEFAULT_OVERDUE_AFTER),
            "instruments": list(entry.get("instruments") or []),
            "strata": dict(entry.get("strata") or {})}


def _responses_by_timepoint(study: Study) -> dict[int, int]:
    rows = db.session.execute(
        select(AssessmentResponse.timepoint_id, func.count(AssessmentResponse.id))
        .join(Timepoint, Timepoint.id == AssessmentResponse.timepoint_id)
        .where(Timepoint.study_id == study.id).group_by(AssessmentResponse.timepoint_id)).all()
    return dict(rows)


def _refusal_for(timepoint: Timepoint, new: dict[str, Any] | None, answered: int,
                 is_open: bool) -> str | None:
    name = f"{timepoint.label} ({timepoint.key})"
    if new is None:
        if answered:
            return (f"{name} cannot be removed: {answered} questionnaire response(s) exist "
                    "for it.")
        if is_open:
            return f"{name} cannot be removed: enrolment has opened and participants follow it."
        return None
    old = _normalised(as_data(timepoint))
    if answered and old["instruments"] != new["instruments"]:
        return (f"The instruments of {name} cannot change: {answered} questionnaire "
                "response(s) exist for it. Add a new timepoint instead.")
    if not is_open:
        return None
    changed = [field for field in WINDOW_FIELDS if old[field] != new[field]]
    if changed:
        return (f"The {', '.join(changed)} of {name} cannot change once enrolment has "
                "opened: participants' windows (and who counts as a dropout) depend on it.")
    if old["strata"] != new["strata"]:
        return (f"The strata rules of {name} cannot change once enrolment has opened: they "
                "decide the stratum each participant is allocated in.")
    return None


def schedule_change_refusal(study: Study, data: list[dict[str, Any]]) -> str | None:
    """Why replacing the study's schedule with ``data`` is refused, or None.

    ``data`` should already pass :func:`check_schedule`.
    """
    is_open = study.enrolment_opened_at is not None
    answered = _responses_by_timepoint(study)
    wanted = {entry["key"]: _normalised(entry) for entry in data}
    for timepoint in timepoints_of(study):
        why = _refusal_for(timepoint, wanted.get(timepoint.key), answered.get(timepoint.id, 0),
                           is_open)
        if why:
            return why
    if is_open:
        existing = {timepoint.key for timepoint in timepoints_of(study)}
        added = [entry for key, entry in wanted.items() if key not in existing]
        if any(entry["baseline"] or entry["post_treatment"] or entry["strata"]
               for entry in added):
            return ("A baseline or post-treatment timepoint cannot be added once enrolment "
                    "has opened.")
    return None


# --------------------------------------------------------------------------- apply

def write_schedule(study: Study, data: list[dict[str, Any]]) -> list[Timepoint]:
    """Make the study's timepoints match ``data`` (already checked), by key. Flushes."""
    existing = {timepoint.key: timepoint for timepoint in timepoints_of(study)}
    wanted = {entry["key"] for entry in data}
    for key, timepoint in existing.items():
        if key not in wanted:  # the guard has made sure nobody answered it
            db.session.execute(delete(AssessmentReminder).where(
                AssessmentReminder.timepoint_id == timepoint.id))
            db.session.delete(timepoint)
    result = []
    for position, entry in enumerate(data):
        timepoint = existing.get(entry["key"]) or Timepoint(study_id=study.id, key=entry["key"])
        baseline = bool(entry.get("baseline", False))
        timepoint.label = entry["label"].strip()
        timepoint.position = position
        timepoint.instruments = list(entry["instruments"])
        timepoint.is_baseline = baseline
        timepoint.is_post_treatment = bool(entry.get("post_treatment", False))
        timepoint.opens_day = None if baseline else entry["opens"]
        timepoint.closes_day = None if baseline else entry["closes"]
        timepoint.overdue_after_days = entry.get("overdue_after", DEFAULT_OVERDUE_AFTER)
        timepoint.reminder_days = list(entry.get("reminders", []))
        timepoint.sms_reminder_days = list(entry.get("sms_reminders", []))
        timepoint.stratum_rules = {str(k): dict(v) for k, v in (entry.get("strata") or {}).items()}
        db.session.add(timepoint)
        result.append(timepoint)
    db.session.flush()
    return result


def strata_problems(study: Study, data: list[dict[str, Any]]) -> list[str]:
    """Stratum rules whose levels are not the study's levels of that factor."""
    problems = []
    for entry in data:
        for factor, rule in (entry.get("strata") or {}).items():
            levels = (study.stratum_levels or {}).get(factor)
            if factor not in study.strata or not levels:
                problems.append(f"timepoint {entry['key']}: {factor} is not one of the "
                                "study's stratification factors.")
            elif "label" not in rule:
                problems += [f"timepoint {entry['key']}: stratum {factor}: {rule[side]!r} is "
                             f"not one of its levels ({', '.join(map(str, levels))})."
                             for side in ("at_or_above", "below") if rule[side] not in levels]
    return problems


def apply_schedule(study: Study, data: list[dict[str, Any]], *, actor: User | None) -> None:
    """Replace the study's schedule with ``data``: checked, guarded, audited. Flushes.

    Raises ``ScheduleError`` with every problem, or with the refusal.
    """
    problems = check_schedule(data) or strata_problems(study, data)
    if problems:
        raise ScheduleError(problems)
    why = schedule_change_refusal(study, data)
    if why:
        raise ScheduleError([why])
    before = export_schedule(study)
    write_schedule(study, data)
    if before != export_schedule(study):
        audit.record("study.schedule_changed", actor=actor, target=study,
                     timepoints=[entry["key"] for entry in data])
