"""Risk alerts: opening one for the on-call clinician, escalating it, acknowledging and
resolving it, the on-call rota and the adverse-events list.

**Who is on call now.** The rota is an ordered list of clinicians kept by admins and
clinicians (``oncall_rota.position``). The first entry whose account is an enabled
clinician is on call now; the clinician coming on shift presses "Take on-call" (or an
admin moves them to the top), which is logged. This is deliberately explicit: no hidden
shift calendar can leave an alert with nobody.

**Escalation.** An alert starts with the on-call clinician and a deadline
(``risk_alert_deadline_minutes``, a site setting, default 60). Unacknowledged at its
deadline, :func:`escalate_due` (the ``moderation.escalate`` job, every minute) hands it
to the next clinician on the rota with a new deadline, then to all clinicians (the last
step). With nobody on the rota an alert goes to all clinicians at once. Each step is
guarded by the alert's version column and its ``level``, so a step happens once however
often the job runs, and acknowledging stops it.

Transaction contract: every function flushes and leaves the commit to its caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core import audit, notifications, screening, settings
from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from core.names import PhoneError, normalise_phone
from core.roles import Role
from moderation import history
from moderation.models import (
    ALERT_ACTIONS,
    CATEGORIES,
    LEVEL_ALL,
    LEVEL_NEXT,
    LEVEL_ON_CALL,
    LEVELS,
    QueueItem,
    RiskAlert,
    RotaEntry,
)

DEADLINE_SETTING = "risk_alert_deadline_minutes"
DEFAULT_DEADLINE_MINUTES = 60
DEADLINE_RANGE = (5, 24 * 60)
NOTE_MAX = 2000
# The setting lives with the other site settings (core.settings refuses unknown keys).
settings.DEFAULTS.setdefault(DEADLINE_SETTING, DEFAULT_DEADLINE_MINUTES)
notifications.register_kind("risk_alert", "Risk alert: please respond",
                            "{count} risk alerts need a response")

#: what the author sees at once when their words suggest they may be at risk
AUTHOR_MESSAGE = ("Thank you for telling us. It sounds like things are really hard right now. "
                  "A clinician from the study team will be in touch with you soon. If you feel "
                  "unsafe now, please use one of these services.")


class AlertError(Exception):
    """A refused alert or rota step; ``field`` names the form field when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- author side


def author_message(verdict: screening.Verdict) -> str | None:
    """The note to show the author of risk content next to the crisis resources (None when
    the verdict is not risk). Forum views: on ``verdict.is_risk``, flash this and redirect
    to ``core.crisis``."""
    return AUTHOR_MESSAGE if verdict.is_risk else None


def sms_reply_text() -> str:
    """The text sent back to a participant whose SMS reply suggested risk."""
    first = [r for r in settings.get("crisis_resources") if r.get("phone")][:2]
    services = "; ".join(f"{r['name']} {r['phone']}" for r in first)
    return ("Thank you for telling us. A clinician from the study team will contact you soon. "
            f"If you feel unsafe now, please call {services}.")


# --------------------------------------------------------------------------- settings


def deadline_minutes() -> int:
    try:
        value = int(settings.get(DEADLINE_SETTING))
    except (TypeError, ValueError):
        return DEFAULT_DEADLINE_MINUTES
    low, high = DEADLINE_RANGE
    return min(max(value, low), high)


def set_deadline_minutes(minutes: int, *, actor: User) -> None:
    low, high = DEADLINE_RANGE
    if not low <= minutes <= high:
        raise AlertError(f"Choose between {low} and {high} minutes.", "minutes")
    if minutes == deadline_minutes():
        return
    settings.put(DEADLINE_SETTING, minutes, actor=actor)
    history.log("rota.deadline_changed", actor=actor, minutes=minutes)


# --------------------------------------------------------------------------- rota


def rota() -> list[RotaEntry]:
    return list(db.session.scalars(select(RotaEntry).options(joinedload(RotaEntry.user))
                                   .order_by(RotaEntry.position, RotaEntry.id)))


