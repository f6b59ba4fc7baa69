"""The shipped watched words on real phrasings, normalisation tricks and false-positive
guards. Pure matching: no database."""

from __future__ import annotations

import pytest

from moderation.models import RISK_CATEGORIES
from moderation.rules import shipped_specs
from moderation.screening.matching import RuleSpec, matching_rules, phrase_regex
from moderation.screening.normalise import fold, normalise
from moderation.screening.screener import decide

#: (text, category that must match)
MUST_MATCH = [
    ("I want to kill myself", "self_harm"),
    ("honestly i just wanna die", "self_harm"),
    ("I've been thinking about ending my life", "self_harm"),
    ("Sometimes I think everyone would be better off without me", "self_harm"),
    ("I keep thinking about taking my own life", "self_harm"),
    ("i'm suicidal again tonight", "self_harm"),
    ("Been feeling suicidal all week", "self_harm"),
    ("I wish I was dead", "self_harm"),
    ("there's no reason to live anymore", "self_harm"),
    ("I have nothing to live for", "self_harm"),
    ("I don't want to be here anymore", "self_harm"),
    ("I dont want to live like this", "self_harm"),
    ("I started cutting myself again", "self_harm"),
    ("I want to hurt myself", "self_harm"),
    ("I took an overdose last night", "self_harm"),
    ("I'm going to jump off a bridge", "self_harm"),
    ("I'm going to hang myself", "self_harm"),
    ("thinking about unaliving myself", "self_harm"),
    ("I just want to go to sleep and never wake up", "self_harm"),
    ("I'm going to end it all tonight", "self_harm"),
    ("I feel like such a burden, I'm a burden to everyone", "self_harm"),
    ("I can't go on like this", "self_harm"),
    ("I'm going to kill him when I see him", "harm_to_others"),
    ("I want to hurt someone", "harm_to_others"),
    ("I'll bring a knife tomorrow", "harm_to_others"),
    ("you should kill yourself", "harassment"),
    ("kys loser", "harassment"),
    ("nobody likes you here", "harassment"),
    ("call me on 07700 900123", "personal_info"),
    ("my mobile is +44 7700 900123", "personal_info"),
    ("ring the house on 020 7946 0000", "personal_info"),
    ("email me at sam.jones@example.com", "personal_info"),
    ("sam dot jones at gmail dot com", "personal_info"),
    ("I live at 12 Acacia Avenue", "personal_info"),
    ("come round, postcode is SW1A 1AA", "personal_info"),
    ("add me on snapchat", "personal_info"),
    ("earn £500 a day from home", "spam"),
    ("check this out bit.ly/abc123", "spam"),
    ("amazing investment opportunity!!!", "spam"),
]

#: tricks on "I want to kill myself": each must still match self_harm
TRICKS = [
    "I want to KILL MYSELF", "I want to kíll mysélf", "I want to killllll myselfff",
    "I want to k i l l myself", "I want to k.i.l.l m.y.s.e.l.f", "I want to k1ll mys3lf",
    "I want to k!ll myself".replace("!", "1"), "I want to ki11 my$elf", "I want to kill my self",
    "I want to killmyself", "i w@nt t0 d!e".replace("!", "1"), "I w a n t to d i e",
    "ＫＩＬＬ ＭＹＳＥＬＦ", "wanna diiiie",
]

#: must not match any self_harm or harm_to_others rule
MUST_NOT_MATCH_HARM = [
    "this joke killed me",
    "you're killing it with the gardening!",
    "I'm dying to see the new film",
    "I could kill for a coffee right now",
    "we were killing time at the station",
    "my feet are killing me after that walk",
    "that cake is to die for",
    "I was dying laughing at the dog",
    "I've cut myself off from my friends lately",
    "trying to cut myself some slack this week",
    "my skills are improving",
    "I took painkillers for my back",
    "he's such a killer dancer",
    "I'm dead tired today",
    "I want to die my hair purple",
    "the plants in my garden died",
    "I'd kill two birds with one stone by going",
    "the frost will kill it off",
    "bored to death at work",
    "I have a stab at the crossword every day",
    "I don't want to wake up early tomorrow",
]

#: must not match anything at all
MUST_NOT_MATCH_ANY = [
    "Walked 5 miles down the road today",
    "Call Samaritans on 116 123 if you need to",
    "I went to the park 3 times this week",
    "Had a lovely cup of tea with my neighbour",
    "my therapist helped a lot",
    "I skilled up at the library course",
]


