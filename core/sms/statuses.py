"""What an outbound message's status means, and the rule that it only moves forward.

Twilio may deliver status callbacks out of order ("delivered" before "sent"), twice, or
before our own send call has returned; every writer goes through :func:`advance`, which
ignores any move to a status of the same or a lower rank.
"""

from __future__ import annotations

from datetime import datetime

from core.sms.models import SmsMessage

PENDING, SENDING, UNKNOWN, QUEUED, SENT = "pending", "sending", "unknown", "queued", "sent"
DELIVERED, UNDELIVERED, FAILED, CANCELLED = "delivered", "undelivered", "failed", "cancelled"
RECEIVED = "received"

#: forward order; equal ranks never replace each other (terminal states are final)
RANK = {PENDING: 0, SENDING: 1, UNKNOWN: 1, QUEUED: 2, SENT: 3,
        DELIVERED: 4, UNDELIVERED: 4, FAILED: 4, CANCELLED: 4}
TERMINAL = frozenset({DELIVERED, UNDELIVERED, FAILED, CANCELLED})

#: Twilio's MessageStatus values -> ours
FROM_TWILIO = {
    "accepted": QUEUED, "scheduled": QUEUED, "queued": QUEUED, "sending": QUEUED,
    "sent": SENT, "delivered": DELIVERED, "read": DELIVERED, "undelivered": UNDELIVERED,
    "failed": FAILED, "canceled": CANCELLED, "partially_delivered": SENT,
}

#: Twilio error code -> plain-language meaning for staff
ERROR_MEANINGS: dict[int, str] = {
    21211: "The phone number is not a valid mobile number.",
    21408: "Texts to this country are not enabled on the Twilio account.",
    21610: "The participant has replied STOP to this number: Twilio will not text them until "
           "they reply START.",
    21614: "The number is not a mobile number that can receive texts.",
    30003: "The phone was unreachable (switched off or out of signal) and the network gave up.",
    30004: "The message was blocked (the participant may have blocked the number).",
    30005: "The number does not exist or is no longer in service: check it with the "
           "participant.",
    30006: "The number cannot receive texts (a landline, or the network does not allow it).",
    30007: "The network filtered the message as spam; rewording or registering the sender "
           "may be needed.",
    30008: "The network reported an unknown delivery error.",
}

OPTED_OUT_CODE = 21610


def meaning(code: int | None) -> str:
    if code is None:
        return ""
    return ERROR_MEANINGS.get(code, f"Twilio error {code}.")


def from_twilio(status: str | None) -> str | None:
    return FROM_TWILIO.get((status or "").strip().lower())


def advance(message: SmsMessage, status: str, *, now: datetime,
            error_code: int | None = None) -> bool:
    """Move ``message`` to ``status`` if that is a step forward; return whether it moved."""
    if RANK.get(status, -1) <= RANK.get(message.status, 0):
        return False
    message.status = status
    if status in (QUEUED, SENT, DELIVERED) and message.sent_at is None:
        message.sent_at = now
    if status == DELIVERED:
        message.delivered_at = now
    if status in (UNDELIVERED, FAILED) and error_code is not None:
        message.error_code = error_code
    return True