def _available(entry: RotaEntry) -> bool:
    return entry.user.role == Role.CLINICIAN and entry.user.is_enabled


def on_call() -> RotaEntry | None:
    """The clinician on call now: the first available entry of the rota."""
    return next((e for e in rota() if _available(e)), None)


def _next_after(user_id: int | None) -> RotaEntry | None:
    entries = [e for e in rota() if _available(e)]
    ids = [e.user_id for e in entries]
    if user_id not in ids:
        return entries[0] if entries else None
    later = entries[ids.index(user_id) + 1:]
    return later[0] if later else None


def clinicians() -> list[User]:
    return list(db.session.scalars(select(User).where(User.role == Role.CLINICIAN,
                                                      User.is_enabled)
                                   .order_by(User.id)))


def _renumber(entries: list[RotaEntry]) -> None:
    for position, entry in enumerate(entries, start=1):
        entry.position = position
    db.session.flush()


def _clean_phone(phone: str | None) -> str | None:
    if not phone or not phone.strip():
        return None
    try:
        return normalise_phone(phone, current_app.config.get("DEFAULT_PHONE_REGION", "GB"))
    except PhoneError as exc:
        raise AlertError(str(exc), "phone") from exc


def add_to_rota(user: User, *, phone: str | None, actor: User) -> RotaEntry:
    if user.role != Role.CLINICIAN:
        raise AlertError("Only clinicians can be on call.", "user_id")
    if db.session.scalar(select(RotaEntry).where(RotaEntry.user_id == user.id)):
        raise AlertError("This clinician is already on the rota.", "user_id")
    entries = rota()
    entry = RotaEntry(user_id=user.id, position=len(entries) + 1, phone=_clean_phone(phone))
    db.session.add(entry)
    db.session.flush()
    _rota_changed("rota.added", actor, user)
    return entry


def set_phone(entry: RotaEntry, phone: str | None, *, actor: User) -> None:
    entry.phone = _clean_phone(phone)
    db.session.flush()
    _rota_changed("rota.phone_changed", actor, entry.user)


def remove_from_rota(entry: RotaEntry, *, actor: User) -> None:
    user = entry.user
    db.session.delete(entry)
    db.session.flush()
    _renumber(rota())
    _rota_changed("rota.removed", actor, user)


def move(entry: RotaEntry, direction: str, *, actor: User) -> None:
    """Move an entry "up", "down" or to the "top" (= on call now)."""
    entries = rota()
    index = next(i for i, e in enumerate(entries) if e.id == entry.id)
    entries.pop(index)
    target = {"up": max(index - 1, 0), "down": index + 1, "top": 0}.get(direction)
    if target is None:
        raise AlertError("Move up, down or to the top.")
    entries.insert(target, entry)
    _renumber(entries)
    _rota_changed("rota.moved", actor, entry.user, direction=direction)


def _rota_changed(action: str, actor: User, user: User, **detail: Any) -> None:
    order = [e.user_id for e in rota()]
    history.log(action, actor=actor, subject=user, order=order, **detail)
    audit.record("moderation.rota_changed", actor=actor, target=user, change=action,
                 order=order, **detail)


# --------------------------------------------------------------------------- opening


def open_alert(item: QueueItem, *, author: User | None,
               participant: Participant | None) -> RiskAlert:
    """Open a risk alert for screened content (one open alert per piece of content)."""
    existing = db.session.scalar(select(RiskAlert).where(
        RiskAlert.content_type == item.content_type, RiskAlert.content_id == item.content_id,
        RiskAlert.resolved_at.is_(None)))
    if existing is not None:
        return existing
    now = utcnow()
    alert = RiskAlert(item_id=item.id, channel=item.channel, content_type=item.content_type,
                      content_id=item.content_id, author_id=getattr(author, "id", None),
                      participant_id=getattr(participant, "id", None),
                      category=item.category, opened_at=now)
    db.session.add(alert)
    db.session.flush()
    history.log("alert.opened", alert=alert, item=item, subject=author, channel=alert.channel,
                category=alert.category)
    audit.record("risk_alert.opened", target=alert, channel=alert.channel,
                 category=alert.category, participant_id=alert.participant_id)
    entry = on_call()
    if entry is None:
        _assign_all(alert, now)
    else:
        _assign(alert, entry, LEVEL_ON_CALL, now)
    return alert


