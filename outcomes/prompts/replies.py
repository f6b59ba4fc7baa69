"""Texts that come back to a symptom prompt: answers, late answers, STOP, START and HELP.

- :func:`handle_reply` is the inbound handler ``core.sms`` calls for each ordinary text:
  it matches the text to the participant's newest open prompt, stores and scores the
  answer and returns the reply (feedback, the prompt's help text once, a late note).
- :func:`on_opt_change` counts STOP as an SMS withdrawal; :func:`help_text` answers HELP.

Planning and expiry are ``outcomes.prompts.services``. Transaction contract: these flush
and never commit; the webhook commits once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from core import audit, settings
from core.clock import utcnow
from core.events import record_event
from core.extensions import db
from core.models import Participant
from core.sms.models import SmsMessage
from outcomes import scoring
from outcomes.instruments import get as get_instrument
from outcomes.models import Study, Withdrawal
from outcomes.prompts.models import (
    ANSWERED,
    LATE,
    UNREADABLE,
    PlannedPrompt,
    PromptReply,
    SmsOptChange,
)
from outcomes.prompts.parsing import Parsed, parse_reply
from outcomes.prompts.protocol import Prompt
from outcomes.prompts.services import WENT_OUT, cancel_reminder, protocol_of_version
from outcomes.services import features_for

#: a readable reply this long after a prompt expired is still stored (as late)
LATE_WINDOW = timedelta(hours=12)
STOP_REASON = "Texted STOP: opted out of text messages (recorded automatically)."

def _prompt_of(row: PlannedPrompt) -> Prompt | None:
    return protocol_of_version(row.protocol_version_id).prompt(row.prompt_key)


def _sent_prompts(participant_id: int):
    return (select(PlannedPrompt).join(SmsMessage, SmsMessage.id == PlannedPrompt.message_id)
            .where(PlannedPrompt.participant_id == participant_id,
                   PlannedPrompt.answered_at.is_(None), SmsMessage.status.in_(WENT_OUT))
            .order_by(PlannedPrompt.planned_at.desc(), PlannedPrompt.id.desc()).limit(1))


def open_prompt(participant_id: int, now: datetime) -> PlannedPrompt | None:
    """The participant's most recent prompt that went out and is neither answered nor
    expired."""
    return db.session.scalar(_sent_prompts(participant_id).where(
        PlannedPrompt.expires_at > now, PlannedPrompt.expired_at.is_(None),
        PlannedPrompt.planned_at <= now))


def _late_prompt(participant_id: int, now: datetime) -> PlannedPrompt | None:
    return db.session.scalar(_sent_prompts(participant_id).where(
        PlannedPrompt.expires_at <= now, PlannedPrompt.expires_at > now - LATE_WINDOW))


@dataclass(frozen=True)
class Reading:
    """What a reply says, as stored: value, score and the rule that made the score."""

    value: Any
    score: float | None
    scoring: str | None
    #: what feedback rules compare: the scale value, True/False, or the instrument total
    feedback_value: float | bool | None


def _reading(prompt: Prompt, parsed: Parsed) -> Reading:
    answer, value = prompt.answer, parsed.value
    if answer.type == "yesno":
        return Reading(value, 1.0 if value else 0.0, None, value)
    if answer.type == "scale":
        return Reading(value, float(value), None, value)
    if answer.instrument:
        instrument = get_instrument(answer.instrument)
        result = scoring.score(instrument, {number: digit for number, digit
                                            in zip(instrument.item_numbers, value, strict=True)})
        return Reading(value, result.total, result.scoring_rule, result.total)
    return Reading(value, float(sum(value)), f"sum of {answer.count} digits", sum(value))


def feedback_text(prompt: Prompt, participant: Participant, value: float | bool | None) -> str:
    """The first matching feedback rule's text, with a link to its module step when the
    participant's arm has modules; "" when no rule matches."""
    if value is None:
        return ""
    for rule in prompt.feedback:
        if rule.matches(value):
            if rule.step and features_for(participant.user).get("modules"):
                base = current_app.config["PUBLIC_URL"].rstrip("/")
                return f"{rule.text} {base}/modules/{rule.step}"
            return rule.text
    return ""


def _store_reply(row: PlannedPrompt, message: SmsMessage, status: str, *, value: Any = None,
                 reading: Reading | None = None, problem: str | None = None) -> PromptReply:
    sent = db.session.get(SmsMessage, row.message_id)
    start = (sent.sent_at if sent is not None and sent.sent_at else row.planned_at)
    received = message.created_at or utcnow()
    reply = PromptReply(prompt_id=row.id, participant_id=row.participant_id,
                        prompt_key=row.prompt_key, status=status,
                        value=reading.value if reading else value,
                        score=reading.score if reading and status == ANSWERED else None,
                        scoring=reading.scoring if reading and status == ANSWERED else None,
                        problem=problem, received_at=received,
                        latency_seconds=max(0, int((received - start).total_seconds())),
                        inbound_message_id=message.id, prompt_message_id=row.message_id)
    db.session.add(reply)
    message.in_reply_to_id = row.message_id
    db.session.flush()
    return reply


