"""The hooks other packages register at import: inbound handlers, unsolicited-text
handlers, opt-out handlers and the HELP text provider. ``core`` knows nothing of them
beyond these lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

InboundHandler = Callable[[Any], "str | None"]
UnsolicitedHandler = Callable[[Any], None]
OptOutHandler = Callable[[Any, str], None]
HelpText = Callable[[Any], str]

inbound_handlers: list[InboundHandler] = []
unsolicited_handlers: list[UnsolicitedHandler] = []
opt_out_handlers: list[OptOutHandler] = []
_help_text: list[HelpText] = []


def register_inbound_handler(handler: InboundHandler) -> None:
    """``handler(message) -> str | None``: the first to return a str has handled the text
    (the str is the reply; "" means no reply). Registering twice changes nothing."""
    if handler not in inbound_handlers:
        inbound_handlers.append(handler)


def register_unsolicited_handler(handler: UnsolicitedHandler) -> None:
    """``handler(message)``: told of a text no inbound handler took (not an answer to a
    prompt), e.g. to put it in front of the participant's moderator."""
    if handler not in unsolicited_handlers:
        unsolicited_handlers.append(handler)


def register_opt_out_handler(handler: OptOutHandler) -> None:
    """``handler(participant, keyword)`` with keyword "stop" or "start"."""
    if handler not in opt_out_handlers:
        opt_out_handlers.append(handler)


def register_help_text(provider: HelpText) -> None:
    """``provider(participant | None) -> str``: the answer to HELP (the last one wins)."""
    _help_text[:] = [provider]


def help_text(participant: Any) -> str:
    if _help_text:
        return _help_text[0](participant)
    return default_help_text(participant)


def default_help_text(participant: Any) -> str:
    """The study contact and the first crisis resources from the site settings."""
    from core import settings

    values = settings.get_all()
    lines = [f"{values['site_name']}: {values['study_contact']}"]
    for resource in values["crisis_resources"][:2]:
        if resource.get("phone"):
            lines.append(f"{resource['name']}: {resource['phone']}")
    lines.append("Reply STOP to stop texts.")
    return "\n".join(lines)
