"""The SMS gateway: outbox, inbox, webhooks, STOP/START/HELP, and two backends.

Other packages use only these names:

- :func:`queue` adds an outbound text in the caller's transaction (``sms.dispatch``
  sends it after commit); :func:`cancel` withdraws a still-pending one;
- :func:`register_inbound_handler`, :func:`register_opt_out_handler` and
  :func:`register_help_text` hook into texts that arrive.

See ``core/sms/dispatch.py`` for the exactly-once rules and ``core/sms/inbound.py`` for
what happens to a text in.
"""

from core.sms.hooks import (
    register_help_text,
    register_inbound_handler,
    register_opt_out_handler,
)
from core.sms.models import SmsMessage
from core.sms.outbox import cancel, queue

__all__ = ["SmsMessage", "cancel", "queue", "register_help_text", "register_inbound_handler",
           "register_opt_out_handler"]
