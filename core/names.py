"""Checks on forum display names (pseudonyms) and phone numbers.

A display name is public inside the study, so it must not identify anyone:
no e-mail address, no phone number, and not a first name followed by a
surname. Uniqueness is case- and accent-insensitive.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

import phonenumbers

FIRST_NAMES_FILE = Path(__file__).parent / "data" / "first-names.txt"
ALLOWED = re.compile(r"^[\w][\w .'-]*$")


@functools.cache
def first_names() -> frozenset[str]:
    lines = FIRST_NAMES_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


def display_key(name: str) -> str:
    """Casefolded, accent-free, single-spaced: two names with the same key clash."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", plain).strip().casefold()


def display_name_problem(name: str) -> str | None:
    """Return why a display name is not allowed, or None."""
    name = name.strip()
    if not 3 <= len(name) <= 30:
        return "Use 3 to 30 characters."
    if "@" in name or re.search(r"\.(com|org|net|uk|io)\b", name, re.I):
        return "That looks like an e-mail address. Please choose a nickname instead."
    if sum(c.isdigit() for c in name) >= 6:
        return "That looks like a phone number. Please choose a nickname instead."
    if not ALLOWED.match(name):
        return "Use letters, numbers, spaces, dots, dashes or apostrophes."
    words = [w for w in re.split(r"[\s._-]+", display_key(name)) if w]
    if len(words) >= 2 and words[0] in first_names() and words[1].isalpha() and len(words[1]) > 1:
        return ("That looks like a real first name and surname. To keep you private, "
                "please choose a nickname, such as 'Quiet Harbour' or 'Tea Drinker'.")
    return None


class PhoneError(ValueError):
    pass


def normalise_phone(raw: str, region: str) -> str:
    """Parse a mobile number typed by a person and return it in E.164."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError("That does not look like a phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise PhoneError("That phone number is not valid. Check the digits and the country code.")
    kind = phonenumbers.number_type(number)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE,
                    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise PhoneError("Please give a mobile number that can receive text messages.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str | None) -> str:
    """Show only the last three digits, for staff pages and logs."""
    if not e164:
        return ""
    return "•" * (len(e164) - 3) + e164[-3:]
