"""The SMS symptom-prompt protocol at work: planning, expiry and figures.

- :func:`plan_due` (the ``sms.plan`` job) makes a ``PlannedPrompt`` row for every prompt
  due within the look-ahead, for every participant who may get prompts, and queues its
  text in the outbox (``core.sms.outbox.queue_many``) with ``send_after`` = its planned
  time; it queues reminders of sent, unanswered prompts the same way, and cancels
  still-pending texts of participants who may no longer get them (withdrawn, arm
  without SMS, consent cleared). It works in bulk: about a dozen statements whatever
  the number of participants (a few more per thousand texts, for long IN lists).
- :func:`expire_due` (the ``sms.expire`` job) closes unanswered prompts at their expiry.
- Replies, STOP, START and HELP are ``outcomes.prompts.replies``.
- :func:`response_rates` and :func:`sms_answers_for` are the read side.

Transaction contract: functions that change something flush and never commit; the
scheduler's job wrapper, the webhook or the test commits once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import Select, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core import sms as gateway
from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from core.sms.models import SmsMessage
from core.sms.outbox import Outgoing, cancel_many, queue_many
from outcomes import participants as path
from outcomes.models import Arm, Withdrawal
from outcomes.prompts import planner
from outcomes.prompts.models import (
    PlannedPrompt,
    PromptReply,
    SmsProtocolVersion,
)
from outcomes.prompts.protocol import Prompt, Protocol, read_protocol
from outcomes.services import features_for

#: outbound statuses of a prompt that went out (a reply can answer it)
WENT_OUT = ("sending", "unknown", "queued", "sent", "delivered", "undelivered")
#: outbound statuses that count as delivered in the response rate
DELIVERED = ("queued", "sent", "delivered")


# --------------------------------------------------------------------------- who gets prompts

NO_SMS_ARM = "their arm has no SMS prompts"


def _protocols() -> dict[int, tuple[SmsProtocolVersion, Protocol]]:
    """The current protocol of every study that has one."""
    newest = (select(SmsProtocolVersion.study_id, func.max(SmsProtocolVersion.version)
                     .label("version")).group_by(SmsProtocolVersion.study_id).subquery())
    rows = db.session.scalars(select(SmsProtocolVersion).join(newest, and_(
        SmsProtocolVersion.study_id == newest.c.study_id,
        SmsProtocolVersion.version == newest.c.version)))
    return {row.study_id: (row, read_protocol(row.data)) for row in rows}


@dataclass(frozen=True)
class Recipient:
    """What decides whether and when a participant gets prompts. The planner reads these
    as plain rows for everyone at once (:data:`RECIPIENT`), so planning for thousands of
    participants costs a few queries, not a few per participant."""

    id: int
    study_id: int
    status: str
    arm_id: int | None
    randomised_at: datetime | None
    phone: str | None
    sms_consent: bool
    sms_opted_out_at: datetime | None
    #: the account is enabled
    enabled: bool
    timezone: str
    wake_start: time
    wake_end: time

    @classmethod
    def of(cls, participant: Participant) -> Recipient:
        return cls(participant.id, participant.study_id, participant.status,
                   participant.arm_id, participant.randomised_at, participant.phone,
                   participant.sms_consent, participant.sms_opted_out_at,
                   participant.user.is_enabled, participant.timezone, participant.wake_start,
                   participant.wake_end)


#: the columns of a :class:`Recipient`, in order (the query joins ``User`` to ``Participant``)
RECIPIENT = (Participant.id, Participant.study_id, Participant.status, Participant.arm_id,
             Participant.randomised_at, Participant.phone, Participant.sms_consent,
             Participant.sms_opted_out_at, User.is_enabled, Participant.timezone,
             Participant.wake_start, Participant.wake_end)


def _paused_reason(person: Recipient, protocol: Protocol | None, *, now: datetime) -> str | None:
    """Why ``person`` gets no prompts, their arm aside (each caller checks it its way)."""
    reasons = (
        (protocol is None, "the study has no SMS protocol"),
        (not path.may_contact(person), "withdrawn from the study"),  # reads the status only
        (person.status not in path.IN_FOLLOW_UP, f"status {person.status}"),
        (person.arm_id is None or person.randomised_at is None, "not randomised"),
        (not person.phone, "no mobile number"),
        (not person.sms_consent, "no SMS consent"),
        (person.sms_opted_out_at is not None, "texted STOP"),
        (not person.enabled, "account disabled"),
    )
    for applies, reason in reasons:
        if applies:
            return reason
    if protocol.duration_days is not None and \
            now >= person.randomised_at + timedelta(days=protocol.duration_days):
        return "the prompt period has ended"
    return None


def prompts_paused_because(participant: Participant, protocol: Protocol | None, *,
                           now: datetime) -> str | None:
    """Why this participant gets no prompts now, or None when they do."""
    reason = _paused_reason(Recipient.of(participant), protocol, now=now)
    if reason is None and not features_for(participant.user)["sms"]:
        return NO_SMS_ARM
    return reason


class _Verdicts:
    """:func:`prompts_paused_because` for many participants of one planning run: arms are
    read once and each participant's verdict is kept."""

    def __init__(self, protocols: dict[int, tuple[SmsProtocolVersion, Protocol]],
                 now: datetime) -> None:
        self.protocols, self.now = protocols, now
        # what features_for(user)["sms"] is for a randomised participant still in the
        # study: their arm's flag, less the intervention's features after they left it
        self.arm_sms = {arm.id: arm.has("sms") for arm in db.session.scalars(select(Arm))}
        self.left_intervention: set[int] = set()
        if "sms" in path.INTERVENTION_FEATURES:
            self.left_intervention = set(db.session.scalars(
                select(Withdrawal.participant_id).where(Withdrawal.kind == "intervention")))
        self._known: dict[int, str | None] = {}

    def reason(self, person: Recipient) -> str | None:
        if person.id not in self._known:
            current = self.protocols.get(person.study_id)
            reason = _paused_reason(person, current[1] if current else None, now=self.now)
            if reason is None and (not self.arm_sms.get(person.arm_id, False)
                                   or person.id in self.left_intervention):
                reason = NO_SMS_ARM
            self._known[person.id] = reason
        return self._known[person.id]


