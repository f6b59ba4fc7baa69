"""The platform's one clock.

Everything that asks "what time is it?" calls :func:`utcnow`, so tests (and the
``flask sms tick --at`` style commands) can move time without patching modules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

_frozen: datetime | None = None


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime (or the frozen time)."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC)


def set_time(at: datetime | None) -> None:
    """Freeze the clock at ``at`` (aware), or unfreeze it with ``None``."""
    global _frozen
    if at is not None and at.tzinfo is None:
        raise ValueError("the clock only takes aware datetimes")
    _frozen = at.astimezone(UTC) if at is not None else None


def advance(delta: timedelta) -> datetime:
    """Move a frozen clock forward and return the new time."""
    if _frozen is None:
        raise RuntimeError("advance() needs a frozen clock; call set_time() first")
    set_time(_frozen + delta)
    return utcnow()


@contextlib.contextmanager
def frozen_at(at: datetime) -> Iterator[None]:
    """Freeze the clock for the duration of a ``with`` block."""
    previous = _frozen
    set_time(at)
    try:
        yield
    finally:
        set_time(previous)
