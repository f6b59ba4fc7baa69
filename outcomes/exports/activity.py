"""The study-process export tables: ``sms`` (one row per planned prompt), ``moderation``
(screening flags and risk alerts, codes and times only) and ``consort`` (the dashboard's
flow, counts by stage and arm).

Each function takes a :class:`~outcomes.exports.context.Context` and returns a pandas
DataFrame. No message bodies, phone numbers, post text or clinicians' notes are read.
Read-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import select

from core.extensions import db
from core.models import Participant
from core.sms.models import SmsMessage
from moderation.models import QueueItem, RiskAlert
from outcomes.exports.context import Context
from outcomes.prompts.models import ANSWERED, LATE, PlannedPrompt, PromptReply, SmsProtocolVersion

#: outbox statuses meaning the text reached the network (as ``prompts.services.DELIVERED``)
REACHED_NETWORK = ("queued", "sent", "delivered")

SMS_COLUMNS = ["pseudonym", "prompt_key", "protocol_version", "planned_day", "sent",
               "delivered", "answered", "late", "expired", "value", "latency_seconds"]


def sms(ctx: Context) -> pd.DataFrame:
    replies = _replies(ctx)
    rows = []
    for prompt_id, pid, key, version, planned_at, answered_at, expired_at, status in (
            db.session.execute(
                select(PlannedPrompt.id, PlannedPrompt.participant_id, PlannedPrompt.prompt_key,
                       SmsProtocolVersion.version, PlannedPrompt.planned_at,
                       PlannedPrompt.answered_at, PlannedPrompt.expired_at, SmsMessage.status)
                .join(SmsProtocolVersion,
                      SmsProtocolVersion.id == PlannedPrompt.protocol_version_id)
                .outerjoin(SmsMessage, SmsMessage.id == PlannedPrompt.message_id)
                .where(SmsProtocolVersion.study_id == ctx.study.id)
                .order_by(PlannedPrompt.participant_id, PlannedPrompt.planned_at))):
        if pid not in ctx.people:
            continue
        answer = replies.get((prompt_id, ANSWERED))
        rows.append({
            "pseudonym": ctx.pseudonym(pid), "prompt_key": key, "protocol_version": version,
            "planned_day": ctx.day(pid, planned_at),
            "sent": status in REACHED_NETWORK, "delivered": status == "delivered",
            "answered": answered_at is not None, "late": (prompt_id, LATE) in replies,
            "expired": expired_at is not None,
            "value": _number(answer[0]) if answer else float("nan"),
            "latency_seconds": _number(answer[1]) if answer else float("nan")})
    return pd.DataFrame(rows, columns=SMS_COLUMNS)


def _replies(ctx: Context) -> dict[tuple[int, str], tuple[Any, Any]]:
    """(prompt id, reply status) -> (score, latency) of the first such reply."""
    found: dict[tuple[int, str], tuple[Any, Any]] = {}
    for prompt_id, status, score, latency in db.session.execute(
            select(PromptReply.prompt_id, PromptReply.status, PromptReply.score,
                   PromptReply.latency_seconds)
            .join(Participant, Participant.id == PromptReply.participant_id)
            .where(Participant.study_id == ctx.study.id).order_by(PromptReply.received_at)):
        found.setdefault((prompt_id, status), (score, latency))
    return found


def _number(value: Any) -> float:
    return float(value) if value is not None else float("nan")


def _hours(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return float("nan")
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    return round((end - start).total_seconds() / 3600, 4)


MODERATION_COLUMNS = ["pseudonym", "record", "channel", "source", "category", "severity",
                      "is_risk", "screening_action", "status", "day", "response_hours",
                      "escalation_level", "acknowledged_hours", "resolved_hours",
                      "actions_taken", "possible_adverse_event"]


def moderation(ctx: Context) -> pd.DataFrame:
    ids = list(ctx.people)
    rows: list[dict[str, Any]] = []
    if ids:
        for item in db.session.scalars(select(QueueItem).where(QueueItem.participant_id.in_(ids))
                                       .order_by(QueueItem.created_at, QueueItem.id)):
            rows.append(_flag_row(ctx, item))
        for alert in db.session.scalars(select(RiskAlert).where(RiskAlert.participant_id.in_(ids))
                                        .order_by(RiskAlert.opened_at, RiskAlert.id)):
            rows.append(_alert_row(ctx, alert))
    frame = pd.DataFrame(rows, columns=MODERATION_COLUMNS)
    for column in ("severity", "escalation_level", "day", "response_hours",
                   "acknowledged_hours", "resolved_hours"):
        frame[column] = frame[column].astype("float64")
    return frame


def _flag_row(ctx: Context, item: QueueItem) -> dict[str, Any]:
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


def _alert_row(ctx: Context, alert: RiskAlert) -> dict[str, Any]:
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

    board = services.dashboard(ctx.study, now=ctx.now)
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
