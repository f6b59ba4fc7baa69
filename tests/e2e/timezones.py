"""Choosing a participant's time zone so that time-of-day rules hold whenever the suite
runs (the SMS prompts only go out 08:00-21:00 in the participant's own time)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.forms import timezone_choices

PREFERRED = "Europe/London"


def morning_zone(now: datetime, hours: range = range(9, 11)) -> str:
    """A zone offered on the invite page where the local hour is in ``hours`` at ``now``
    (London when it fits). Morning: inside 08:00-21:00 and the participant's waking day,
    and before the windows of the protocol's other prompts (17:00-20:00, Sunday 11:00-16:00),
    so the daily 09:00 prompt is the only one due when the waking day starts now."""
    for zone in [PREFERRED, *(choice.value for choice in timezone_choices())]:
        if now.astimezone(ZoneInfo(zone)).hour in hours:
            return zone
    raise LookupError(f"no time zone has a local hour in {hours} at {now:%H:%M} UTC")
