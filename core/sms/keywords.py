"""STOP / START / HELP and their synonyms: the whole message, any case, with spaces and
punctuation around it ("Stop.", " unsubscribe! ") but nothing else ("stop texting me
at night" is an ordinary text for the moderator)."""

from __future__ import annotations

import re

STOP_WORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                        "OPTOUT", "OPT OUT", "OPT-OUT", "REVOKE"})
START_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN", "OPT IN", "OPT-IN", "SUBSCRIBE",
                         "RESUME"})
HELP_WORDS = frozenset({"HELP", "INFO"})
#: START words that are also answers ("Did you talk to someone today? Reply Y or N"):
#: they mean START only for a participant who has opted out
ANSWER_WORDS = frozenset({"YES"})

_EDGES = re.compile(r"^[\s\W_]+|[\s\W_]+$")
_SPACES = re.compile(r"\s+")


def _word(text: str) -> str:
    return _SPACES.sub(" ", _EDGES.sub("", text or "")).upper()


def keyword(text: str, *, opted_out: bool = True) -> str | None:
    """"stop", "start", "help", or None for an ordinary text. ``opted_out=False``: "YES"
    is an answer, not START."""
    word = _word(text)
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS and (opted_out or word not in ANSWER_WORDS):
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None
