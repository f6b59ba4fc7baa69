"""Screening of what participants write, before anyone else sees it or acts on it.

Forum posts and comments, journal reflections and SMS replies pass through
:func:`screen` first. Its verdict says what happens to the text:

- ``publish``: shown as usual;
- ``flag``: shown, and queued for a moderator to look at;
- ``hold``: kept back ("waiting for a moderator") until a moderator approves it;
- ``block``: refused with a kind message; the author keeps the text in the form.

``is_risk`` marks high-risk content (e.g. suicide or self-harm): it is held, the author
sees the crisis resources at once, and a clinician is alerted.

Once the content is stored, the caller reports it with :func:`screened` so the
moderation package can queue it or open a risk alert. ``core`` knows nothing of
moderation: the moderation package registers its screener and its recorder at import
(``register_screener``, ``register_recorder``). Until it does, everything is published
and nothing is recorded.

Transaction contract: screeners only read; recorders add rows and flush; the caller
commits once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: what can be screened; the content types moderation links back to
CHANNELS = ("forum_post", "forum_comment", "reflection", "sms", "moderator_message")
ACTIONS = ("publish", "flag", "hold", "block")


@dataclass(frozen=True)
class Verdict:
    action: str = "publish"
    #: shown to the author when the text is held or blocked
    message: str = ""
    #: the watched-word category that matched first, e.g. "self_harm", "personal_info"
    category: str | None = None
    #: 0 none ... 3 high
    severity: int = 0
    is_risk: bool = False
    #: the ids of the rules that matched (moderation's watched words)
    rule_ids: tuple[int, ...] = field(default=())

    @property
    def publishes(self) -> bool:
        """Whether others may see the content now."""
        return self.action in ("publish", "flag")


PUBLISH = Verdict()

Screener = Callable[[str, str, Any], Verdict]
Recorder = Callable[[Verdict, str, int, Any], None]

_screener: Screener | None = None
_recorders: list[Recorder] = []


def register_screener(screener: Screener) -> None:
    """Set the function that judges text: ``screener(text, channel, author) -> Verdict``."""
    global _screener
    _screener = screener


def register_recorder(recorder: Recorder) -> None:
    """Add a function told of every screened and stored item:
    ``recorder(verdict, channel, content_id, author)``."""
    if recorder not in _recorders:
        _recorders.append(recorder)


def screen(text: str, *, channel: str, author: Any) -> Verdict:
    if channel not in CHANNELS:
        raise ValueError(f"unknown screening channel {channel!r}")
    if _screener is None:
        return PUBLISH
    return _screener(text, channel, author)


def screened(verdict: Verdict, *, channel: str, content_id: int, author: Any) -> None:
    """Report stored content and its verdict (every verdict but ``block``, which stores
    nothing) so moderation can queue a flag, hold it for review or alert a clinician."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown screening channel {channel!r}")
    for recorder in _recorders:
        recorder(verdict, channel, content_id, author)
