"""What the prompt protocol plugs into the core: its activity-event kinds and its
``core.sms`` hooks. Imported once by ``outcomes.prompts``; registering again changes
nothing."""

from __future__ import annotations

from core import sms
from core.events import register_kind
from outcomes.prompts import replies

register_kind("sms_answered", "Answered an SMS prompt")
register_kind("sms_reply_unreadable", "Sent an SMS reply that could not be read")

sms.register_inbound_handler(replies.handle_reply)
sms.register_opt_out_handler(replies.on_opt_change)
sms.register_help_text(replies.help_text)
