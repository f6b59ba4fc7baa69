"""Study look-ups, arm features and the researcher dashboard's figures.

Read-only; enrolment itself is ``core.accounts.enrol_participant``, the participant
path is ``outcomes.participants`` and allocation is ``outcomes.randomisation``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import abort, flash, g, has_request_context, redirect, url_for
from markupsafe import Markup
from sqlalchemy import exists, func, select
from werkzeug.wrappers import Response

from core import principal
from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from outcomes import adherence
from outcomes import participants as path
from outcomes.adherence import charts, summary
from outcomes.models import FEATURES, Arm, StatusChange, Study, Withdrawal

#: the participant path, in order, as the dashboard shows it
STATUSES = ["invited", "consented", "baseline_done", "randomised", "active", "completed",
            "withdrawn", "lost_to_follow_up"]


class NoStudy(LookupError):
    pass


def current_study() -> Study:
    study = db.session.scalar(select(Study).order_by(Study.id).limit(1))
    if study is None:
        raise NoStudy("No study is set up yet. Run `flask demo seed` or create one.")
    return study


def features_for(user: User) -> dict[str, bool]:
    """Which platform features a participant has: their arm's, less the intervention once
    they have withdrawn from it, and none once they have withdrawn from the study or
    while they are not randomised yet (all for staff).

    Nothing of the intervention before allocation: someone who used the modules or the
    forum while filling in the baseline, and was then allocated to a comparison arm
    without them, would blur the difference the trial measures. Until randomisation a
    participant has their home page, the questionnaires, notifications and their account.

    Worked out once per request and user (the navigation and the page ask several times);
    a change to the arm or a withdrawal shows from the next request."""
    if not has_request_context():
        return _features_for(user)
    cache = g.setdefault("features_for", {})
    key = getattr(user, "id", None)
    if key not in cache:
        cache[key] = _features_for(user)
    return dict(cache[key])


def awaiting_allocation(user: Any) -> bool:
    """Whether ``user`` is a participant still in the study and not randomised yet (the
    intervention's pages send them home, where their questionnaires are)."""
    participant = getattr(user, "participant", None) if user.is_authenticated else None
    return (participant is not None and participant.arm_id is None
            and participant.status != path.WITHDRAWN)


NOT_OPEN_YET = ("Your programme opens once you have been placed in a study group: this "
                "page says what happens next.")


def refuse_feature(user: Any) -> Response:
    """The answer to a participant who opens a page of a feature they do not have: while
    they await allocation, their home page with a word on why; else 403."""
    if awaiting_allocation(user):
        flash(NOT_OPEN_YET, "info")
        return redirect(url_for("core.home"))
    abort(403)


def _features_for(user: User) -> dict[str, bool]:
    participant = user.participant if user.is_authenticated else None
    if participant is not None and participant.status == path.WITHDRAWN:
        return {name: False for name in FEATURES}
    if participant is None:
        return {name: True for name in FEATURES}
    if participant.arm_id is None:
        return {name: False for name in FEATURES}
    arm_features = principal.fact(
        "arm_features", user, lambda: db.session.get(Arm, participant.arm_id).features) or {}
    features = {name: bool(arm_features.get(name, False)) for name in FEATURES}
    if principal.fact("left_intervention", user,
                      lambda: path.has_withdrawn(participant, "intervention")):
        features.update({name: False for name in path.INTERVENTION_FEATURES})
    return features


def _arm_features_fact() -> Any:
    return (select(Arm.features).where(Arm.id == Participant.arm_id)
            .scalar_subquery())


def _left_intervention_fact() -> Any:
    return exists().where(Withdrawal.participant_id == Participant.id,
                          Withdrawal.kind == "intervention")


# the session loads both with the user (``core.principal``): the navigation's and the
# page's ``features_for`` then cost no query
principal.register("arm_features", _arm_features_fact)
principal.register("left_intervention", _left_intervention_fact)


@dataclass(frozen=True)
class FlowRow:
    """One line of the CONSORT flow: a total, and per arm once participants are allocated."""

    key: str
    label: str
    total: int
    #: arm id -> participants; None for the stages before allocation
    by_arm: dict[int, int] | None = None
    note: str = ""


@dataclass(frozen=True)
class TimepointRow:
    """Assessment completion at one timepoint (from ``outcomes.assessments``)."""

    key: str
    label: str
    totals: dict[str, int]
    #: arm id -> {"due": n, "completed": n, "overdue": n, "missed": n}
    by_arm: dict[int, dict[str, int]]


@dataclass
class DistributionRow:
    metric: str
    label: str
    #: arm id -> summary of the metric among the arm's randomised participants
    by_arm: dict[int, summary.Distribution]
    #: arm id -> histogram (ratios only)
    histograms: dict[int, summary.Histogram] = field(default_factory=dict)
    #: the histogram's bands, (low, high), the same for every arm
    bands: list[tuple[float, float]] = field(default_factory=list)
    #: an SVG box plot by arm (ratios only)
    chart: Markup | None = None


@dataclass
class Dashboard:
    study: Study
    #: stored statuses, plus lost_to_follow_up (computed, and also counted in its status)
    by_status: dict[str, int]
    by_arm_status: dict[tuple[int | None, str], int]
    arms: list[Arm]
    total: int
    #: (withdrawal kind, arm id) -> participants
    withdrawals: dict[tuple[str, int | None], int] = field(default_factory=dict)
    lost_after_days: int = path.DEFAULT_LOST_AFTER_DAYS
    stopped_after_days: int = adherence.DEFAULT_STOPPED_AFTER_DAYS
    #: the CONSORT flow, in order
    flow: list[FlowRow] = field(default_factory=list)
    #: None when the assessment schedule is not installed
    timepoints: list[TimepointRow] | None = None
    distributions: list[DistributionRow] = field(default_factory=list)
    #: arm id -> {"stopped": n, "dropout": n, "both": n, "dropout_unknown": n}
    attrition: dict[int, dict[str, int]] = field(default_factory=dict)
    #: the schedule names a post-treatment timepoint (else dropout cannot be counted)
    has_post_treatment: bool = False


def dashboard(study: Study, *, now: datetime | None = None,
              lost_after_days: int | None = None,
              stopped_after_days: int = adherence.DEFAULT_STOPPED_AFTER_DAYS,
              figures: list[adherence.Adherence] | None = None,
              flow_only: bool = False) -> Dashboard:
    """Every figure of the researcher dashboard, from live data, in a fixed number of
    queries whatever the number of participants or events. Lost to follow-up uses the
    study's own ``lost_after_days`` unless another value is given.

    ``figures``: the whole-trial adherence figures of the study's randomised participants
    as of ``now`` with ``stopped_after_days``, when the caller has them already (the
    export does); otherwise they are worked out here. ``flow_only``: only the counts and
    the CONSORT flow (no assessment completion, distributions or attrition), for the
    export's ``consort`` table."""
    now = now or utcnow()
    board, lost = _counts(study, now, lost_after_days or study.lost_after_days,
                          stopped_after_days)
    if figures is None:
        figures = list(adherence.for_study(study, now=now,
                                           stopped_after_days=stopped_after_days).values())
    board.has_post_treatment = any(f.post_treatment_completed is not None for f in figures)
    board.flow = _flow(study, board, figures, lost)
    if flow_only:
        return board
    board.timepoints = _timepoints(study, now)
    board.distributions = _distributions(board.arms, figures)
    board.attrition = _attrition(board.arms, figures)
    return board


def _counts(study: Study, now: datetime, lost_after_days: int, stopped_after_days: int
            ) -> tuple[Dashboard, list[path.LostParticipant]]:
    """The dashboard with its counts by status and arm, and who is lost to follow-up."""
    rows = db.session.execute(
        select(Participant.arm_id, Participant.status, func.count(Participant.id))
        .where(Participant.study_id == study.id)
        .group_by(Participant.arm_id, Participant.status)
    ).all()
    by_status: Counter[str] = Counter()
    by_arm_status: dict[tuple[int | None, str], int] = {}
    for arm_id, status, count in rows:
        by_status[status] += count
        by_arm_status[(arm_id, status)] = count
    total = sum(by_status.values())
    lost = path.lost_to_follow_up(study, now=now, days=lost_after_days)
    for person in lost:
        by_status[path.LOST] += 1
        key = (person.arm_id, path.LOST)
        by_arm_status[key] = by_arm_status.get(key, 0) + 1
    board = Dashboard(study, dict(by_status), by_arm_status, list(study.arms), total,
                      path.withdrawal_counts(study), lost_after_days, stopped_after_days)
    return board, lost


# --- the CONSORT flow ------------------------------------------------------------------------

def _reached(study: Study) -> Counter[str]:
    """How many participants ever reached each step of the path: their status, or for the
    withdrawn the status they withdrew from (two queries)."""
    order = {status: n for n, status in enumerate(path.PATH)}
    withdrew_from = dict(db.session.execute(
        select(StatusChange.participant_id, StatusChange.from_status)
        .join(Participant, Participant.id == StatusChange.participant_id)
        .where(Participant.study_id == study.id, StatusChange.to_status == path.WITHDRAWN)
    ).all())
    reached: Counter[str] = Counter()
    for pid, status, randomised_at in db.session.execute(
            select(Participant.id, Participant.status, Participant.randomised_at)
            .where(Participant.study_id == study.id)):
        step = order.get(withdrew_from.get(pid, "invited") if status == path.WITHDRAWN
                         else status, 0)
        if randomised_at is not None:
            step = max(step, order["randomised"])
        for status_reached in path.PATH[:step + 1]:
            reached[status_reached] += 1
    return reached


def _by_arm(figures: list[adherence.Adherence], arms: list[Arm], test) -> dict[int, int]:
    codes = {arm.code: arm.id for arm in arms}
    counts = Counter(codes.get(f.arm) for f in figures if test(f))
    return {arm.id: counts.get(arm.id, 0) for arm in arms}


def _flow(study: Study, board: Dashboard, figures: list[adherence.Adherence],
          lost: list[path.LostParticipant]) -> list[FlowRow]:
    reached = _reached(study)
    arms = board.arms
    lost_by_arm = Counter(person.arm_id for person in lost)

    def withdrawn(kind: str) -> dict[int, int]:
        return {arm.id: board.withdrawals.get((kind, arm.id), 0) for arm in arms}

    def row(key: str, label: str, by_arm: dict[int, int], note: str = "") -> FlowRow:
        return FlowRow(key, label, sum(by_arm.values()), by_arm, note)

    rows = [
        FlowRow("enrolled", "Enrolled (invited)", board.total),
        FlowRow("consented", "Consented", reached["consented"]),
        FlowRow("baseline_done", "Completed the baseline questionnaires",
                reached["baseline_done"]),
        FlowRow("withdrew_before", "Withdrew before randomisation",
                board.withdrawals.get(("study", None), 0)),
        row("allocated", "Randomised (allocated)", _by_arm(figures, arms, lambda f: True)),
        row("received", "Received the intervention", _by_arm(
            figures, arms, lambda f: f.received_intervention),
            "at least one intervention event after randomisation"),
        row("not_received", "Did not receive the intervention", _by_arm(
            figures, arms, lambda f: not f.received_intervention)),
        row("withdrew_intervention", "Discontinued the intervention (withdrew from it)",
            withdrawn("intervention")),
        row("withdrew_sms", "Stopped text messages (withdrew from SMS only)", withdrawn("sms")),
        row("withdrew_study", "Withdrew from the study after randomisation",
            withdrawn("study")),
        row("lost", "Lost to follow-up", {arm.id: lost_by_arm.get(arm.id, 0) for arm in arms},
            f"no activity for {board.lost_after_days} days"),
        row("stopped_using", "Stopped using", _by_arm(figures, arms, lambda f: f.stopped_using),
            f"no use for {board.stopped_after_days} days"),
    ]
    if board.has_post_treatment:
        rows.append(row("analysed", "Completed the post-treatment assessment (analysed)",
                        _by_arm(figures, arms, lambda f: bool(f.post_treatment_completed))))
    return rows


# --- assessments, distributions, attrition ---------------------------------------------------

_TIMEPOINT_FIGURES = ("due", "completed", "overdue", "missed")


def _figure_counts(item: object) -> dict[str, int]:
    get = item.get if isinstance(item, dict) else lambda name, default=0: getattr(
        item, name, default)
    return {name: int(get(name, 0) or 0) for name in _TIMEPOINT_FIGURES}


def _timepoints(study: Study, now: datetime) -> list[TimepointRow] | None:
    """Completion by timepoint from ``outcomes.assessments``; None when not installed."""
    from outcomes.adherence.sources import COMPLETION, optional

    completion = optional(COMPLETION, "completion_by_timepoint")
    if completion is None:
        return None
    rows = []
    for item in completion(study, now=now):
        by_arm = getattr(item, "by_arm", None) or {}
        rows.append(TimepointRow(
            key=str(getattr(item, "key", "")),
            label=str(getattr(item, "label", "") or getattr(item, "key", "")),
            totals=_figure_counts(item),
            by_arm={arm_id: _figure_counts(counts) for arm_id, counts in by_arm.items()}))
    return rows


#: the metrics whose distribution the dashboard shows, in order
DISTRIBUTED = ("adherence_ratio", "module_adherence_ratio", "active_days", "active_weeks",
               "logins", "sms_response_rate", "moderator_contacts")
_HISTOGRAMS = ("adherence_ratio", "sms_response_rate")


def _distributions(arms: list[Arm], figures: list[adherence.Adherence]) -> list[DistributionRow]:
    rows = []
    for metric in DISTRIBUTED:
        values = {arm.id: [getattr(f, metric) for f in figures if f.arm == arm.code]
                  for arm in arms}
        label = adherence.DEFINITIONS[metric]["label"]
        by_arm = {arm_id: summary.distribution(v) for arm_id, v in values.items()}
        row = DistributionRow(metric, label, by_arm)
        if metric in _HISTOGRAMS:
            edges = summary.histogram([]).edges
            row.histograms.update({arm_id: summary.histogram(v) for arm_id, v in values.items()})
            row.bands.extend(zip(edges, edges[1:], strict=False))
            row.chart = charts.box_plot(
                [(arm.name, by_arm[arm.id]) for arm in arms], title=f"{label} by arm",
                low=0.0, high=1.0, show=lambda value, m=metric: show_value(m, value),
                chart_id=f"chart-{metric.replace('_', '-')}")
        rows.append(row)
    return rows


def _attrition(arms: list[Arm], figures: list[adherence.Adherence]) -> dict[int, dict[str, int]]:
    """Non-usage attrition and study dropout side by side, and their overlap, per arm."""
    result = {}
    for arm in arms:
        mine = [f for f in figures if f.arm == arm.code]
        result[arm.id] = {
            "randomised": len(mine),
            "stopped": sum(1 for f in mine if f.stopped_using),
            "dropout": sum(1 for f in mine if f.study_dropout),
            "both": sum(1 for f in mine if f.stopped_using and f.study_dropout),
            "stopped_not_dropout": sum(1 for f in mine
                                       if f.stopped_using and f.study_dropout is False),
            "dropout_unknown": sum(1 for f in mine if f.study_dropout is None),
        }
    return result


def lost_to_follow_up_ids(study: Study, *, now: datetime | None = None) -> list[int]:
    return [person.participant_id
            for person in path.lost_to_follow_up(study, now=now or utcnow())]


#: metrics shown as percentages on the dashboard
_PERCENT = frozenset({"adherence_ratio", "module_adherence_ratio", "sms_response_rate"})


def show_value(metric: str, value: float | None) -> str:
    """A dashboard figure as text: ratios as whole percentages, counts to one decimal
    place when a quartile falls between two values, "–" for none."""
    if value is None:
        return "–"
    if metric in _PERCENT:
        return f"{value * 100:.0f} %"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