def _assign(alert: RiskAlert, entry: RotaEntry, level: int, now: datetime) -> None:
    alert.level, alert.assigned_to_id = level, entry.user_id
    alert.deadline_at = now + timedelta(minutes=deadline_minutes())
    db.session.flush()
    _tell(alert, [entry.user], {entry.user_id: entry.phone})


def _assign_all(alert: RiskAlert, now: datetime) -> None:
    alert.level, alert.assigned_to_id, alert.deadline_at = LEVEL_ALL, None, None
    db.session.flush()
    phones = {e.user_id: e.phone for e in rota()}
    _tell(alert, clinicians(), phones)


def _tell(alert: RiskAlert, users: Iterable[User], phones: dict[int, str | None]) -> None:
    """Notify each clinician of this step in the app (and by text when possible); log it."""
    url = f"/moderation/alerts/{alert.id}"
    when = (f" Please respond by {alert.deadline_at:%H:%M} UTC."
            if alert.deadline_at is not None else " Please respond now.")
    label = CATEGORIES.get(alert.category or "", "risk")
    text = f"Risk alert #{alert.id} ({label.lower()}): a participant may be at risk.{when}"
    for user in users:
        notifications.notify(user, kind="risk_alert", text=text, url=url)
        via = ["app"]
        if _text_staff(phones.get(user.id), alert):
            via.append("sms")
        history.log("alert.notified", alert=alert, subject=user, level=alert.level, via=via)


#: functions that text a staff phone: ``texter(phone, body, dedupe_key) -> bool``. The
#: SMS gateway (core.sms) texts participants only; when it can text a number, register
#: a texter here (see the report to the lead).
STAFF_TEXTERS: list[Any] = []


def _text_staff(phone: str | None, alert: RiskAlert) -> bool:
    if not phone or not STAFF_TEXTERS:
        return False
    when = f"by {alert.deadline_at:%H:%M} UTC" if alert.deadline_at is not None else "now"
    body = f"Kinship: risk alert #{alert.id} needs you {when}. Open the app."
    key = f"risk_alert:{alert.id}:{alert.level}:{phone}"
    return any(bool(texter(phone, body, key)) for texter in STAFF_TEXTERS)


# --------------------------------------------------------------------------- escalation


def escalate_due(*, now: datetime | None = None) -> int:
    """Escalate every unacknowledged alert whose deadline has passed; return how many."""
    now = now or utcnow()
    due = db.session.scalars(select(RiskAlert).where(
        RiskAlert.acknowledged_at.is_(None), RiskAlert.resolved_at.is_(None),
        RiskAlert.deadline_at.is_not(None), RiskAlert.deadline_at <= now,
        RiskAlert.level < LEVEL_ALL).order_by(RiskAlert.id)).all()
    for alert in due:
        escalate(alert, now=now)
    return len(due)


def escalate(alert: RiskAlert, *, now: datetime) -> None:
    before = alert.level
    nxt = _next_after(alert.assigned_to_id) if before == LEVEL_ON_CALL else None
    if nxt is not None:
        _assign(alert, nxt, LEVEL_NEXT, now)
    else:
        _assign_all(alert, now)
    history.log("alert.escalated", alert=alert, level_from=before, level_to=alert.level,
                assigned_to=alert.assigned_to_id)
    audit.record("risk_alert.escalated", target=alert, level_from=before,
                 level_to=alert.level, assigned_to=alert.assigned_to_id)


# --------------------------------------------------------------------------- responding


def _require_clinician(actor: User) -> None:
    if actor.role != Role.CLINICIAN:
        raise AlertError("Only clinicians respond to risk alerts.")


