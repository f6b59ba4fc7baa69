"""The study-process export tables: ``sms`` (one row per planned prompt), ``moderation``
(screening flags, risk alerts, check-in tasks and message counts: codes, times and
counts only) and ``consort`` (the dashboard's
flow, counts by stage and arm).

Each function takes a :class:`~outcomes.exports.context.Context` and returns a pandas
DataFrame. No message bodies, phone numbers, post text or clinicians' notes are read.
Read-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from core.extensions import db
from core.models import Participant
from core.sms.models import SmsMessage
from outcomes.exports.context import Context, raw_time, read_frame
from outcomes.prompts.models import ANSWERED, LATE, PlannedPrompt, PromptReply, SmsProtocolVersion

#: outbox statuses meaning the text reached the network (as ``prompts.services.DELIVERED``)
REACHED_NETWORK = ("queued", "sent", "delivered")

SMS_COLUMNS = ["pseudonym", "prompt_key", "protocol_version", "planned_day", "sent",
               "delivered", "answered", "late", "expired", "value", "latency_seconds"]


def sms(ctx: Context) -> pd.DataFrame:
    """One row per planned prompt, built column-wise from two queries."""
    prompts = read_frame(
        select(PlannedPrompt.id, PlannedPrompt.participant_id, PlannedPrompt.prompt_key,
               SmsProtocolVersion.version, raw_time(PlannedPrompt.planned_at),
               PlannedPrompt.answered_at.is_not(None), PlannedPrompt.expired_at.is_not(None),
               SmsMessage.status)
        .join(SmsProtocolVersion, SmsProtocolVersion.id == PlannedPrompt.protocol_version_id)
        .outerjoin(SmsMessage, SmsMessage.id == PlannedPrompt.message_id)
        .where(SmsProtocolVersion.study_id == ctx.study.id)
        .order_by(PlannedPrompt.participant_id, PlannedPrompt.planned_at, PlannedPrompt.id),
        ["prompt_id", "pid", "prompt_key", "protocol_version", "planned_at", "answered",
         "expired", "status"])
    prompts = prompts[prompts["pid"].isin(list(ctx.people))].reset_index(drop=True)
    if prompts.empty:
        return pd.DataFrame(columns=SMS_COLUMNS)
    answers, late = _replies(ctx)
    answer = prompts["prompt_id"].map(answers["score"]) if len(answers) else None
    latency = prompts["prompt_id"].map(answers["latency"]) if len(answers) else None
    nan = pd.Series(float("nan"), index=prompts.index)
    return pd.DataFrame({
        "pseudonym": ctx.pseudonyms(prompts["pid"]), "prompt_key": prompts["prompt_key"],
        "protocol_version": prompts["protocol_version"].astype("int64"),
        "planned_day": ctx.days(prompts["pid"], prompts["planned_at"]),
        "sent": prompts["status"].isin(REACHED_NETWORK).astype(bool),
        "delivered": prompts["status"].eq("delivered").fillna(False).astype(bool),
        "answered": prompts["answered"].astype(bool),
        "late": prompts["prompt_id"].isin(late).astype(bool),
        "expired": prompts["expired"].astype(bool),
        "value": nan if answer is None else pd.to_numeric(answer).astype("float64"),
        "latency_seconds": nan if latency is None else pd.to_numeric(latency).astype("float64"),
    }, columns=SMS_COLUMNS)


def _replies(ctx: Context) -> tuple[pd.DataFrame, set[int]]:
    """The score and latency of each prompt's first answer (indexed by prompt id), and
    the prompts that had a late reply."""
    replies = read_frame(
        select(PromptReply.prompt_id, PromptReply.status, PromptReply.score,
               PromptReply.latency_seconds)
        .join(Participant, Participant.id == PromptReply.participant_id)
        .where(Participant.study_id == ctx.study.id)
        .order_by(PromptReply.received_at, PromptReply.id),
        ["prompt_id", "status", "score", "latency"])
    first = replies.drop_duplicates(["prompt_id", "status"], keep="first")
    answers = first[first["status"] == ANSWERED].set_index("prompt_id")
    late = set(first.loc[first["status"] == LATE, "prompt_id"].tolist())
    return answers, late


def _hours(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return float("nan")
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    return round((end - start).total_seconds() / 3600, 4)


MODERATION_COLUMNS = ["pseudonym", "record", "channel", "source", "category", "severity",
                      "is_risk", "screening_action", "status", "day", "response_hours",
                      "escalation_level", "acknowledged_hours", "resolved_hours",
                      "actions_taken", "possible_adverse_event", "reason", "due_day",
                      "completed_day", "outcome", "messages_to_participant",
                      "messages_from_participant"]
_FLOATS = ("severity", "escalation_level", "day", "response_hours", "acknowledged_hours",
           "resolved_hours", "due_day", "completed_day", "messages_to_participant",
           "messages_from_participant")
#: the columns a record kind does not use, and their empty value
_EMPTY: dict[str, Any] = {
    "channel": "", "source": "", "category": "", "severity": float("nan"), "is_risk": False,
    "screening_action": "", "status": "", "day": float("nan"),
    "response_hours": float("nan"), "escalation_level": float("nan"),
    "acknowledged_hours": float("nan"), "resolved_hours": float("nan"), "actions_taken": "",
    "possible_adverse_event": "", "reason": "", "due_day": float("nan"),
    "completed_day": float("nan"), "outcome": "", "messages_to_participant": float("nan"),
    "messages_from_participant": float("nan")}


def moderation(ctx: Context) -> pd.DataFrame:
    """Flags, risk alerts, check-in tasks (one row each) and a ``messages`` row per
    participant with moderator messages (counts by direction). Codes and times only:
    no message bodies, notes or post text are read."""
    # moderation is read here, not at import: importing the moderation package (its views
    # reach the modules package, which imports outcomes) while outcomes loads is a cycle
    from moderation.models import QueueItem, RiskAlert

    ids = list(ctx.people)
    rows: list[dict[str, Any]] = []
    if ids:
        for item in db.session.scalars(select(QueueItem).where(QueueItem.participant_id.in_(ids))
                                       .order_by(QueueItem.created_at, QueueItem.id)):
            rows.append({**_EMPTY, **_flag_row(ctx, item)})
        for alert in db.session.scalars(select(RiskAlert).where(RiskAlert.participant_id.in_(ids))
                                        .order_by(RiskAlert.opened_at, RiskAlert.id)):
            rows.append({**_EMPTY, **_alert_row(ctx, alert)})
        rows += _checkin_rows(ctx, ids)
        rows += _message_rows(ctx, ids)
    frame = pd.DataFrame(rows, columns=MODERATION_COLUMNS)
    for column in _FLOATS:
        frame[column] = frame[column].astype("float64")
    frame["is_risk"] = frame["is_risk"].astype(bool)
    return frame


def _checkin_rows(ctx: Context, ids: list[int]) -> list[dict[str, Any]]:
    from moderation.care_models import CheckInTask

    rows = []
    for pid, reason, status, created, due, completed, channel, outcome in db.session.execute(
            select(CheckInTask.participant_id, CheckInTask.reason, CheckInTask.status,
                   CheckInTask.created_at, CheckInTask.due_at, CheckInTask.completed_at,
                   CheckInTask.channel, CheckInTask.outcome)
            .where(CheckInTask.participant_id.in_(ids))
            .order_by(CheckInTask.created_at, CheckInTask.id)):
        rows.append({**_EMPTY, "pseudonym": ctx.pseudonym(pid), "record": "checkin",
                     "channel": channel or "", "source": "rule" if reason != "manual"
                     else "moderator", "status": status, "day": ctx.day(pid, created),
                     "response_hours": _hours(created, completed), "reason": reason,
                     "due_day": ctx.day(pid, due), "completed_day": ctx.day(pid, completed),
                     "outcome": outcome or ""})
    return rows


def _message_rows(ctx: Context, ids: list[int]) -> list[dict[str, Any]]:
    from moderation.care_models import ModeratorMessage

    counts: dict[int, dict[str, int]] = {}
    for pid, direction, count in db.session.execute(
            select(ModeratorMessage.participant_id, ModeratorMessage.direction,
                   func.count(ModeratorMessage.id))
            .where(ModeratorMessage.participant_id.in_(ids))
            .group_by(ModeratorMessage.participant_id, ModeratorMessage.direction)):
        counts.setdefault(pid, {})[direction] = count
    return [{**_EMPTY, "pseudonym": ctx.pseudonym(pid), "record": "messages",
             "messages_to_participant": float(found.get("to_participant", 0)),
             "messages_from_participant": float(found.get("from_participant", 0))}
            for pid, found in sorted(counts.items())]


def _flag_row(ctx: Context, item: Any) -> dict[str, Any]:
    pid = item.participant_id
    return {"pseudonym": ctx.pseudonym(pid), "record": "flag", "channel": item.channel,
            "source": item.source, "category": item.category or "",
            "severity": item.severity, "is_risk": bool(item.is_risk),
            "screening_action": item.action, "status": item.status,
            "day": ctx.day(pid, item.created_at),
            "response_hours": _hours(item.created_at, item.handled_at),
            "escalation_level": float("nan"), "acknowledged_hours": float("nan"),
            "resolved_hours": float("nan"), "actions_taken": "",
            "possible_adverse_event": "unknown"}


def _alert_row(ctx: Context, alert: Any) -> dict[str, Any]:
    pid = alert.participant_id
    adverse = alert.possible_adverse_event
    return {"pseudonym": ctx.pseudonym(pid), "record": "alert", "channel": alert.channel,
            "source": "screening", "category": alert.category or "",
            "severity": float("nan"), "is_risk": True, "screening_action": "",
            "status": alert.status, "day": ctx.day(pid, alert.opened_at),
            "response_hours": _hours(alert.opened_at, alert.acknowledged_at),
            "escalation_level": alert.level,
            "acknowledged_hours": _hours(alert.opened_at, alert.acknowledged_at),
            "resolved_hours": _hours(alert.opened_at, alert.resolved_at),
            "actions_taken": ";".join(alert.actions_taken or []),
            "possible_adverse_event": ("unknown" if adverse is None
                                       else "yes" if adverse else "no")}


CONSORT_COLUMNS = ["stage", "order", "label", "arm", "count", "note"]


def consort(ctx: Context) -> pd.DataFrame:
    from outcomes import services

    board = services.dashboard(ctx.study, now=ctx.now, flow_only=True,
                               figures=list(ctx.adherence_figures().values()))
    codes = {arm.id: arm.code for arm in board.arms}
    rows = []
    for order, flow in enumerate(board.flow):
        rows.append({"stage": flow.key, "order": order, "label": flow.label, "arm": "all",
                     "count": flow.total, "note": flow.note})
        for arm_id, count in (flow.by_arm or {}).items():
            rows.append({"stage": flow.key, "order": order, "label": flow.label,
                         "arm": codes.get(arm_id, str(arm_id)), "count": count,
                         "note": flow.note})
    return pd.DataFrame(rows, columns=CONSORT_COLUMNS)
