"""Password hashing (argon2id) and the password rules.

Rules: at least 10 characters, at most 256; not one of the 30,000 most common
passwords (shipped in ``core/data/common-passwords.txt``), nor one of them with
digits or symbols stuck on the end, nor a run of one character or a keyboard
sequence, nor the account's own name.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_LENGTH = 10
MAX_LENGTH = 256
COMMON_FILE = Path(__file__).parent / "data" / "common-passwords.txt"
#: words that are guessable on this site in particular
SITE_WORDS = {"kinship", "loneliness", "lonely", "connect", "friendship", "password"}
SEQUENCES = ("abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm", "01234567890")


@functools.cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#")) | SITE_WORDS


def password_problem(password: str, *, names: tuple[str | None, ...] = ()) -> str | None:
    """Return why a password is not allowed, or None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    lowered = password.lower()
    common = common_passwords()
    stem = re.sub(r"[\d\W_]+$", "", lowered)
    if lowered in common or (len(stem) >= 4 and stem in common):
        return "That password is too common. Try a few unrelated words together."
    if len(set(lowered)) <= 2:
        return "That password repeats the same characters. Try a few unrelated words together."
    if any(lowered in seq or lowered in seq[::-1] for seq in SEQUENCES):
        return "That password is a keyboard sequence. Try a few unrelated words together."
    for name in names:
        key = re.sub(r"\W+", "", (name or "").lower().split("@")[0])
        if len(key) >= 4 and key in re.sub(r"\W+", "", lowered):
            return "Your password should not contain your name or sign-in name."
    return None


def _hasher() -> PasswordHasher:
    config = current_app.config
    return PasswordHasher(
        time_cost=config["ARGON2_TIME_COST"], memory_cost=config["ARGON2_MEMORY_COST"]
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """Verify in constant work: an account without a hash still costs one hash."""
    hasher = _hasher()
    if password_hash is None:
        hasher.hash(password)
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)
