"""Display names (pseudonyms) and phone numbers (core.names, core.accounts.check_display_name)."""

from __future__ import annotations

import pytest

from core import accounts
from core.extensions import db
from core.names import PhoneError, display_key, display_name_problem, mask_phone, normalise_phone
from tests.factories import make_participant, make_staff


@pytest.mark.parametrize("name", ["Quiet Harbour", "Tea Drinker", "Ash", "Café Owl", "Dr.Who",
                                  "Night-Owl 42", "O'Malley Cat", "x" * 30])
def test_nickname_is_accepted(name):
    """It accepts nicknames of 3 to 30 letters, digits, spaces, dots, dashes, apostrophes."""
    assert display_name_problem(name) is None


@pytest.mark.parametrize("name", ["ab", "  ab  ", "x" * 31, ""])
def test_display_name_of_wrong_length_is_refused(name):
    """It refuses names under 3 or over 30 characters (after trimming)."""
    assert display_name_problem(name) == "Use 3 to 30 characters."


@pytest.mark.parametrize("name", ["me@home", "sunny.com", "harbour.org", "Quiet.co.uk"])
def test_email_like_display_name_is_refused(name):
    """It refuses anything that looks like an e-mail address."""
    assert "looks like an e-mail address" in display_name_problem(name)


@pytest.mark.parametrize("name", ["07400 123456", "0740-0123-456", "call 123456"])
def test_phone_like_display_name_is_refused(name):
    """It refuses names with six or more digits."""
    assert "looks like a phone number" in display_name_problem(name)


@pytest.mark.parametrize("name", ["Sarah Jones", "sarah jones", "Sarah.Jones", "sarah_jones",
                                  "Zoë Moon"])
def test_first_name_and_surname_is_refused(name):
    """It refuses a real-looking first name followed by a surname, however it is joined."""
    assert "real first name and surname" in display_name_problem(name)


@pytest.mark.parametrize("name", ["Sarah", "Sarah 2", "Sarah J"])
def test_first_name_alone_is_accepted(name):
    """It lets a first name through when nothing after it looks like a surname."""
    assert display_name_problem(name) is None


@pytest.mark.parametrize("name", ["<script>", "Tea & Biscuits", "Rose!", "-dash first",
                                  "semi;colon", "new\nline"])
def test_display_name_with_disallowed_characters_is_refused(name):
    """It refuses markup, symbols and control characters."""
    expected = "Use letters, numbers, spaces, dots, dashes or apostrophes."
    assert display_name_problem(name) == expected


def test_display_key_ignores_case_accents_and_spacing():
    """It gives the same key to names that differ only in case, accents or spaces."""
    assert display_key("Quiét  HARBOUR ") == display_key("quiet harbour") == "quiet harbour"


@pytest.mark.parametrize("variant", ["Quiet Harbour", "quiet harbour", "QUIET  HARBOUR",
                                     "Quiét Harbour", "  quiet harbour  "])
def test_display_name_taken_in_any_case_or_accent_is_refused(app, variant):
    """It refuses a name another account already uses, ignoring case, accents and spacing."""
    with app.app_context():
        make_participant(name="Quiet Harbour")
        with pytest.raises(accounts.AccountError) as caught:
            accounts.check_display_name(variant)
    assert caught.value.field == "display_name"
    assert "already uses that name" in str(caught.value)


def test_own_display_name_is_not_a_clash(app):
    """It lets an account keep its own name (``exclude_user``)."""
    with app.app_context():
        participant = make_participant(name="Quiet Harbour")
        name = accounts.check_display_name("quiet harbour", exclude_user=participant.user)
    assert name == "quiet harbour"


def test_check_display_name_tidies_spaces(app):
    """It returns the name with runs of spaces collapsed and the ends trimmed."""
    with app.app_context():
        assert accounts.check_display_name("  Tea    Drinker ") == "Tea Drinker"