def _answer_in_time(row: PlannedPrompt, prompt: Prompt, participant: Participant,
                    message: SmsMessage, parsed: Parsed) -> str:
    if not parsed.ok:
        _store_reply(row, message, UNREADABLE, value=parsed.value, problem=parsed.status)
        record_event(participant, "sms_reply_unreadable", at=message.created_at,
                     prompt=row.prompt_key, problem=parsed.status)
        if row.help_sent_at is not None:
            return ""  # one help text per prompt; later unreadable replies are only stored
        row.help_sent_at = message.created_at or utcnow()
        return prompt.help
    reading = _reading(prompt, parsed)
    reply = _store_reply(row, message, ANSWERED, reading=reading)
    row.answered_at = reply.received_at
    cancel_reminder(row)
    record_event(participant, "sms_answered", at=reply.received_at, prompt=row.prompt_key,
                 value=reading.value, late=False)
    return feedback_text(prompt, participant, reading.feedback_value)


def handle_reply(message: SmsMessage) -> str | None:
    """``core.sms`` inbound handler: match a text to the participant's most recent open
    prompt, store and score the answer, and return the reply (feedback, the help text, a
    late note or ""). None when there is no prompt to answer (the text is unsolicited)."""
    if message.participant_id is None:
        return None
    participant = db.session.get(Participant, message.participant_id)
    now = message.created_at or utcnow()
    row = open_prompt(participant.id, now)
    if row is not None:
        prompt = _prompt_of(row)
        if prompt is not None:
            return _answer_in_time(row, prompt, participant, message,
                                   parse_reply(message.body, prompt.answer))
    row = _late_prompt(participant.id, now)
    prompt = _prompt_of(row) if row is not None else None
    if row is None or prompt is None:
        return None
    parsed = parse_reply(message.body, prompt.answer)
    if not parsed.ok:
        return None  # not an answer to the closed prompt: the moderators' inbox has it
    _store_reply(row, message, LATE, reading=_reading(prompt, parsed))
    record_event(participant, "sms_answered", at=now, prompt=row.prompt_key, value=parsed.value,
                 late=True)
    return protocol_of_version(row.protocol_version_id).late_reply


# --------------------------------------------------------------------------- STOP, START, HELP

def _last_change(participant: Participant) -> SmsOptChange | None:
    return db.session.scalar(select(SmsOptChange).where(
        SmsOptChange.participant_id == participant.id)
        .order_by(SmsOptChange.at.desc(), SmsOptChange.id.desc()).limit(1))


def on_opt_change(participant: Participant, keyword: str) -> None:
    """``core.sms`` opt-out handler: STOP is counted as a withdrawal from text messages
    (a ``Withdrawal`` of kind ``sms``, once per opt-out) without clearing ``sms_consent``,
    so START can resume prompts; START is recorded. Flushes."""
    last = _last_change(participant)
    now = utcnow()
    if keyword == "stop":
        if last is not None and last.keyword == "stop":
            return  # the same opt-out, reported again (STOP twice, or Twilio's 21610)
        withdrawal = Withdrawal(participant_id=participant.id, kind="sms", at=now,
                                reason=STOP_REASON, recorded_by_id=None, recorded_at=now)
        db.session.add(withdrawal)
        db.session.flush()
        db.session.add(SmsOptChange(participant_id=participant.id, keyword="stop", at=now,
                                    withdrawal_id=withdrawal.id))
        audit.record("participant.withdrawn", actor=None, target=participant, kind="sms",
                     withdrawal_id=withdrawal.id, at=now.date().isoformat(), via="sms_stop")
    elif keyword == "start" and last is not None and last.keyword == "stop":
        db.session.add(SmsOptChange(participant_id=participant.id, keyword="start", at=now))
    db.session.flush()


def help_text(participant: Participant | None) -> str:
    """``core.sms`` HELP provider: the study's contact and the crisis lines."""
    study = db.session.get(Study, participant.study_id) if participant is not None else None
    values = settings.get_all()
    contact = (study.contact if study is not None and study.contact else
               values["study_contact"])
    lines = [f"{study.name if study else values['site_name']}: {contact}"]
    crisis = [f"{r['name']}: {r['phone']}" for r in values["crisis_resources"] if r.get("phone")]
    if crisis:
        lines.append("If you need help now: " + "; ".join(crisis[:3]) + ".")
    lines.append("Reply STOP to stop texts.")
    return "\n".join(lines)
