"""Compiling watched-word rules into regular expressions and matching text against them.

A **phrase** is written in plain words; ``*`` at the end of a word stands for any ending
("kill* myself" also catches "killing myself"). It is normalised like the text
(:func:`~moderation.screening.normalise.normalise`), then each letter may repeat and may be
followed by one separator, so "killll myself", "k i l l myself", "k.i.l.l my self" and
"killmyself" all match, while word boundaries keep "skill" and "painkillers" out.

A **pattern** is a regular expression matched (case-insensitively) against the folded
text with punctuation and digits kept (phone numbers, e-mail, street addresses).

**Guards** (a rule's ``unless`` phrases, plus :data:`DEFAULT_GUARDS` for the risk
categories) cancel a match they overlap: "this joke killed me", "killing it", "dying to
see you", "I could kill for a coffee". A rule matches when at least one of its matches is
not cancelled.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from moderation.models import RISK_CATEGORIES, SEVERITIES
from moderation.screening.normalise import fold, normalise

#: idioms that look like harm but are not, applied to every self_harm/harm_to_others rule
DEFAULT_GUARDS: tuple[str, ...] = (
    "joke killed me", "that killed me", "this killed me", "you killed me", "killed me laughing",
    "killing it", "killed it", "kill it", "could kill for", "kill for a", "kill for some",
    "kill time", "killing time", "kill the mood", "kill two birds", "killer",
    "killing me", "are killing me", "is killing me",
    "die my hair", "die your hair", "die her hair", "die it",
    "dying to", "dying for", "dying laughing", "dying of laughter", "to die for", "die hard",
    "dead tired", "dead funny", "drop dead", "dead on my feet", "bored to death",
    "cut myself off", "cut myself some slack", "cut myself shaving", "cut myself a",
    "stab at", "shoot me a message", "shoot me a text", "killing yourself over",
    "kill myself laughing", "killing myself laughing",
)
#: how far a pattern may reach (keeps admins' patterns from being abused as search tools)
PATTERN_MAX = 300


#: letters a digit may stand for, which normalisation cannot decide ("1" is i or l)
_LOOKALIKE = {"i": "[i1]", "l": "[l1]"}


class RuleError(ValueError):
    """A phrase or pattern that cannot be used; the message says why."""


def _segments(phrase: str) -> list[str]:
    """The phrase as letters and ``*`` wildcards, repeats collapsed, spaces dropped."""
    out: list[str] = []
    for word in phrase.split():
        wildcard = word.endswith("*")
        letters = normalise(word.rstrip("*")).replace(" ", "")
        for char in letters:
            if not out or out[-1] != char:
                out.append(char)
        if wildcard and letters:
            out.append("*")
    return out


def phrase_regex(phrase: str) -> re.Pattern[str]:
    """The regular expression for a phrase (see the module docstring)."""
    segments = _segments(phrase)
    if not [s for s in segments if s != "*"]:
        raise RuleError("A phrase needs at least one letter or digit.")
    body = ""
    for index, seg in enumerate(segments):
        if seg == "*":
            body += r"\w*"
            continue
        if index:
            body += r"\W?"
        char = _LOOKALIKE.get(seg, re.escape(seg))
        body += f"{char}(?:\\W?{char})*"
    return re.compile(rf"(?<!\w){body}(?!\w)")


def pattern_regex(pattern: str) -> re.Pattern[str]:
    if not pattern or len(pattern) > PATTERN_MAX:
        raise RuleError(f"A pattern needs 1 to {PATTERN_MAX} characters.")
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise RuleError(f"This is not a valid pattern: {exc.msg}.") from exc
    if compiled.search("") is not None:
        raise RuleError("This pattern matches empty text, so it would match everything.")
    return compiled


@dataclass(frozen=True)
class RuleSpec:
    """What matching needs of a rule (a database row or a shipped default)."""

    id: int | None
    category: str
    severity: str
    action: str
    kind: str
    text: str
    unless: tuple[str, ...] = ()
    message: str = ""

    @property
    def severity_level(self) -> int:
        return SEVERITIES.get(self.severity, 0)

    @property
    def is_risk(self) -> bool:
        return self.category in RISK_CATEGORIES and self.severity == "high"


@dataclass(frozen=True)
class Compiled:
    regex: re.Pattern[str]
    guards: tuple[re.Pattern[str], ...]
    #: "heavy" (normalised words) or "light" (folded, punctuation kept)
    form: str


@functools.lru_cache(maxsize=2048)
def compile_rule(kind: str, text: str, unless: tuple[str, ...], category: str) -> Compiled:
    """Compile a rule (cached by its content, so an edited rule compiles afresh)."""
    if kind == "pattern":
        regex, form = pattern_regex(text), "light"
    elif kind == "phrase":
        regex, form = phrase_regex(text), "heavy"
    else:
        raise RuleError(f"Unknown rule kind {kind!r}.")
    guard_texts = [*unless, *(DEFAULT_GUARDS if category in RISK_CATEGORIES else ())]
    guards = tuple(phrase_regex(g) for g in guard_texts if _segments(g))
    return Compiled(regex, guards, form)


def check_rule(kind: str, text: str, unless: Iterable[str] = ()) -> None:
    """Raise :class:`RuleError` when the rule could not be matched."""
    if kind == "phrase":
        phrase_regex(text)
    elif kind == "pattern":
        pattern_regex(text)
    else:
        raise RuleError("Choose phrase or pattern.")
    for guard in unless:
        try:
            phrase_regex(guard)
        except RuleError as exc:
            raise RuleError(f"'Unless' phrase {guard!r}: {exc}") from exc


@dataclass(frozen=True)
class Text:
    """A text in both forms, computed once per screening."""

    heavy: str
    light: str

    @classmethod
    def of(cls, text: str) -> Text:
        return cls(normalise(text), fold(text))


def _overlaps(span: tuple[int, int], other: tuple[int, int]) -> bool:
    return span[0] < other[1] and other[0] < span[1]


def rule_matches(rule: RuleSpec, text: Text) -> bool:
    compiled = compile_rule(rule.kind, rule.text, tuple(rule.unless), rule.category)
    haystack = text.heavy if compiled.form == "heavy" else text.light
    spans = [m.span() for m in compiled.regex.finditer(haystack)]
    if not spans:
        return False
    guarded = [m.span() for guard in compiled.guards for m in guard.finditer(haystack)]
    return any(not any(_overlaps(span, g) for g in guarded) for span in spans)


def matching_rules(rules: Iterable[RuleSpec], text: str) -> list[RuleSpec]:
    """The rules that match ``text`` (a rule that fails to compile is skipped: rules are
    checked when saved, and one bad row must not stop screening)."""
    prepared = Text.of(text)
    found = []
    for rule in rules:
        try:
            if rule_matches(rule, prepared):
                found.append(rule)
        except RuleError:
            continue
    return found