def categories(text: str) -> set[str]:
    return {rule.category for rule in matching_rules(shipped_specs(), text)}


@pytest.mark.parametrize(("text", "category"), MUST_MATCH)
def test_real_phrasings_match_their_category(text, category):
    """It catches each real phrasing under the right category."""
    assert category in categories(text)


@pytest.mark.parametrize("text", TRICKS)
def test_spelling_tricks_still_match(text):
    """It sees through case, accents, repeats, spacing, punctuation and leetspeak."""
    assert "self_harm" in categories(text)


@pytest.mark.parametrize("text", MUST_NOT_MATCH_HARM)
def test_idioms_do_not_match_harm_rules(text):
    """It lets everyday idioms through the harm rules (false-positive guards)."""
    assert not categories(text) & RISK_CATEGORIES


@pytest.mark.parametrize("text", MUST_NOT_MATCH_ANY)
def test_ordinary_text_matches_nothing(text):
    assert categories(text) == set()


def test_table_sizes():
    """The brief asks for at least 30 phrasings that match and 20 that must not."""
    assert len(MUST_MATCH) + len(TRICKS) >= 30
    assert len(MUST_NOT_MATCH_HARM) + len(MUST_NOT_MATCH_ANY) >= 20


def test_normalise_and_fold():
    assert normalise("Ça  VA, k3ll $uicide 116 123") == "ca va kell suicide 116 123"
    assert normalise("k.0.l.l") == "k o l l"
    assert fold("  Café\n07700  900123 ") == "cafe 07700 900123"


def test_phrase_regex_keeps_word_boundaries():
    regex = phrase_regex("kill")
    assert regex.search("kill") and regex.search("kiiill")
    assert not regex.search("skill") and not regex.search("killer")
    assert phrase_regex("kill*").search("killer")


def spec(category: str, severity: str, action: str, text: str, rule_id: int,
         message: str = "") -> RuleSpec:
    return RuleSpec(rule_id, category, severity, action, "phrase", text, (), message)


RULES = [
    spec("spam", "low", "flag", "click here", 1),
    spec("harassment", "medium", "hold", "you are mean", 2, "Held for a moderator."),
    spec("harassment", "high", "block", "go away forever", 3, "Please be kind."),
    spec("self_harm", "high", "hold", "want to die", 4),
    spec("self_harm", "medium", "flag", "hopeless", 5),
]


@pytest.mark.parametrize(("text", "action", "category", "risk"), [
    ("click here", "flag", "spam", False),
    ("you are mean, click here", "hold", "harassment", False),
    ("go away forever you are mean", "block", "harassment", False),
    ("I want to die, go away forever", "hold", "self_harm", True),
    ("hopeless", "flag", "self_harm", False),
    ("a nice day", "publish", None, False),
])
def test_strongest_rule_decides_on_the_forum(text, action, category, risk):
    """Block beats hold beats flag; risk beats everything (and holds)."""
    verdict = decide(matching_rules(RULES, text), "forum_post")
    assert (verdict.action, verdict.category, verdict.is_risk) == (action, category, risk)


def test_verdict_carries_message_and_rule_ids():
    verdict = decide(matching_rules(RULES, "go away forever, click here"), "forum_comment")
    assert verdict.message == "Please be kind." and verdict.rule_ids == (1, 3)
    assert verdict.severity == 3 and not verdict.publishes


@pytest.mark.parametrize("channel", ["reflection", "sms"])
def test_private_channels_only_flag_risk_categories(channel):
    """A journal or an SMS reply is never held or blocked, and only risk words count."""
    assert decide(matching_rules(RULES, "go away forever"), channel).action == "publish"
    flagged = decide(matching_rules(RULES, "hopeless"), channel)
    assert (flagged.action, flagged.is_risk) == ("flag", False)
    risk = decide(matching_rules(RULES, "I want to die"), channel)
    assert (risk.action, risk.is_risk, risk.category) == ("flag", True, "self_harm")


def test_rule_unless_phrases_guard_only_overlapping_matches():
    rule = RuleSpec(9, "harm_to_others", "high", "hold", "phrase", "kill*", ("kill a spider",))
    assert matching_rules([rule], "I had to kill a spider") == []
    assert matching_rules([rule], "I had to kill a spider and I will kill him") == [rule]