def _zone(participant: Participant | Recipient) -> ZoneInfo:
    return _zone_named(participant.timezone,
                       current_app.config.get("DEFAULT_TIMEZONE", "Europe/London"))


@functools.lru_cache(maxsize=256)
def _zone_named(name: str, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def _candidates(study_ids: Iterable[int]) -> list[Recipient]:
    return [Recipient(*row) for row in db.session.execute(
        select(*RECIPIENT).join(User, User.id == Participant.user_id)
        .where(Participant.study_id.in_(list(study_ids)),
               Participant.status.in_(path.IN_FOLLOW_UP), Participant.sms_consent.is_(True),
               Participant.sms_opted_out_at.is_(None), Participant.phone.is_not(None))
        .order_by(Participant.id))]


# --------------------------------------------------------------------------- planning
#
# The whole run is about a dozen statements whatever the number of participants (IN
# lists go by a thousand ids): the candidates with the facts that pause them, the prompt
# rows of the days in view, one INSERT of the missing prompt rows (ON CONFLICT DO
# NOTHING on the unique participant/prompt/day, so a concurrent planner's row is kept
# and reused), one bulk queue of their texts (``core.sms.outbox.queue_many``,
# deduplicated on "prompt:<id>"), one UPDATE linking them. The rules are those of one
# participant at a time: due slots from ``planner``, a row made once per slot, a text
# queued once per row.

def _slots(person: Recipient, protocol: Protocol, now: datetime
           ) -> list[tuple[Prompt, planner.Slot]]:
    zone = _zone(person)
    found = []
    for day in planner.days_around(now, zone):
        for prompt in protocol.prompts:
            slot = planner.plan_slot(prompt, participant_id=person.id, day=day, zone=zone,
                                     wake_start=person.wake_start, wake_end=person.wake_end)
            if slot is not None and planner.is_due(slot, now) and \
                    slot.planned_at >= person.randomised_at:
                found.append((prompt, slot))
    return found


@dataclass(frozen=True)
class _Due:
    person: Recipient
    version_id: int
    prompt: Prompt
    slot: planner.Slot

    @property
    def key(self) -> tuple[int, str, date]:
        return (self.person.id, self.slot.prompt_key, self.slot.day)


def _planned(days: set[date], keys: set[str]) -> dict[tuple[int, str, date], Any]:
    """The prompt rows of these local days and prompts (everyone's), by their unique key."""
    rows = db.session.execute(
        select(PlannedPrompt.id, PlannedPrompt.participant_id, PlannedPrompt.prompt_key,
               PlannedPrompt.slot, PlannedPrompt.planned_at, PlannedPrompt.message_id,
               PlannedPrompt.answered_at)
        .where(PlannedPrompt.slot.in_(sorted(days)), PlannedPrompt.prompt_key.in_(sorted(keys))))
    return {(row.participant_id, row.prompt_key, row.slot): row for row in rows}


def _insert_missing_rows(due: list[_Due]) -> None:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    db.session.execute(
        insert(PlannedPrompt.__table__).on_conflict_do_nothing(
            index_elements=["participant_id", "prompt_key", "slot"]),
        [{"participant_id": item.person.id, "protocol_version_id": item.version_id,
          "prompt_key": item.slot.prompt_key, "slot": item.slot.day,
          "planned_at": item.slot.planned_at, "expires_at": item.slot.expires_at,
          "reminder_at": item.slot.reminder_at, "created_at": now} for item in due])


def _link(column: str, message_ids: dict[int, int]) -> None:
    """Point prompt rows (id -> outbox id) at their texts, in one statement."""
    if not message_ids:
        return
    table = PlannedPrompt.__table__
    db.session.execute(update(table).where(table.c.id == bindparam("row_id"))
                       .values({column: bindparam("message")}),
                       [{"row_id": row, "message": message}
                        for row, message in message_ids.items()])
    for loaded in list(db.session.identity_map.values()):
        if isinstance(loaded, PlannedPrompt) and loaded.id in message_ids:
            db.session.expire(loaded, [column])


def _plan_prompts(now: datetime, protocols: dict[int, tuple[SmsProtocolVersion, Protocol]],
                  verdicts: _Verdicts) -> int:
    """Make the rows of every due prompt and queue their texts; return how many texts."""
    due: list[_Due] = []
    for person in _candidates(protocols):
        if verdicts.reason(person) is None:
            version, protocol = protocols[person.study_id]
            due.extend(_Due(person, version.id, prompt, slot)
                       for prompt, slot in _slots(person, protocol, now))
    if not due:
        return 0
    days, keys = {item.slot.day for item in due}, {item.slot.prompt_key for item in due}
    rows = _planned(days, keys)
    missing = [item for item in due if item.key not in rows]
    if missing:
        _insert_missing_rows(missing)
        rows = _planned(days, keys)
    texts, row_of = [], {}
    for item in due:
        row = rows[item.key]
        if row.message_id is not None or row.answered_at is not None:
            continue
        texts.append(Outgoing(item.person.id, item.prompt.text, "prompt", f"prompt:{row.id}",
                              row.planned_at))
        row_of[f"prompt:{row.id}"] = row.id
    queued = queue_many(texts)
    _link("message_id", {row_of[key]: message for key, message in queued.items()})
    return len(queued)


def _queue_reminders(now: datetime, verdicts: _Verdicts) -> int:
    rows = db.session.execute(
        select(PlannedPrompt.id, PlannedPrompt.protocol_version_id, PlannedPrompt.prompt_key,
               PlannedPrompt.reminder_at, *RECIPIENT)
        .join(Participant, Participant.id == PlannedPrompt.participant_id)
        .join(User, User.id == Participant.user_id)
        .join(SmsMessage, SmsMessage.id == PlannedPrompt.message_id)
        .where(PlannedPrompt.reminder_at.is_not(None),
               PlannedPrompt.reminder_message_id.is_(None),
               PlannedPrompt.answered_at.is_(None), PlannedPrompt.expired_at.is_(None),
               PlannedPrompt.reminder_at <= now + planner.LOOKAHEAD,
               PlannedPrompt.reminder_at >= now - planner.SEND_GRACE,
               PlannedPrompt.expires_at > now,
               SmsMessage.status.in_(WENT_OUT))
        .order_by(PlannedPrompt.id)).all()
    texts, row_of = [], {}
    for row_id, version_id, prompt_key, reminder_at, *facts in rows:
        prompt = protocol_of_version(version_id).prompt(prompt_key)
        if prompt is None or prompt.reminder is None or verdicts.reason(Recipient(*facts)):
            continue
        texts.append(Outgoing(facts[0], prompt.reminder.text, "reminder", f"reminder:{row_id}",
                              reminder_at))
        row_of[f"reminder:{row_id}"] = row_id
    queued = queue_many(texts)
    _link("reminder_message_id", {row_of[key]: message for key, message in queued.items()})
    return len(queued)


def _cancel_paused(verdicts: _Verdicts) -> int:
    """Cancel still-pending prompts and reminders of participants who may no longer get
    them (withdrawn, arm changed, consent cleared, period over)."""
    doomed = []
    # prompts, then reminders: one join per column (a join ON a = x OR b = x cannot use
    # a hash join, and loops over every pair of pending text and prompt row)
    for link in (PlannedPrompt.message_id, PlannedPrompt.reminder_message_id):
        pending = db.session.execute(
            select(SmsMessage.id, *RECIPIENT)
            .join(PlannedPrompt, link == SmsMessage.id)
            .join(Participant, Participant.id == PlannedPrompt.participant_id)
            .join(User, User.id == Participant.user_id)
            .where(SmsMessage.status == "pending")).all()
        doomed += [message_id for message_id, *facts in pending
                   if verdicts.reason(Recipient(*facts))]
    return cancel_many(doomed)


def plan_due(now: datetime | None = None) -> dict[str, int]:
    """Plan and queue every due prompt and reminder (the ``sms.plan`` job). Flushes."""
    now = now or utcnow()
    protocols = _protocols()
    verdicts = _Verdicts(protocols, now)
    counts = {"prompts": 0, "reminders": 0, "cancelled": _cancel_paused(verdicts)}
    counts["prompts"] = _plan_prompts(now, protocols, verdicts)
    counts["reminders"] = _queue_reminders(now, verdicts)
    db.session.flush()
    return counts


def expire_due(now: datetime | None = None) -> int:
    """Close every unanswered prompt whose time is up (the ``sms.expire`` job); cancel a
    reminder still waiting. Returns how many closed. Flushes."""
    now = now or utcnow()
    due = list(db.session.scalars(select(PlannedPrompt).where(
        PlannedPrompt.expires_at <= now, PlannedPrompt.answered_at.is_(None),
        PlannedPrompt.expired_at.is_(None))))
    for row in due:
        row.expired_at = now
        cancel_reminder(row)
    db.session.flush()
    return len(due)


_protocol_cache: dict[tuple[int, str], Protocol] = {}


def protocol_of_version(version_id: int) -> Protocol:
    """A stored version never changes, so its reading is kept for the process (keyed by
    its text too, as a test database reuses ids)."""
    row = db.session.get(SmsProtocolVersion, version_id)
    key = (row.id, row.source)
    if key not in _protocol_cache:
        _protocol_cache[key] = read_protocol(row.data)
    return _protocol_cache[key]


def cancel_reminder(row: PlannedPrompt) -> None:
    if row.reminder_message_id is not None:
        message = db.session.get(SmsMessage, row.reminder_message_id)
        if message is not None:
            gateway.cancel(message)


# --------------------------------------------------------------------------- read side

def response_rates(participant_ids: Iterable[int], *, start: datetime | None = None,
                   end: datetime | None = None, now: datetime | None = None
                   ) -> dict[int, tuple[int, int]]:
    """Participant id -> (answered, delivered) for prompts planned in [start, end).

    Delivered: the prompt's text reached the network (queued, sent or delivered) or was
    answered; undelivered, failed, cancelled and unsent prompts do not count, nor do
    prompts still open. Answered: a readable answer before expiry (late ones are not).
    """
    ids = list(participant_ids)
    result = {pid: (0, 0) for pid in ids}
    if not ids:
        return result
    query = response_counts(now or utcnow()).where(PlannedPrompt.participant_id.in_(ids))
    if start is not None:
        query = query.where(PlannedPrompt.planned_at >= start)
    if end is not None:
        query = query.where(PlannedPrompt.planned_at < end)
    for pid, done, delivered in db.session.execute(query):
        result[pid] = (int(done or 0), int(delivered))
    return result


def response_counts(now: Any) -> Select[Any]:
    """(participant id, answered, delivered) per participant over the prompts that count,
    as ``response_rates`` defines them; callers add which people and which days. ``now`` is
    a datetime or a ``bindparam`` (the moderator caseload builds its query once)."""
    answered = PlannedPrompt.answered_at.is_not(None)
    return (select(PlannedPrompt.participant_id, func.sum(case((answered, 1), else_=0)),
                   func.count(PlannedPrompt.id))
            .join(SmsMessage, SmsMessage.id == PlannedPrompt.message_id)
            .where(or_(answered, and_(SmsMessage.status.in_(DELIVERED),
                                      PlannedPrompt.expires_at <= now)))
            .group_by(PlannedPrompt.participant_id))


@dataclass(frozen=True)
class SmsAnswer:
    prompt_key: str
    label: str
    #: answered, late or unreadable
    status: str
    #: the value as staff read it ("7", "Yes", "1 2 1 (score 4)", "12 (out of range)")
    shown: str
    received_at: datetime
    latency_seconds: int | None


def _shown(reply: PromptReply, prompt: Prompt | None) -> str:
    value = reply.value
    if value is None:
        return "—"
    if isinstance(value, bool):
        text = "Yes" if value else "No"
    elif isinstance(value, list):
        text = " ".join(str(v) for v in value)
        if reply.score is not None and prompt is not None and prompt.answer.instrument:
            text += f" (score {reply.score:g})"
    else:
        text = str(value)
    return f"{text} (out of range)" if reply.problem == "out_of_range" else text


def sms_answers_for(participant: Participant, limit: int = 50) -> list[SmsAnswer]:
    """The participant's latest replies to prompts, newest first (staff participant page)."""
    rows = db.session.execute(
        select(PromptReply, PlannedPrompt.protocol_version_id)
        .join(PlannedPrompt, PlannedPrompt.id == PromptReply.prompt_id)
        .where(PromptReply.participant_id == participant.id)
        .order_by(PromptReply.received_at.desc(), PromptReply.id.desc()).limit(limit)).all()
    answers = []
    for reply, version_id in rows:
        prompt = protocol_of_version(version_id).prompt(reply.prompt_key)
        answers.append(SmsAnswer(reply.prompt_key, prompt.label if prompt else reply.prompt_key,
                                 reply.status, _shown(reply, prompt), reply.received_at,
                                 reply.latency_seconds))
    return answers
