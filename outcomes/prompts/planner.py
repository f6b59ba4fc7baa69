"""When a prompt is sent: the maths of local days, waking windows and daylight saving.

A prompt belongs to one *local* day of the participant (its slot). Its local time is the
prompt's fixed ``at``, or a random minute inside its ``between`` window, both kept inside
the participant's allowed window: their waking window (``wake_start``-``wake_end``)
intersected with 08:00-21:00, which nothing overrides.

- A fixed time outside the allowed window moves to its nearest edge (09:00 for someone
  who wakes at 10:00 becomes 10:00); a random window is intersected with it (and, if they
  do not overlap, moved to the nearest edge the same way). An allowed window that is
  empty (waking window outside 08:00-21:00, or wrapping past midnight) means no prompts.
- The random minute is reproducible: it comes from SHA-256 of participant id, prompt key
  and date, so planning the same day again (another process, a restart) gives the same
  time, and participants cannot learn a pattern.
- Local time to UTC goes through the IANA zone of that very date, so the UTC time moves
  when the clocks change. A local time that does not exist on a spring-forward day (in
  the gap) is moved forward by the length of the gap (``fold=0``: 02:30 in London on the
  last Sunday of March is sent at 03:30 BST); a time that happens twice on a fall-back
  day is taken at its first occurrence (``fold=0``, before the clocks go back). Every
  result is checked again against the allowed window, so a shifted time that would land
  outside it is dropped rather than sent. (08:00-21:00 never meets a transition in the
  zones we know of, which change at night, but the rule is there.)

Pure functions: no database, no Flask.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from outcomes.prompts.protocol import QUIET_END, QUIET_START, Prompt

#: prompts are planned (queued with ``send_after``) this long before they are due
LOOKAHEAD = timedelta(minutes=30)
#: a prompt missed by the planner (scheduler down) is still sent this long after its time
SEND_GRACE = timedelta(minutes=30)


@dataclass(frozen=True)
class Slot:
    prompt_key: str
    day: date
    planned_at: datetime
    expires_at: datetime
    reminder_at: datetime | None
    #: the allowed window's end that day (UTC): nothing is sent after it
    latest_at: datetime


def allowed_window(wake_start: time, wake_end: time) -> tuple[time, time] | None:
    """The waking window inside 08:00-21:00, or None when nothing is left."""
    start, end = max(QUIET_START, wake_start), min(QUIET_END, wake_end)
    return (start, end) if start < end else None


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _time(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def random_minute(participant_id: int, prompt_key: str, day: date, span: int) -> int:
    """A reproducible offset in ``[0, span)`` for this participant, prompt and day."""
    digest = hashlib.sha256(f"{participant_id}:{prompt_key}:{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % max(span, 1)


def local_time(prompt: Prompt, participant_id: int, day: date,
               window: tuple[time, time]) -> time:
    """The prompt's local time that day, inside ``window``."""
    low, high = _minutes(window[0]), _minutes(window[1])
    if prompt.at is not None:
        return _time(min(max(_minutes(prompt.at), low), high))
    assert prompt.window is not None
    start = max(_minutes(prompt.window[0]), low)
    end = min(_minutes(prompt.window[1]), high)
    if start >= end:  # no overlap: the nearest edge of the allowed window
        edge = high if _minutes(prompt.window[0]) >= high else low
        return _time(edge)
    return _time(start + random_minute(participant_id, prompt.key, day, end - start))


def to_utc(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local date and time (gap: forward by the gap; repeated hour:
    the first occurrence)."""
    return datetime.combine(day, moment, tzinfo=zone).replace(fold=0).astimezone(UTC)


def _inside(instant: datetime, zone: ZoneInfo, day: date, window: tuple[time, time]) -> bool:
    local = instant.astimezone(zone)
    return local.date() == day and window[0] <= local.time().replace(tzinfo=None) <= window[1]


def plan_slot(prompt: Prompt, *, participant_id: int, day: date, zone: ZoneInfo,
              wake_start: time, wake_end: time) -> Slot | None:
    """When ``prompt`` goes to this participant on local ``day``; None when it does not."""
    if day.weekday() not in prompt.weekdays:
        return None
    window = allowed_window(wake_start, wake_end)
    if window is None:
        return None
    planned = to_utc(day, local_time(prompt, participant_id, day, window), zone)
    if not _inside(planned, zone, day, window):
        return None
    reminder = None
    if prompt.reminder is not None:
        reminder = planned + timedelta(minutes=prompt.reminder.after_minutes)
        if not _inside(reminder, zone, day, window):
            reminder = None  # a reminder never goes out after the participant's day ends
    return Slot(prompt.key, day, planned, planned + timedelta(minutes=prompt.expire_minutes),
                reminder, to_utc(day, window[1], zone))


def days_around(now: datetime, zone: ZoneInfo) -> list[date]:
    """The participant's local dates the planner looks at now."""
    return sorted({(now - SEND_GRACE).astimezone(zone).date(),
                   (now + LOOKAHEAD).astimezone(zone).date()})


def is_due(slot: Slot, now: datetime) -> bool:
    """Queue now: due within the look-ahead, and not too late (nor after the day's end)."""
    return slot.planned_at - LOOKAHEAD <= now <= min(slot.planned_at + SEND_GRACE, slot.latest_at)
