"""STOP and START as state changes: ``sms_opted_out_at``, pending rows, handlers, the
moderator's alert and the audit log. Used by the STOP/START keywords and by Twilio's
error 21610 ("this number replied STOP"). Flushes; the caller commits."""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

from core import audit
from core.clock import utcnow
from core.models import Participant
from core.sms import hooks
from core.sms.outbox import cancel_pending_for

log = logging.getLogger("kinship.sms")

STOP, START = "stop", "start"


def opt_out(participant: Participant, *, source: str) -> int:
    """Record an SMS opt-out (not a withdrawal from the study); return how many pending
    texts were cancelled. Doing it again changes nothing."""
    if participant.sms_opted_out_at is not None:
        return 0
    participant.sms_opted_out_at = utcnow()
    cancelled = cancel_pending_for(participant, reason="opted_out")
    audit.record("sms.opted_out", actor=participant.user if source == "stop" else None,
                 target=participant, source=source, cancelled=cancelled)
    for handler in hooks.opt_out_handlers:
        handler(participant, STOP)
    _alert_moderator(participant, source)
    log.info("participant %s opted out of SMS (%s); %s pending cancelled",
             participant.id, source, cancelled)
    return cancelled


def opt_in(participant: Participant) -> bool:
    """Clear an SMS opt-out (START); False when there was none."""
    was_out = participant.sms_opted_out_at is not None
    participant.sms_opted_out_at = None
    if was_out:
        audit.record("sms.opted_in", actor=participant.user, target=participant)
    for handler in hooks.opt_out_handlers:
        handler(participant, START)
    log.info("participant %s opted back in to SMS", participant.id)
    return was_out


def _alert_moderator(participant: Participant, source: str) -> None:
    moderator = participant.moderator
    if moderator is None:
        return
    try:
        notify: Any = import_module("core.notifications").notify
    except (ImportError, AttributeError):
        return
    why = "texted STOP" if source == "stop" else "cannot be texted (Twilio reports a STOP)"
    kind = "alert" if "alert" in import_module("core.notifications").KINDS else "system"
    notify(moderator, kind=kind, actor=participant.user,
           text=f"{participant.study_code} {why}: no more SMS prompts or reminders will be "
                "sent until they text START. They are still in the study.",
           url=_participant_url(participant))


def _participant_url(participant: Participant) -> str | None:
    """The moderator's page of the participant, built without a request (jobs too)."""
    from flask import current_app
    from werkzeug.routing import BuildError

    try:
        return current_app.url_map.bind("localhost").build(
            "moderation.participant", {"participant_id": participant.id})
    except BuildError:
        return None
