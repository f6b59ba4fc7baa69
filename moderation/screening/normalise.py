"""Text normalisation for watched-word matching.

Two forms of the same text:

- :func:`fold` ("light"): Unicode NFKD with combining marks removed, casefolded, runs of
  white space made one space. Punctuation and digits stay, so patterns for phone
  numbers, e-mail and street addresses see them.
- :func:`normalise` ("heavy"): the folded text cut into words (letters and digits, plus
  ``@`` and ``$`` inside words), a few look-alike letters and leetspeak digits mapped
  back to letters in words that contain a letter ("$uicide" -> "suicide", but "116 123"
  stays digits), words joined by single spaces. "1" stays: it may be an i or an l, so
  the phrase expressions accept it for both ("k1ll", "ki11").

Repeated letters ("killll") and spacing tricks ("k i l l", "k.i.l.l") are handled by the
phrase regular expressions (:mod:`moderation.screening.matching`), which allow a letter to
repeat and an optional separator between letters, so the text need not be rewritten.
"""

from __future__ import annotations

import re
import unicodedata

#: leetspeak and look-alike letters (Cyrillic/Greek that NFKD leaves alone) -> Latin
_LEET = str.maketrans({
    "0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
    "ο": "o", "α": "a", "ι": "i", "κ": "k", "ν": "v", "τ": "t",
})
_WORD = re.compile(r"(?:[^\W_]|[@$])+")
_SPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """Casefolded, accents removed, white space collapsed; punctuation kept."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACE.sub(" ", stripped.casefold()).strip()


def _word(token: str) -> str:
    if any(c.isalpha() for c in token):
        return token.translate(_LEET)
    return token.replace("@", "").replace("$", "")


def _spelled_out(tokens: list[str], index: int) -> bool:
    """A lone digit between single letters ("k 1 l l") is a letter spelled out."""
    neighbours = tokens[max(0, index - 1):index] + tokens[index + 1:index + 2]
    return any(len(n) == 1 and n.isalpha() for n in neighbours)


def normalise(text: str) -> str:
    """Words only, leetspeak undone, one space between words."""
    tokens = _WORD.findall(fold(text))
    words = [token.translate(_LEET) if len(token) == 1 and _spelled_out(tokens, i)
             else _word(token) for i, token in enumerate(tokens)]
    return " ".join(w for w in words if w)
