"""Risk-alert texts to clinicians' phones, through the SMS outbox.

``moderation.alerts`` tells each clinician of an alert step in the app and, for a rota
entry with a phone, calls every function in ``alerts.STAFF_TEXTERS`` with
``(phone, body, dedupe_key)``. :func:`register` puts :func:`text_staff` there: it writes
an outbox row without a participant (``core.sms.outbox.queue_staff``, purpose
``staff_alert``) in the caller's transaction, and the ``sms.dispatch`` job sends it with
the real Twilio client like every other text; reconciliation and status callbacks
settle it the same way.

What a staff text says: that an alert needs them, by when, and to open the app. Never
the participant's words, name or study code; :func:`alert_text` is the wording and
:func:`text_staff` refuses any other body. Nothing here logs a phone number or a body.

Transaction contract: :func:`text_staff` flushes (through the outbox) and leaves the
commit to its caller.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from core.sms import outbox
from moderation import alerts

log = logging.getLogger("kinship.moderation.staff_sms")

PURPOSE = "staff_alert"
#: the only shapes a staff text may take (see the module docstring)
_SAFE_BODY = re.compile(
    r"Kinship: risk alert #\d+ needs (?:you by \d{2}:\d{2}(?: UTC)?|you now|a response)\."
    r" (?:Open the app\.|Please sign in to Kinship\.)")


def alert_text(alert_id: int, deadline: datetime | None) -> str:
    """The text for one alert step, e.g. "Kinship: risk alert #12 needs you by 14:05 UTC.
    Open the app." (staff accounts have no time zone: the app shows deadlines in UTC)."""
    when = f"by {deadline:%H:%M} UTC" if deadline is not None else "now"
    return f"Kinship: risk alert #{alert_id} needs you {when}. Open the app."


def is_safe(body: str) -> bool:
    """Whether ``body`` is one of the staff-text shapes (no free text can ride along)."""
    return _SAFE_BODY.fullmatch(body or "") is not None


def text_staff(phone: str, body: str, dedupe_key: str) -> bool:
    """Queue a text to a staff phone; True when it is in the outbox (now or already)."""
    if not is_safe(body):
        log.warning("staff text refused: the body is not an alert pointer")
        return False
    try:
        row = outbox.queue_staff(phone=phone, body=body, dedupe_key=dedupe_key,
                                 purpose=PURPOSE)
    except ValueError as exc:
        log.warning("staff text refused: %s", exc)
        return False
    log.info("staff text %s queued", row.id)
    return True


def register() -> None:
    """Put :func:`text_staff` in ``alerts.STAFF_TEXTERS`` (once, however often called)."""
    if text_staff not in alerts.STAFF_TEXTERS:
        alerts.STAFF_TEXTERS.append(text_staff)
