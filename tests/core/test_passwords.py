"""Password rules and argon2id hashing (core.passwords)."""

from __future__ import annotations

import pytest

from core.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    check_password,
    hash_password,
    needs_rehash,
    password_problem,
)


def test_too_short_password_is_refused():
    """It refuses a password one character under the minimum."""
    assert password_problem("plumvioli") == f"Use at least {MIN_LENGTH} characters."


def test_password_of_exactly_ten_characters_is_accepted():
    """It accepts an otherwise fine password of exactly the minimum length."""
    assert len("plumviolin") == MIN_LENGTH
    assert password_problem("plumviolin") is None


def test_too_long_password_is_refused():
    """It refuses a password over 256 characters, and takes one of exactly 256."""
    words = "kettle river blue lantern "
    longest = (words * 20)[:MAX_LENGTH]
    assert password_problem(longest) is None
    assert password_problem(longest + "x") == f"Use at most {MAX_LENGTH} characters."


@pytest.mark.parametrize("password", ["password123", "qwertyuiop", "PASSWORD123", "kinship2024",
                                      "friendship"])
def test_common_password_is_refused(password):
    """It refuses passwords from the common list and the site's own guessable words."""
    assert "too common" in password_problem(password)


@pytest.mark.parametrize("password", ["dragon2024!!", "Dragon2024!!", "sunshine_1999",
                                      "monkey!!!!!!"])
def test_common_password_with_digits_or_symbols_appended_is_refused(password):
    """It sees through a common word with digits or symbols stuck on the end."""
    assert "too common" in password_problem(password)


def test_common_word_inside_a_longer_phrase_is_accepted():
    """It does not refuse a passphrase just because one of its words is common."""
    assert password_problem("dragon kettle meadow") is None


@pytest.mark.parametrize("password", ["zzzzzzzzzzzz", "abababababab", "!!!!!!!!!!!!"])
def test_repeated_characters_are_refused(password):
    """It refuses a run of one or two characters."""
    assert "repeats the same characters" in password_problem(password)


@pytest.mark.parametrize("password", ["asdfghjklz", "zlkjhgfdsa", "9876543210", "cdefghijklmn"])
def test_keyboard_sequence_is_refused(password):
    """It refuses keyboard rows and alphabet or digit runs, forwards and backwards."""
    assert "keyboard sequence" in password_problem(password)


def test_password_containing_own_display_name_is_refused():
    """It refuses a password that contains the display name, spaces and case aside."""
    problem = password_problem("QuietHarbour77", names=("Quiet Harbour",))
    assert problem == "Your password should not contain your name or sign-in name."


def test_password_containing_own_email_local_part_is_refused():
    """It refuses a password that contains the part of the e-mail before the @."""
    problem = password_problem("jane.doe rocks 2024", names=("jane.doe@example.org",))
    assert problem == "Your password should not contain your name or sign-in name."


def test_password_containing_a_very_short_name_is_accepted():
    """It ignores names under four letters, which would refuse too many passwords."""
    assert password_problem("al the gardener sings", names=("Al", None)) is None


def test_good_passphrase_passes_every_rule():
    """It accepts a few unrelated words, whatever names are given."""
    assert password_problem("kettle river blue lantern",
                            names=("Quiet Harbour", "jane.doe@example.org", "T-0001")) is None


def test_hash_is_argon2id(app):
    """It hashes with argon2id and never stores the password itself."""
    with app.app_context():
        hashed = hash_password("kettle river blue")
    assert hashed.startswith("$argon2id$")
    assert "kettle" not in hashed


def test_same_password_hashes_differently_each_time(app):
    """It salts each hash."""
    with app.app_context():
        assert hash_password("kettle river blue") != hash_password("kettle river blue")


def test_check_password_accepts_right_and_refuses_wrong(app):
    """It verifies the right password and refuses a wrong one."""
    with app.app_context():
        hashed = hash_password("kettle river blue")
        assert check_password(hashed, "kettle river blue") is True
        assert check_password(hashed, "kettle river blew") is False
        assert check_password(hashed, "") is False


def test_check_password_refuses_missing_or_broken_hash(app):
    """It returns False (not an error) for an account with no hash or a corrupt one."""
    with app.app_context():
        assert check_password(None, "kettle river blue") is False
        assert check_password("not-a-hash", "kettle river blue") is False


def test_hash_made_with_old_settings_needs_rehash(app):
    """It asks for a rehash once the argon2 cost settings go up."""
    with app.app_context():
        hashed = hash_password("kettle river blue")
        assert needs_rehash(hashed) is False
        app.config["ARGON2_TIME_COST"] += 1
        assert needs_rehash(hashed) is True
