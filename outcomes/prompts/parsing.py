"""Reading an answer out of a text message.

People answer "7", "seven", "I'd say 7 today", "7/10", "yeah", "no, not really" or
"2 1 3". ``parse_reply(text, answer)`` returns what the text says for that kind of
answer, or says why it cannot be read:

- ``ok``: the value (an int for a scale, True/False for yes/no, a list of ints for digits);
- ``out_of_range``: a clear number outside the scale (the value is kept for the record);
- ``unreadable``: nothing usable, or something ambiguous (two different numbers, both yes
  and no words, a decimal).

Pure functions: no database, no Flask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from outcomes.prompts.protocol import Answer

OK = "ok"
OUT_OF_RANGE = "out_of_range"
UNREADABLE = "unreadable"

WORDS = {
    "zero": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20,
}
YES = frozenset({"y", "yes", "yeah", "yeh", "yea", "yep", "yup", "ya", "yah", "yas", "aye",
                 "sure", "definitely", "absolutely", "certainly", "indeed", "affirmative"})
NO = frozenset({"n", "no", "nope", "nah", "naw", "nay", "not", "never", "didnt", "havent",
                "hadnt", "wasnt", "nobody", "noone", "none", "negative"})
_YES_STRETCHED = re.compile(r"ye+[sp]+|ye+a+h*|y+")
_NO_STRETCHED = re.compile(r"no+|n+|no+pe+|na+h+")
_WORD = re.compile(r"[a-z]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?|[a-z]+")
_INTEGER = re.compile(r"\d+|[a-z]+")


@dataclass(frozen=True)
class Parsed:
    status: str
    value: Any = None

    @property
    def ok(self) -> bool:
        return self.status == OK


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("'", "")
    return text.replace("no one", "noone").replace("did not", "didnt")


def _words(text: str) -> list[str]:
    return _WORD.findall(_normalise(text))


def parse_yes_no(text: str) -> Parsed:
    found = set()
    for word in _words(text):
        if word in YES or _YES_STRETCHED.fullmatch(word):
            found.add(True)
        elif word in NO or _NO_STRETCHED.fullmatch(word):
            found.add(False)
    if len(found) != 1:
        return Parsed(UNREADABLE)
    return Parsed(OK, found.pop())


def _numbers(text: str, scale_max: int, *, decimals: bool = True) -> list[str] | None:
    """Every number written in the text, as digits, words turned into digits; the "/10" or
    "out of 10" of a scale is dropped. None when a decimal makes it ambiguous."""
    text = _normalise(text)
    text = re.sub(rf"(?:/|out of|outta)\s*{scale_max}\b", " ", text)
    found = []
    for token in (_NUMBER if decimals else _INTEGER).findall(text):
        if token[0].isdigit():
            if "." in token or "," in token:
                return None
            found.append(token)
        elif token in WORDS:
            found.append(str(WORDS[token]))
    return found


def parse_scale(text: str, low: int, high: int) -> Parsed:
    numbers = _numbers(text, high)
    if not numbers or len({int(n) for n in numbers}) != 1:
        return Parsed(UNREADABLE)
    value = int(numbers[0])
    return Parsed(OK, value) if low <= value <= high else Parsed(OUT_OF_RANGE, value)


def parse_digits(text: str, count: int, low: int, high: int) -> Parsed:
    numbers = _numbers(text, -1, decimals=False) or []
    if len(numbers) == 1 and len(numbers[0]) == count:
        values = [int(ch) for ch in numbers[0]]
    elif len(numbers) == count and all(len(n) == 1 or n == "10" for n in numbers):
        values = [int(n) for n in numbers]
    else:
        return Parsed(UNREADABLE)
    if all(low <= v <= high for v in values):
        return Parsed(OK, values)
    return Parsed(OUT_OF_RANGE, values)


def parse_reply(text: str, answer: Answer) -> Parsed:
    """What ``text`` answers to a prompt expecting ``answer``."""
    text = (text or "").strip()
    if not text:
        return Parsed(UNREADABLE)
    if answer.type == "yesno":
        return parse_yes_no(text)
    if answer.type == "scale":
        return parse_scale(text, answer.min, answer.max)
    return parse_digits(text, answer.count, answer.min, answer.max)
