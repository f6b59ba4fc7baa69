"""The registered screener and recorder, and the journal-reflection hook.

**Verdict.** Every enabled rule that matches is collected (``rule_ids``); the strongest
decides: block > hold > flag, then severity. A high-severity self_harm or harm_to_others
match is **risk** and wins over everything, block included (risk words must reach a
clinician, so they are never refused unseen): ``is_risk=True`` and the text is held.

**Channels.** ``forum_post``/``forum_comment``: all categories, as above. ``reflection``
(a private journal) and ``sms`` (a reply already received by the study): only the risk
categories count, and the action is always ``flag`` (nothing to hold or block): a flagged
reflection is queued for clinicians only, and risk opens an alert without holding. The
SMS gateway screens each reply itself (``core.sms.inbound``); on risk the recorder also
texts the crisis resources back.

**Who is screened.** Participants' words (and an unknown author's). Staff write guidance
that quotes risk language ("if you are thinking of killing yourself, call..."), so staff
text is published unscreened.

Transaction contract: the screener only reads; the recorder and the hook add rows and flush.
"""

from __future__ import annotations

from typing import Any

from core import audit, screening
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from core.screening import PUBLISH, Verdict
from moderation import alerts, history
from moderation.models import CONTENT_TYPES, RISK_CATEGORIES, QueueItem
from moderation.rules import active_specs
from moderation.screening.matching import RuleSpec, matching_rules

ACTION_RANK = {"flag": 1, "hold": 2, "block": 3}
#: channels where only risk rules count and nothing can be held or refused
PRIVATE_CHANNELS = frozenset({"reflection", "sms", "moderator_message"})
HOLD_MESSAGE = ("Thank you. A moderator will look at this before others can see it. "
                "It usually takes less than a day.")
BLOCK_MESSAGE = ("We could not post this as it is. Please change it and try again; "
                 "your text is still in the box.")


def decide(matched: list[RuleSpec], channel: str) -> Verdict:
    """The verdict for the rules that matched (see the module docstring)."""
    if channel in PRIVATE_CHANNELS:
        matched = [r for r in matched if r.category in RISK_CATEGORIES]
    if not matched:
        return PUBLISH
    ids = tuple(sorted({r.id for r in matched if r.id is not None}))
    risk = [r for r in matched if r.is_risk]
    if risk:
        action = "flag" if channel in PRIVATE_CHANNELS else "hold"
        return Verdict(action=action, message=alerts.AUTHOR_MESSAGE,
                       category=risk[0].category, severity=3, is_risk=True, rule_ids=ids)
    strongest = max(matched, key=lambda r: (ACTION_RANK.get(r.action, 0), r.severity_level))
    action = "flag" if channel in PRIVATE_CHANNELS else strongest.action
    message = ""
    if action in ("hold", "block"):
        message = strongest.message or (HOLD_MESSAGE if action == "hold" else BLOCK_MESSAGE)
    return Verdict(action=action, message=message, category=strongest.category,
                   severity=strongest.severity_level, is_risk=False, rule_ids=ids)


def _people(author: Any) -> tuple[User | None, Participant | None]:
    """Accept a User, a Participant or None."""
    if isinstance(author, Participant):
        return author.user, author
    if isinstance(author, User):
        return author, author.participant
    return None, None


def screen_text(text: str, channel: str, author: Any) -> Verdict:
    """The screener registered with core.screening."""
    user, _participant = _people(author)
    if user is not None and user.role != Role.PARTICIPANT:
        return PUBLISH
    return decide(matching_rules(active_specs(), text or ""), channel)


def record(verdict: Verdict, channel: str, content_id: int, author: Any) -> None:
    """The recorder registered with core.screening: queue flags and holds, open an alert
    for risk. Published and blocked content leave nothing."""
    if verdict.action in ("publish", "block") and not verdict.is_risk:
        return
    user, participant = _people(author)
    content_type = CONTENT_TYPES[channel]
    item = db.session.scalar(db.select(QueueItem).where(
        QueueItem.content_type == content_type, QueueItem.content_id == content_id,
        QueueItem.source == "screening", QueueItem.status == "open"))
    if item is None:
        item = QueueItem(channel=channel, content_type=content_type, content_id=content_id,
                         author_id=getattr(user, "id", None),
                         participant_id=getattr(participant, "id", None), source="screening",
                         action="hold" if verdict.action == "hold" else "flag",
                         severity=0)
        db.session.add(item)
    if verdict.severity >= item.severity:
        item.category, item.severity = verdict.category, verdict.severity
    if verdict.action == "hold":
        item.action = "hold"
    item.is_risk = item.is_risk or verdict.is_risk
    item.clinician_only = channel == "reflection" or item.is_risk
    item.rule_ids = sorted({*(item.rule_ids or []), *verdict.rule_ids})
    db.session.flush()
    facts = {"channel": channel, "category": item.category, "severity": item.severity,
             "verdict": item.action, "risk": item.is_risk}
    history.log(f"item.{'held' if item.action == 'hold' else 'flagged'}", item=item,
                subject=user, rules=list(verdict.rule_ids), **facts)
    audit.record("moderation.item_opened", target=item, **facts)
    if verdict.is_risk:
        alerts.open_alert(item, author=user, participant=participant)
        if channel == "sms" and participant is not None:
            _crisis_text(participant, content_id)


def screen_reflection(entry: Any) -> None:
    """``modules.services.REFLECTION_SCREENS`` hook: a journal entry just saved."""
    participant = db.session.get(Participant, entry.participant_id)
    author = participant.user if participant is not None else None
    verdict = screening.screen(entry.body, channel="reflection", author=author)
    entry.screening = "clear" if verdict.action == "publish" else "flagged"
    screening.screened(verdict, channel="reflection", content_id=entry.id, author=author)
    db.session.flush()


def _crisis_text(participant: Participant, content_id: int) -> None:
    """An SMS reply that suggested risk: text the crisis resources back (once)."""
    from core import sms

    sms.queue(participant=participant, body=alerts.sms_reply_text(), purpose="help",
              dedupe_key=f"risk_reply:{content_id}")


def register() -> None:
    """Make this the screening of the whole app (called once, at package import)."""
    screening.register_screener(screen_text)
    screening.register_recorder(record)
    from modules import services

    if screen_reflection not in services.REFLECTION_SCREENS:
        services.REFLECTION_SCREENS.append(screen_reflection)
