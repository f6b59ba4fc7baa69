"""Texts that answer no prompt ("unsolicited") reach the participant's moderators: each
becomes a message from the participant in their conversation (``/messages`` on the
participant's side, the staff conversation page on the moderators'), linked to the SMS it
came from, and the caseload moderator is told in the app.

Runs inside the inbound webhook's transaction (flushes; the webhook commits).
"""

from __future__ import annotations

from core.sms import hooks
from core.sms.models import SmsMessage
from moderation import messages


def to_moderators(message: SmsMessage) -> None:
    if message.participant is not None:
        messages.from_text(message.participant, message)


def register() -> None:
    hooks.register_unsolicited_handler(to_moderators)