def test_check_display_name_reports_rule_problems_on_the_field(app):
    """It raises the rule's message on the display_name field."""
    with app.app_context(), pytest.raises(accounts.AccountError) as caught:
        accounts.check_display_name("Sarah Jones")
    assert caught.value.field == "display_name"
    assert "real first name" in str(caught.value)


def test_staff_may_use_their_real_name(app):
    """It lets staff use a real name (``pseudonym=False``) but still checks length."""
    with app.app_context():
        assert accounts.check_display_name("Sarah Jones", pseudonym=False) == "Sarah Jones"
        with pytest.raises(accounts.AccountError):
            accounts.check_display_name("S", pseudonym=False)


def test_name_that_spells_out_longer_than_the_key_column_is_refused(app):
    """It refuses a name whose casefolded key would not fit the column, instead of failing
    in the database ("ß" casefolds to "ss", ligatures decompose)."""
    with app.app_context():
        for name, pseudonym in (("ß" * 21, True), ("Großmann-Weißenbach ß" + "ß" * 20, False)):
            with pytest.raises(accounts.AccountError) as caught:
                accounts.check_display_name(name, pseudonym=pseudonym)
            assert caught.value.field == "display_name"


def test_display_name_equal_to_a_study_code_is_refused(app):
    """It refuses a name that is another participant's study code: sign-in takes either,
    and staff would mistake the writer for that participant."""
    with app.app_context():
        make_participant(code="T-0002", name="Quiet Harbour")
        with pytest.raises(accounts.AccountError) as caught:
            accounts.check_display_name("t-0002")
    assert caught.value.field == "display_name"


def test_staff_name_clashes_with_participant_name(app):
    """It keeps one namespace for staff and participant display names."""
    with app.app_context():
        make_staff("peer_moderator", name="Tea Drinker")
        db.session.commit()
        with pytest.raises(accounts.AccountError):
            accounts.check_display_name("tea drinker")


# --- phone numbers -------------------------------------------------------------

@pytest.mark.parametrize("raw", ["07400 123456", "07400123456", "+44 7400 123456",
                                 "(07400) 123-456", "0044 7400 123456"])
def test_uk_mobile_is_normalised_to_e164(raw):
    """It turns a UK mobile typed any usual way into E.164 (region GB)."""
    assert normalise_phone(raw, "GB") == "+447400123456"


def test_ofcom_drama_range_number_is_refused():
    """It refuses 07700 900xxx: Ofcom keeps that range for fiction, so the number
    library does not count it as a valid, reachable mobile."""
    with pytest.raises(PhoneError, match="not valid"):
        normalise_phone("07700 900123", "GB")


def test_uk_landline_is_refused():
    """It asks for a mobile when given a landline, which cannot receive texts."""
    with pytest.raises(PhoneError, match="mobile number that can receive text messages"):
        normalise_phone("020 7946 0018", "GB")


@pytest.mark.parametrize("raw", ["hello", "", "+", "not a number at all"])
def test_garbage_phone_is_refused(raw):
    """It refuses text that is not a phone number."""
    with pytest.raises(PhoneError, match="does not look like a phone number"):
        normalise_phone(raw, "GB")


@pytest.mark.parametrize("raw", ["12", "07400 12345", "07400 1234567"])
def test_phone_with_wrong_number_of_digits_is_refused(raw):
    """It refuses numbers that are too short or too long for their country."""
    with pytest.raises(PhoneError, match="not valid"):
        normalise_phone(raw, "GB")


def test_international_number_is_kept_in_its_own_country():
    """It reads a +1 number as North American whatever the default region."""
    assert normalise_phone("+1 650 253 0000", "GB") == "+16502530000"
    assert normalise_phone("(650) 253-0000", "US") == "+16502530000"


def test_mask_phone_shows_only_last_three_digits():
    """It hides all but the last three digits and keeps the length."""
    masked = mask_phone("+447400123456")
    assert masked == "•" * 10 + "456"
    assert len(masked) == len("+447400123456")


@pytest.mark.parametrize("empty", [None, ""])
def test_mask_phone_of_no_number_is_empty(empty):
    """It shows nothing when there is no number."""
    assert mask_phone(empty) == ""