def acknowledge(alert: RiskAlert, *, actor: User) -> bool:
    """Take the alert: escalation stops. False when it was already acknowledged."""
    _require_clinician(actor)
    if alert.acknowledged_at is not None:
        return False
    alert.acknowledged_at, alert.acknowledged_by_id = utcnow(), actor.id
    alert.assigned_to_id = actor.id
    db.session.flush()
    history.log("alert.acknowledged", actor=actor, alert=alert, level=alert.level)
    audit.record("risk_alert.acknowledged", actor=actor, target=alert, level=alert.level)
    return True


def resolve(alert: RiskAlert, *, actor: User, actions: list[str], note: str | None,
            adverse_event: bool) -> None:
    """Close the alert recording what was done (acknowledging it too if need be)."""
    _require_clinician(actor)
    if alert.resolved_at is not None:
        raise AlertError("This alert was already resolved.")
    codes = [code for code in ALERT_ACTIONS if code in set(actions)]
    if not codes or len(codes) != len(set(actions)):
        raise AlertError("Choose what was done.", "actions")
    if "no_action_needed" in codes and len(codes) > 1:
        raise AlertError("'No action needed' cannot go with other actions.", "actions")
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_MAX:
        raise AlertError(f"Keep the note to {NOTE_MAX} characters.", "note")
    acknowledge(alert, actor=actor)
    alert.resolved_at, alert.resolved_by_id = utcnow(), actor.id
    alert.actions_taken, alert.note = codes, note
    alert.possible_adverse_event = adverse_event
    alert.deadline_at = None
    if alert.item is not None and alert.item.status == "open":
        alert.item.status = "escalated"
    db.session.flush()
    history.log("alert.resolved", actor=actor, alert=alert, actions=codes,
                adverse_event=adverse_event)
    audit.record("risk_alert.resolved", actor=actor, target=alert, actions=codes,
                 adverse_event=adverse_event)


# --------------------------------------------------------------------------- reading


def alerts_for(actor: User, *, include_resolved: bool = False) -> list[RiskAlert]:
    """Open (and acknowledged) alerts, the actor's own first, then by deadline."""
    _require_clinician(actor)
    query = select(RiskAlert).options(joinedload(RiskAlert.participant),
                                      joinedload(RiskAlert.assigned_to))
    if not include_resolved:
        query = query.where(RiskAlert.resolved_at.is_(None))
    rows = list(db.session.scalars(query.order_by(RiskAlert.opened_at.desc()).limit(200)))
    far = datetime.max.replace(tzinfo=utcnow().tzinfo)
    rows.sort(key=lambda a: (a.resolved_at is not None, a.assigned_to_id != actor.id
                             and a.level != LEVEL_ALL, a.deadline_at or far))
    return rows


def view_alert(alert: RiskAlert, *, actor: User) -> None:
    _require_clinician(actor)
    audit.record("risk_alert.viewed", actor=actor, target=alert)


def alert_history(alert: RiskAlert) -> list[Any]:
    from moderation.models import ModerationLog

    return list(db.session.scalars(
        select(ModerationLog).options(joinedload(ModerationLog.actor),
                                      joinedload(ModerationLog.subject))
        .where(ModerationLog.alert_id == alert.id).order_by(ModerationLog.at,
                                                              ModerationLog.id)))


@dataclass(frozen=True)
class AdverseEvent:
    """One row of the researchers' list: no free text, dates as dates."""

    alert_id: int
    study_code: str | None
    category: str | None
    channel: str
    opened_on: date
    resolved_on: date | None
    actions: tuple[str, ...]


def adverse_events() -> list[AdverseEvent]:
    rows = db.session.scalars(
        select(RiskAlert).options(joinedload(RiskAlert.participant))
        .where(RiskAlert.possible_adverse_event.is_(True)).order_by(RiskAlert.opened_at))
    return [AdverseEvent(a.id, a.participant.study_code if a.participant else None,
                         a.category, a.channel, a.opened_at.date(),
                         a.resolved_at.date() if a.resolved_at else None,
                         tuple(a.actions_taken or ())) for a in rows]


def level_label(level: int) -> str:
    return LEVELS.get(level, "")
