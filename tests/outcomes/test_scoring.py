"""The scoring engine is exact on every built-in instrument.

Expected values are worked out by hand in each test (the arithmetic is written out), from the
published keys copied here, never by calling the engine. The engine computes exactly and returns
the nearest float, so expectations are written as whole-number arithmetic with one final division
(``41 * 20 / 16``), which rounds the same way. ``NA`` below is ``None``: a missing answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from outcomes import instruments
from outcomes.scoring import (
    INSUFFICIENT,
    OK,
    Score,
    ScoringError,
    answers_from_list,
    check_answers,
    score,
)

NA = None

#: published keys, written out independently of the definition files
UCLA20_REVERSED = {1, 5, 6, 9, 10, 15, 16, 19, 20}
ULS8_REVERSED = {3, 6}
SUS_REVERSED = {2, 4, 6, 8, 10}
ACCEPTABILITY_REVERSED = {6}
MSPSS_SUBSCALES = {"significant_other": {1, 2, 5, 10}, "family": {3, 4, 8, 11},
                   "friends": {6, 7, 9, 12}}
LSNS6_SUBSCALES = {"family": {1, 2, 3}, "friends": {4, 5, 6}}


def run(instrument_id: str, values: Sequence[int | None]) -> Score:
    """Score answers given in item order."""
    instrument = instruments.builtin()[instrument_id]
    return score(instrument, answers_from_list(instrument, values))


def with_answer(values: Sequence[int | None], item: int, answer: int | None) -> list[int | None]:
    """``values`` with item number ``item`` (1-based) answered ``answer``."""
    changed = list(values)
    changed[item - 1] = answer
    return changed


def test_every_builtin_instrument_is_tested_here() -> None:
    """It fails when a built-in instrument is added without exact-score tests in this file."""
    assert set(instruments.builtin()) == {"ucla20", "ucla3", "uls8", "mspss", "lsns6", "sus",
                                          "acceptability"}


# --------------------------------------------------------------------------- UCLA-LS v3 (20)

def test_ucla20_minimum_is_20() -> None:
    """It scores 20 when reversed items are answered 4 (5 - 4 = 1) and the rest 1."""
    values = [4 if item in UCLA20_REVERSED else 1 for item in range(1, 21)]
    result = run("ucla20", values)
    assert result.total == 20 * 1
    assert (result.status, result.missing) == (OK, 0)


def test_ucla20_maximum_is_80() -> None:
    """It scores 80 when reversed items are answered 1 (5 - 1 = 4) and the rest 4."""
    values = [1 if item in UCLA20_REVERSED else 4 for item in range(1, 21)]
    assert run("ucla20", values).total == 20 * 4


@pytest.mark.parametrize(("answer", "expected"), [
    (1, 11 * 1 + 9 * (5 - 1)),   # 11 + 36 = 47
    (2, 11 * 2 + 9 * (5 - 2)),   # 22 + 27 = 49
    (3, 11 * 3 + 9 * (5 - 3)),   # 33 + 18 = 51
    (4, 11 * 4 + 9 * (5 - 4)),   # 44 + 9 = 53
])
def test_ucla20_uniform_answers_show_the_nine_reversed_items(answer: int, expected: int) -> None:
    """It reverses 9 of the 20 items, so answering everything the same is not 20 x answer."""
    assert run("ucla20", [answer] * 20).total == expected


@pytest.mark.parametrize("item", range(1, 21))
def test_ucla20_each_item_moves_the_total_by_its_key(item: int) -> None:
    """It lowers the total by 2 when a reversed item goes from 2 to 4 (3 -> 1) and raises it
    by 2 for any other item (2 -> 4), from all-2s = 49."""
    expected = 49 - 2 if item in UCLA20_REVERSED else 49 + 2
    assert run("ucla20", with_answer([2] * 20, item, 4)).total == expected


@pytest.mark.parametrize(("answer", "item_score"), [(1, 4), (2, 3), (3, 2), (4, 1)])
def test_ucla20_reverse_formula_is_five_minus_answer(answer: int, item_score: int) -> None:
    """It scores reversed item 1 as 5 - answer: all-2s is 49, of which item 1 gives 3."""
    assert run("ucla20", with_answer([2] * 20, 1, answer)).total == 49 - 3 + item_score


def test_ucla20_prorates_with_four_missing() -> None:
    """It prorates with 4 of 20 missing (20 %): mean of the 16 answered x 20."""
    # all 2s, items 2, 3, 4, 7 (not reversed) missing: 7 unreversed x 2 + 9 reversed x 3 = 41
    values = [NA if item in (2, 3, 4, 7) else 2 for item in range(1, 21)]
    result = run("ucla20", values)
    assert result.total == 41 * 20 / 16 == 51.25
    assert (result.status, result.missing) == (OK, 4)


def test_ucla20_prorates_after_reverse_scoring() -> None:
    """It reverse-scores before averaging: four reversed items missing from all-2s."""
    # items 1, 5, 6, 9 missing: 11 unreversed x 2 + 5 reversed x (5 - 2) = 22 + 15 = 37
    values = [NA if item in (1, 5, 6, 9) else 2 for item in range(1, 21)]
    assert run("ucla20", values).total == 37 * 20 / 16 == 46.25


def test_ucla20_is_insufficient_with_five_missing() -> None:
    """It gives no total with 5 of 20 missing (25 %)."""
    values = [NA if item in (2, 3, 4, 7, 8) else 2 for item in range(1, 21)]
    result = run("ucla20", values)
    assert (result.total, result.status, result.missing) == (None, INSUFFICIENT, 5)


def test_ucla20_full_precision_when_prorated() -> None:
    """It keeps the prorated total unrounded: 19 answered all 2s, item 20 (reversed) missing."""
    # 11 unreversed x 2 + 8 reversed x 3 = 22 + 24 = 46, mean 46/19, x 20 = 920/19
    values = with_answer([2] * 20, 20, NA)
    assert run("ucla20", values).total == 920 / 19


# --------------------------------------------------------------------------- UCLA-3

def test_ucla3_minimum_maximum_and_uniform() -> None:
    """It sums three unreversed items: 3 to 9."""
    assert run("ucla3", [1, 1, 1]).total == 1 + 1 + 1
    assert run("ucla3", [2, 2, 2]).total == 2 + 2 + 2
    assert run("ucla3", [3, 3, 3]).total == 3 + 3 + 3


@pytest.mark.parametrize("item", [1, 2, 3])
def test_ucla3_has_no_reversed_item(item: int) -> None:
    """It raises the total by 2 whichever item goes from 1 to 3."""
    assert run("ucla3", with_answer([1, 1, 1], item, 3)).total == 3 + 2


@pytest.mark.parametrize(("values", "total", "lonely"), [
    ([1, 1, 1], 3, False),
    ([2, 2, 1], 5, False),   # just below the cut-off
    ([2, 2, 2], 6, True),    # the cut-off: total >= 6 is lonely
    ([3, 3, 3], 9, True),
])
def test_ucla3_lonely_label_from_six(values: list[int], total: int, lonely: bool) -> None:
    """It labels a total of 6 or more ``lonely``."""
    result = run("ucla3", values)
    assert (result.total, result.labels) == (total, {"lonely": lonely})


@pytest.mark.parametrize("item", [1, 2, 3])
def test_ucla3_needs_every_item(item: int) -> None:
    """It gives no total, and no label, when any one item is missing."""
    result = run("ucla3", with_answer([2, 2, 2], item, NA))
    assert (result.total, result.labels, result.status) == (None, {"lonely": None}, INSUFFICIENT)


# --------------------------------------------------------------------------- ULS-8

def test_uls8_minimum_and_maximum() -> None:
    """It scores 8 to 32, items 3 and 6 reversed."""
    low = [4 if item in ULS8_REVERSED else 1 for item in range(1, 9)]
    high = [1 if item in ULS8_REVERSED else 4 for item in range(1, 9)]
    assert run("uls8", low).total == 8 * 1
    assert run("uls8", high).total == 8 * 4


@pytest.mark.parametrize(("answer", "expected"), [
    (1, 6 * 1 + 2 * (5 - 1)),   # 6 + 8 = 14
    (2, 6 * 2 + 2 * (5 - 2)),   # 12 + 6 = 18
    (3, 6 * 3 + 2 * (5 - 3)),   # 18 + 4 = 22
    (4, 6 * 4 + 2 * (5 - 4)),   # 24 + 2 = 26
])
def test_uls8_uniform_answers(answer: int, expected: int) -> None:
    assert run("uls8", [answer] * 8).total == expected


@pytest.mark.parametrize("item", range(1, 9))
def test_uls8_each_item_moves_the_total_by_its_key(item: int) -> None:
    """It lowers all-2s (18) by 2 when item 3 or 6 goes to 4, raises it by 2 otherwise."""
    expected = 18 - 2 if item in ULS8_REVERSED else 18 + 2
    assert run("uls8", with_answer([2] * 8, item, 4)).total == expected


def test_uls8_prorates_one_missing_but_not_two() -> None:
    """It allows 1 of 8 missing (12.5 %) but not 2 (25 %)."""
    # item 1 missing from all-2s: 5 unreversed x 2 + 2 reversed x 3 = 16, mean 16/7, x 8
    one = run("uls8", with_answer([2] * 8, 1, NA))
    assert (one.total, one.status) == (16 * 8 / 7, OK)
    two = run("uls8", with_answer(with_answer([2] * 8, 1, NA), 2, NA))
    assert (two.total, two.status, two.missing) == (None, INSUFFICIENT, 2)


# --------------------------------------------------------------------------- MSPSS

def test_mspss_minimum_and_maximum() -> None:
    """It averages 12 items (1-7), with ``total_sum`` 12-84 and three subscale means."""
    low, high = run("mspss", [1] * 12), run("mspss", [7] * 12)
    assert (low.total, low.extra_totals, low.subscales) == (
        1, {"total_sum": 12 * 1}, {"significant_other": 1, "family": 1, "friends": 1})
    assert (high.total, high.extra_totals, high.subscales) == (
        7, {"total_sum": 12 * 7}, {"significant_other": 7, "family": 7, "friends": 7})


@pytest.mark.parametrize("answer", range(1, 8))
def test_mspss_uniform_answers(answer: int) -> None:
    """It has no reversed items: answering everything ``a`` gives mean a, sum 12a."""
    result = run("mspss", [answer] * 12)
    assert (result.total, result.extra_totals["total_sum"]) == (answer, 12 * answer)
    assert set(result.subscales.values()) == {answer}


@pytest.mark.parametrize("item", range(1, 13))
def test_mspss_each_item_counts_once_in_its_subscale(item: int) -> None:
    """It moves the total, the sum and exactly one subscale when one item goes from 4 to 7."""
    result = run("mspss", with_answer([4] * 12, item, 7))
    assert result.extra_totals["total_sum"] == 48 + 3
    assert result.total == 51 / 12 == 4.25
    for name, items in MSPSS_SUBSCALES.items():
        assert result.subscales[name] == ((4 * 3 + 7) / 4 if item in items else 4)


def test_mspss_subscales_take_the_published_items() -> None:
    """It takes items 1, 2, 5, 10 / 3, 4, 8, 11 / 6, 7, 9, 12 for the three subscales."""
    values = [1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5]
    result = run("mspss", values)
    assert result.subscales == {
        "significant_other": (1 + 2 + 5 + 3) / 4,   # items 1, 2, 5, 10 = 2.75
        "family": (3 + 4 + 1 + 4) / 4,              # items 3, 4, 8, 11 = 3.0
        "friends": (6 + 7 + 2 + 5) / 4,             # items 6, 7, 9, 12 = 5.0
    }
    assert result.extra_totals == {"total_sum": 43}
    assert result.total == 43 / 12


@pytest.mark.parametrize(("values", "total", "band"), [
    ([1] * 12, 1, "low"),
    ([3] * 11 + [2], 35 / 12, "low"),         # 2.9167: just below 3.0
    ([3] * 12, 36 / 12, "moderate"),          # 3.0 is moderate (inclusive)
    ([5] * 12, 60 / 12, "moderate"),          # 5.0 is moderate (inclusive)
    ([5] * 11 + [6], 61 / 12, "high"),        # 5.0833: just above 5.0
    ([7] * 12, 7, "high"),
])
def test_mspss_band_boundaries(values: list[int], total: float, band: str) -> None:
    """It labels below 3.0 low, 3.0 to 5.0 moderate, above 5.0 high."""
    result = run("mspss", values)
    assert (result.total, result.labels) == (total, {"band": band})


def test_mspss_total_allows_two_missing() -> None:
    """It takes the mean of the 10 answered items with 2 missing; sum = that mean x 12."""
    values = with_answer(with_answer(with_answer([4] * 12, 1, NA), 2, NA), 3, 7)
    result = run("mspss", values)
    # answered: items 3-12 = 7 + 9 x 4 = 43 over 10 items
    assert result.total == 43 / 10 == 4.3
    assert result.extra_totals == {"total_sum": 43 * 12 / 10}   # 51.6
    assert result.subscales == {"significant_other": None,          # items 1 and 2 missing
                                "family": (7 + 4 + 4 + 4) / 4,      # 4.75
                                "friends": 4}
    assert (result.labels, result.status, result.missing) == ({"band": "moderate"}, OK, 2)


def test_mspss_total_is_missing_with_three_missing() -> None:
    """It gives no total, sum or band with 3 missing; complete subscales are still scored."""
    values = [NA if item in (1, 2, 5) else 4 for item in range(1, 13)]
    result = run("mspss", values)
    assert (result.total, result.extra_totals, result.labels) == (
        None, {"total_sum": None}, {"band": None})
    assert result.subscales == {"significant_other": None, "family": 4, "friends": 4}
    assert (result.status, result.missing) == (INSUFFICIENT, 3)


@pytest.mark.parametrize(("name", "item"), [(name, min(items))
                                            for name, items in MSPSS_SUBSCALES.items()])
def test_mspss_subscales_need_every_item(name: str, item: int) -> None:
    """It gives no subscale when one of its items is missing, while the total is scored."""
    result = run("mspss", with_answer([4] * 12, item, NA))
    assert result.subscales[name] is None
    assert result.total == 4 * 11 / 11
    assert result.status == OK


def test_mspss_band_is_decided_on_the_exact_prorated_mean() -> None:
    """It calls a prorated mean of exactly 3.0 moderate and exactly 5.0 moderate."""
    assert run("mspss", [3] * 10 + [NA, NA]).labels == {"band": "moderate"}   # 30 / 10
    assert run("mspss", [5] * 10 + [NA, NA]).labels == {"band": "moderate"}   # 50 / 10
    # 9 x 3 + 2 = 29 over 10 answered = 2.9: low
    result = run("mspss", [3] * 9 + [2, NA, NA])
    assert (result.total, result.labels) == (2.9, {"band": "low"})


# --------------------------------------------------------------------------- LSNS-6

def test_lsns6_minimum_and_maximum() -> None:
    """It sums six items scored 0-5: 0 to 30, family and friends 0 to 15."""
    low, high = run("lsns6", [0] * 6), run("lsns6", [5] * 6)
    assert (low.total, low.subscales, low.labels) == (
        0, {"family": 0, "friends": 0}, {"isolated": True})
    assert (high.total, high.subscales, high.labels) == (
        6 * 5, {"family": 3 * 5, "friends": 3 * 5}, {"isolated": False})


@pytest.mark.parametrize("answer", range(0, 6))
def test_lsns6_uniform_answers(answer: int) -> None:
    result = run("lsns6", [answer] * 6)
    assert (result.total, result.subscales) == (
        6 * answer, {"family": 3 * answer, "friends": 3 * answer})


@pytest.mark.parametrize("item", range(1, 7))
def test_lsns6_each_item_counts_in_its_subscale(item: int) -> None:
    """It has no reversed items: one item from 2 to 5 adds 3 to the total and its subscale."""
    result = run("lsns6", with_answer([2] * 6, item, 5))
    assert result.total == 12 + 3
    family, friends = (6 + 3, 6) if item in LSNS6_SUBSCALES["family"] else (6, 6 + 3)
    assert result.subscales == {"family": family, "friends": friends}


@pytest.mark.parametrize(("values", "total", "isolated"), [
    ([2, 2, 2, 2, 2, 1], 11, True),    # below 12: at risk of isolation
    ([2, 2, 2, 2, 2, 2], 12, False),   # 12 is not isolated
])
def test_lsns6_isolated_below_twelve(values: list[int], total: int, isolated: bool) -> None:
    result = run("lsns6", values)
    assert (result.total, result.labels) == (total, {"isolated": isolated})


def test_lsns6_prorates_one_missing() -> None:
    """It prorates 1 of 6 missing (16.7 %): mean of the 5 answered x 6."""
    result = run("lsns6", [NA, 2, 2, 2, 2, 2])
    assert result.total == 10 * 6 / 5 == 12
    assert result.labels == {"isolated": False}
    assert result.subscales == {"family": None, "friends": 6}   # subscales need every item
    below = run("lsns6", [2, 2, 2, 2, 1, NA])
    assert below.total == 9 * 6 / 5 == 10.8
    assert below.labels == {"isolated": True}
    assert below.subscales == {"family": 6, "friends": None}


def test_lsns6_is_insufficient_with_two_missing() -> None:
    """It gives no total with 2 of 6 missing (33 %)."""
    result = run("lsns6", [NA, NA, 2, 2, 2, 2])
    assert (result.total, result.labels, result.status) == (
        None, {"isolated": None}, INSUFFICIENT)
    assert result.subscales == {"family": None, "friends": 6}


# --------------------------------------------------------------------------- SUS

def test_sus_minimum_and_maximum() -> None:
    """It scores 0 to 100: odd items answer - 1, even items 5 - answer, sum x 2.5."""
    low = [1 if item % 2 else 5 for item in range(1, 11)]     # every item scores 0
    high = [5 if item % 2 else 1 for item in range(1, 11)]    # every item scores 4
    assert run("sus", low).total == 0 * 2.5
    assert run("sus", high).total == (5 * 4 + 5 * 4) * 2.5 == 100


@pytest.mark.parametrize("answer", range(1, 6))
def test_sus_uniform_answers_always_give_fifty(answer: int) -> None:
    """It balances five positive and five negative items: 5(a - 1) + 5(5 - a) = 20, x 2.5."""
    assert run("sus", [answer] * 10).total == (5 * (answer - 1) + 5 * (5 - answer)) * 2.5 == 50


@pytest.mark.parametrize("item", range(1, 11))
def test_sus_each_item_moves_the_score_by_its_key(item: int) -> None:
    """It adds 5 (2 x 2.5) when an odd item goes from 3 to 5 and takes 5 off for an even one."""
    expected = (20 + 2) * 2.5 if item not in SUS_REVERSED else (20 - 2) * 2.5
    assert run("sus", with_answer([3] * 10, item, 5)).total == expected


def test_sus_worked_examples() -> None:
    """It matches scores worked by hand, including a half point."""
    # odd items 4 -> 3 each (15), even items 2 -> 3 each (15): 30 x 2.5
    assert run("sus", [4, 2] * 5).total == 75
    # odd: 4 + 4 + 4 + 4 + 4 = 20; even: 4 + 4 + 4 + 4 + (5 - 2) = 19; 39 x 2.5
    assert run("sus", [5, 1, 5, 1, 5, 1, 5, 1, 5, 2]).total == 97.5


@pytest.mark.parametrize("item", range(1, 11))
def test_sus_needs_every_item(item: int) -> None:
    result = run("sus", with_answer([3] * 10, item, NA))
    assert (result.total, result.status, result.missing) == (None, INSUFFICIENT, 1)


# --------------------------------------------------------------------------- acceptability

def test_acceptability_minimum_and_maximum() -> None:
    """It averages 8 items 1-5, item 6 reversed: 1 to 5."""
    low = [5 if item in ACCEPTABILITY_REVERSED else 1 for item in range(1, 9)]
    high = [1 if item in ACCEPTABILITY_REVERSED else 5 for item in range(1, 9)]
    assert (run("acceptability", low).total, run("acceptability", low).labels) == (
        1, {"acceptability": "low"})
    assert (run("acceptability", high).total, run("acceptability", high).labels) == (
        5, {"acceptability": "high"})


@pytest.mark.parametrize(("answer", "expected"), [
    (1, (7 * 1 + (6 - 1)) / 8),   # 12 / 8 = 1.5
    (2, (7 * 2 + (6 - 2)) / 8),   # 18 / 8 = 2.25
    (3, (7 * 3 + (6 - 3)) / 8),   # 24 / 8 = 3.0
    (4, (7 * 4 + (6 - 4)) / 8),   # 30 / 8 = 3.75
    (5, (7 * 5 + (6 - 5)) / 8),   # 36 / 8 = 4.5
])
def test_acceptability_uniform_answers(answer: int, expected: float) -> None:
    assert run("acceptability", [answer] * 8).total == expected


@pytest.mark.parametrize("item", range(1, 9))
def test_acceptability_each_item_moves_the_mean_by_its_key(item: int) -> None:
    """It lowers all-3s (24/8) by 2/8 when item 6 goes to 5 (6 - 5 = 1), raises it otherwise."""
    expected = (24 - 2) / 8 if item in ACCEPTABILITY_REVERSED else (24 + 2) / 8
    assert run("acceptability", with_answer([3] * 8, item, 5)).total == expected


@pytest.mark.parametrize(("values", "total", "band"), [
    (with_answer([3] * 8, 1, 2), 23 / 8, "low"),          # 2.875
    ([3] * 8, 24 / 8, "moderate"),                         # 3.0 (inclusive)
    (with_answer([4] * 8, 6, 3), (7 * 4 + 3) / 8, "moderate"),   # 31 / 8 = 3.875
    (with_answer([4] * 8, 6, 2), (7 * 4 + 4) / 8, "high"),       # 32 / 8 = 4.0 (inclusive)
])
def test_acceptability_band_boundaries(values: list[int], total: float, band: str) -> None:
    """It labels below 3.0 low, 3.0 up to (not including) 4.0 moderate, 4.0 and above high."""
    result = run("acceptability", values)
    assert (result.total, result.labels) == (total, {"acceptability": band})


def test_acceptability_allows_one_missing_but_not_two() -> None:
    """It takes the mean of the answered items with 1 of 8 missing, none with 2."""
    one = run("acceptability", with_answer([3] * 8, 1, NA))
    assert (one.total, one.labels, one.status) == (21 / 7, {"acceptability": "moderate"}, OK)
    two = run("acceptability", [NA, NA] + [3] * 6)
    assert (two.total, two.labels, two.status) == (None, {"acceptability": None}, INSUFFICIENT)


# --------------------------------------------------------------------------- rules recorded

def test_score_records_version_and_rules() -> None:
    """It carries the instrument version and both rules as text, to store with the score."""
    result = run("ucla20", [2] * 20)
    assert result.instrument == "ucla20"
    assert result.instrument_version == "1.0"
    assert ("reverse-keyed items 1, 5, 6, 9, 10, 15, 16, 19, 20: 5 - answer"
            in result.scoring_rule)
    assert "total = sum of items 1-20" in result.scoring_rule
    assert result.missing_rule == ("total: mean of answered items x 20 when at most 20% of its "
                                   "20 items (up to 4) are missing, else missing")


def test_mspss_rules_name_every_score() -> None:
    result = run("mspss", [4] * 12)
    assert "significant_other = mean of items 1, 2, 5, 10" in result.scoring_rule
    assert "total: mean of answered items when at most 2 of its 12 items" in result.missing_rule
    assert "family: every item needed" in result.missing_rule


def test_sus_rule_states_the_item_transform() -> None:
    result = run("sus", [3] * 10)
    assert "item score = answer - 1" in result.scoring_rule
    assert "reverse-keyed items 2, 4, 6, 8, 10: 5 - answer" in result.scoring_rule
    assert "x 2.5" in result.scoring_rule


def test_as_dict_has_the_cli_shape() -> None:
    result = run("mspss", [4] * 12)
    assert list(result.as_dict()) == ["instrument", "total", "total_sum", "subscales", "labels",
                                      "missing", "status"]
    assert list(run("ucla3", [1, 1, 1]).as_dict()) == ["instrument", "total", "subscales",
                                                       "labels", "missing", "status"]


# --------------------------------------------------------------------------- rejections

def ucla20() -> instruments.Instrument:
    return instruments.builtin()["ucla20"]


@pytest.mark.parametrize(("value", "message"), [
    (9, "item 7: 9 is not one of 1, 2, 3, 4"),
    (0, "item 7: 0 is not one of 1, 2, 3, 4"),
    (5, "item 7: 5 is not one of 1, 2, 3, 4"),
    (2.5, "item 7: 2.5 is not a whole number"),
    (2.0, "item 7: 2.0 is not a whole number"),
    ("2", "item 7: '2' is not a whole number"),
    (True, "item 7: True is not a whole number"),
])
def test_invalid_answers_are_rejected_naming_the_item(value: object, message: str) -> None:
    with pytest.raises(ScoringError) as caught:
        score(ucla20(), {**dict.fromkeys(range(1, 21), 2), 7: value})
    assert str(caught.value).startswith(message)
    assert caught.value.item == 7


def test_unknown_item_is_rejected() -> None:
    with pytest.raises(ScoringError, match=r"^item 21: ucla20 has no such item \(items 1 to 20\)"):
        score(ucla20(), {21: 2})
    with pytest.raises(ScoringError, match=r"^item '1': ucla20 has no such item"):
        score(ucla20(), {"1": 2})


@pytest.mark.parametrize(("count", "message"), [
    (19, "item 20: no answer given: ucla20 needs 20 answers, got 19"),
    (21, "item 21: ucla20 has only 20 items, but 21 answers were given"),
    (0, "item 1: no answer given: ucla20 needs 20 answers, got 0"),
])
def test_wrong_number_of_answers_in_list_form_is_rejected(count: int, message: str) -> None:
    with pytest.raises(ScoringError) as caught:
        answers_from_list(ucla20(), [2] * count)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("instrument_id", "value", "message"), [
    ("ucla3", 4, "item 2: 4 is not one of 1, 2, 3"),
    ("uls8", 5, "item 2: 5 is not one of 1, 2, 3, 4"),
    ("mspss", 8, "item 2: 8 is not one of 1, 2, 3, 4, 5, 6, 7"),
    ("mspss", 0, "item 2: 0 is not one of 1, 2, 3, 4, 5, 6, 7"),
    ("lsns6", 6, "item 2: 6 is not one of 0, 1, 2, 3, 4, 5"),
    ("lsns6", -1, "item 2: -1 is not one of 0, 1, 2, 3, 4, 5"),
    ("sus", 6, "item 2: 6 is not one of 1, 2, 3, 4, 5"),
    ("sus", 0, "item 2: 0 is not one of 1, 2, 3, 4, 5"),
    ("acceptability", 6, "item 2: 6 is not one of 1, 2, 3, 4, 5"),
])
def test_out_of_range_answers_are_rejected_for_every_instrument(
        instrument_id: str, value: int, message: str) -> None:
    instrument = instruments.builtin()[instrument_id]
    values = [instrument.min_value] * len(instrument.items)
    with pytest.raises(ScoringError, match=f"^{message}$"):
        run(instrument_id, with_answer(values, 2, value))


def test_absent_items_count_as_missing_in_dict_form() -> None:
    """It treats an item left out of the mapping like an item answered ``None``."""
    assert check_answers(instruments.builtin()["ucla3"], {1: 2, 3: 1}) == {1: 2, 2: None, 3: 1}
