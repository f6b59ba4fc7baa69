"""Instrument definitions: the built-ins say what the publications say, and the validator names
the file and line of every problem in a broken definition."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from outcomes import instruments
from outcomes.instruments import InstrumentError, MissingRule, UnknownInstrument

FIXTURES = Path(__file__).parent / "fixtures"
BROKEN = FIXTURES / "broken_instruments"
STUDY = FIXTURES / "study_instruments"
VALID = STUDY / "wellbeing4.yaml"


def builtin(instrument_id: str) -> instruments.Instrument:
    return instruments.builtin()[instrument_id]


def subscale_items(instrument: instruments.Instrument) -> dict[str, tuple[int, ...]]:
    return {rule.name: rule.items for rule in instrument.subscales}


# --------------------------------------------------------------------------- the built-ins

def test_builtin_folder_has_no_problems() -> None:
    found, problems = instruments.check_path(instruments.BUILTIN_DIR)
    assert problems == []
    assert set(found) == {"ucla20", "ucla3", "uls8", "mspss", "lsns6", "sus", "acceptability"}


@pytest.mark.parametrize("instrument_id", sorted(instruments.builtin()))
def test_every_builtin_has_its_descriptive_fields(instrument_id: str) -> None:
    """It names, versions, cites and states the licence and instructions of each instrument."""
    instrument = builtin(instrument_id)
    assert instrument.source.name == f"{instrument_id}.yaml"
    for text in (instrument.name, instrument.short_name, instrument.version, instrument.citation,
                 instrument.licence, instrument.instructions):
        assert text.strip()
    assert all(item.text.strip() for item in instrument.items)


def test_ucla20_matches_russell_1996() -> None:
    ucla = builtin("ucla20")
    assert [(o.value, o.label) for o in ucla.options] == [
        (1, "Never"), (2, "Rarely"), (3, "Sometimes"), (4, "Always")]
    assert ucla.item_numbers == tuple(range(1, 21))
    assert ucla.reverse_items == (1, 5, 6, 9, 10, 15, 16, 19, 20)
    assert ucla.items[0].text == ('How often do you feel that you are "in tune" with the people '
                                  'around you?')
    assert ucla.items[19].text == "How often do you feel that there are people you can turn to?"
    assert (ucla.total.aggregation, ucla.total.missing) == ("sum",
                                                            MissingRule("prorate", Fraction(1, 5)))
    assert ucla.score_range(ucla.total) == (20, 80)
    assert "Russell" in ucla.citation and "1996" in ucla.citation
    assert "commercial" in ucla.licence


def test_ucla3_matches_hughes_2004() -> None:
    ucla3 = builtin("ucla3")
    assert [(o.value, o.label) for o in ucla3.options] == [
        (1, "Hardly ever"), (2, "Some of the time"), (3, "Often")]
    assert [item.text for item in ucla3.items] == [
        "How often do you feel that you lack companionship?",
        "How often do you feel left out?",
        "How often do you feel isolated from others?"]
    assert ucla3.reverse_items == ()
    assert ucla3.total.missing == MissingRule("require_all")
    assert ucla3.score_range(ucla3.total) == (3, 9)


def test_uls8_matches_hays_and_dimatteo_1987() -> None:
    uls8 = builtin("uls8")
    assert uls8.values == (1, 2, 3, 4)
    assert len(uls8.items) == 8
    assert uls8.reverse_items == (3, 6)
    assert uls8.items[2].text == "I am an outgoing person."
    assert uls8.items[5].text == "I can find companionship when I want it."
    assert uls8.score_range(uls8.total) == (8, 32)


def test_mspss_matches_zimet_1988() -> None:
    mspss = builtin("mspss")
    assert [o.label for o in mspss.options] == [
        "Very strongly disagree", "Strongly disagree", "Mildly disagree", "Neutral",
        "Mildly agree", "Strongly agree", "Very strongly agree"]
    assert mspss.values == (1, 2, 3, 4, 5, 6, 7)
    assert mspss.reverse_items == ()
    assert subscale_items(mspss) == {"significant_other": (1, 2, 5, 10),
                                     "family": (3, 4, 8, 11), "friends": (6, 7, 9, 12)}
    assert all(rule.aggregation == "mean" and rule.missing == MissingRule("require_all")
               for rule in mspss.subscales)
    assert (mspss.total.aggregation, mspss.total.missing) == ("mean",
                                                              MissingRule("max_missing", 2))
    total_sum = mspss.rule("total_sum")
    assert (total_sum.aggregation, mspss.score_range(total_sum)) == ("sum", (12, 84))
    assert "commercial" in mspss.licence


def test_lsns6_matches_lubben_2006() -> None:
    lsns = builtin("lsns6")
    assert [(o.value, o.label) for o in lsns.options] == [
        (0, "None"), (1, "One"), (2, "Two"), (3, "Three or four"), (4, "Five through eight"),
        (5, "Nine or more")]
    assert subscale_items(lsns) == {"family": (1, 2, 3), "friends": (4, 5, 6)}
    assert all(rule.missing == MissingRule("require_all") for rule in lsns.subscales)
    assert [lsns.score_range(rule) for rule in lsns.rules] == [(0, 30), (0, 15), (0, 15)]
    assert lsns.items[0].text == "How many relatives do you see or hear from at least once a month?"


def test_sus_is_brookes_scoring_as_data() -> None:
    """It reverses the even items and shifts every item by -1, then sums x 2.5: no SUS code."""
    sus = builtin("sus")
    assert sus.values == (1, 2, 3, 4, 5)
    assert sus.reverse_items == (2, 4, 6, 8, 10)
    assert sus.item_offset == -1
    assert (sus.total.aggregation, sus.total.multiplier) == ("sum", 2.5)
    assert sus.total.missing == MissingRule("require_all")
    assert sus.score_range(sus.total) == (0, 100)


def test_acceptability_is_a_study_defined_example() -> None:
    acceptability = builtin("acceptability")
    assert len(acceptability.items) == 8
    assert acceptability.reverse_items == (6,)
    assert acceptability.total.aggregation == "mean"
    assert acceptability.score_range(acceptability.total) == (1, 5)
    assert [band.value for band in acceptability.labels[0].bands] == ["low", "moderate", "high"]


# --------------------------------------------------------------------------- the validator

BROKEN_CASES = {
    "bad_missing_rule.yaml": [
        (24, "scoring.total.missing: prorate_max_missing_fraction must be a number from 0 up to "
             "(not including) 1"),
        (26, "scoring.subscales.first_half.missing: unknown rule 'allow': missing must be "
             "require_all, {prorate_max_missing_fraction: F} or {max_missing: N}")],
    "bands_gap.yaml": [
        (32, "gap between bands 'low' and 'high': no band holds scores between 2 and 3")],
    "bands_gap_at_point.yaml": [
        (32, "gap between bands 'low' and 'high': 2.5 is in neither (use 'to' with 'above', "
             "or 'below' with 'from')")],
    "bands_not_covering.yaml": [
        (31, "band 'low' does not start at the lowest possible score, 1")],
    "bands_overlap.yaml": [
        (32, "bands 'low' and 'high' overlap: both include 2.5 (use 'to' with 'above', or "
             "'below' with 'from')")],
    "duplicate_item.yaml": [(17, "item number 2 is used twice (first at line 16)")],
    "duplicate_key.yaml": [(4, "duplicate key 'name' (first at line 3)")],
    "empty.yaml": [(None, "the file is empty")],
    "id_mismatch.yaml": [
        (2, "id 'other_name' does not match the file name id_mismatch.yaml (name the file "
            "other_name.yaml)")],
    "items_out_of_sequence.yaml": [
        (18, "item number 5 is out of sequence: expected 4 (number items 1, 2, 3 ... in order)")],
    "label_unknown_score.yaml": [
        (29, "label 'band': score 'totl' is not a score of this instrument (total, first_half)")],
    "missing_key.yaml": [(2, "missing required key 'citation'")],
    "options_duplicate.yaml": [(12, "option value 2 is used twice (first at line 11)")],
    "options_gap.yaml": [(9, "option values are not contiguous: 3 missing between 2 and 4")],
    "reverse_formula_missing.yaml": [
        (19, "item 2 is reverse-keyed: state scoring.reverse_formula: min+max-answer")],
    "reverse_formula_unknown.yaml": [
        (20, "unknown reverse_formula '5-answer': the engine reverses as min+max-answer")],
    "reverse_missing.yaml": [(16, "items #2: missing required key 'reverse'")],
    "reverse_not_boolean.yaml": [(16, "reverse must be true or false, not 'yes'")],
    "syntax_error.yaml": [
        (16, "not valid YAML: expected ',' or '}', but got '-' (while parsing a flow mapping "
             "that starts at line 15)")],
    "unknown_aggregation.yaml": [
        (22, "scoring.total: unknown aggregation 'median': use sum or mean")],
    "unknown_key.yaml": [
        (16, "items #2: missing required key 'reverse'"),
        (16, "items #2: unknown key 'revers' (did you mean 'reverse'?)")],
    "unknown_subscale_item.yaml": [
        (26, "scoring.subscales.first_half: item 9 is not an item of this instrument")],
}


def expected_lines(name: str) -> list[str]:
    path = BROKEN / name
    return [f"{path}:{line}: {message}" if line else f"{path}: {message}"
            for line, message in BROKEN_CASES[name]]


@pytest.mark.parametrize("name", sorted(BROKEN_CASES))
def test_validator_reports_each_problem_with_file_and_line(name: str) -> None:
    """It reports exactly the broken thing, at its line, and builds no instrument."""
    instrument, problems = instruments.check_file(BROKEN / name)
    assert instrument is None
    assert [str(problem) for problem in problems] == expected_lines(name)


def test_every_broken_fixture_is_covered() -> None:
    assert {path.name for path in BROKEN.glob("*.yaml")} == set(BROKEN_CASES)


def test_validator_checks_a_whole_folder() -> None:
    """It lists the problems of every file in the folder, file by file, and loads none."""
    found, problems = instruments.check_path(BROKEN)
    assert found == {}
    assert [str(problem) for problem in problems] == [
        line for name in sorted(BROKEN_CASES) for line in expected_lines(name)]


def test_load_path_raises_with_every_problem() -> None:
    with pytest.raises(InstrumentError) as caught:
        instruments.load_path(BROKEN)
    assert len(caught.value.problems) == sum(len(lines) for lines in BROKEN_CASES.values())


def test_valid_study_definition_loads() -> None:
    found = instruments.load_path(STUDY)
    assert list(found) == ["wellbeing4"]
    assert found["wellbeing4"].reverse_items == (2,)


def test_empty_folder_is_a_problem(tmp_path: Path) -> None:
    _, problems = instruments.check_path(tmp_path)
    assert [str(problem) for problem in problems] == [
        f"{tmp_path}: no instrument definitions (*.yaml) found"]


def variant(tmp_path: Path, name: str, changes: dict[int, str]) -> Path:
    """A copy of the valid fixture named ``name``, with some of its lines (1-based) replaced."""
    lines = VALID.read_text(encoding="utf-8").splitlines()
    lines[1] = f"id: {name}"
    for number, text in changes.items():
        lines[number - 1] = text
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("changes", "line", "message"), [
    ({9: "options: 4", **dict.fromkeys(range(10, 14), "#")}, 9,
     "options: expected a list of at least 2 entries"),
    ({10: "  - {value: 1.5, label: Never}"}, 10, "option value 1.5 is not a whole number"),
    ({18: '  - {number: 0, reverse: false, text: "Fourth item."}'}, 18,
     "item number 0 must be a whole number from 1"),
    ({15: '  - {number: 1, reverse: false, text: ""}'}, 15,
     "items #1.text: expected non-empty text"),
    ({20: "  reverse_formula: min+max-answer\n  item_offset: 0.5"}, 21,
     "item_offset 0.5 must be a whole number"),
    ({23: "    items: none"}, 23, "scoring.total.items: items must be 'all' or a list of item "
                                   "numbers"),
    ({23: "    items: [1, 2, 2]"}, 23, "scoring.total: item 2 is listed twice"),
    ({24: "    missing: {max_missing: 4}"}, 24,
     "scoring.total.missing: max_missing must be a whole number from 0 to 3"),
    ({24: "    missing: some"}, 24, "scoring.total.missing: missing must be require_all, "
                                    "{prorate_max_missing_fraction: F} or {max_missing: N}"),
    ({24: "    missing: require_all\n    multiplier: -2"}, 25,
     "scoring.total: multiplier must be a positive number"),
    ({26: "    status: {aggregation: sum, items: [1, 2], missing: require_all}"}, 26,
     "score name 'status' is already used"),
    ({31: "      - {value: 3, below: 2.5}"}, 31, "band value 3 must be text or true/false"),
    ({31: "      - {value: low, below: 2.5, to: 2}"}, 31,
     "a band takes 'to' (inclusive) or 'below' (exclusive), not both"),
    ({31: "      - {value: low, below: 2.5}\n      - {value: none, from: 2.5, below: 2.5}"}, 32,
     "band 'none' is empty: its lower limit is not below its upper limit"),
    ({32: "      - {value: high, from: 2.5, to: 3}"}, 32,
     "band 'high' does not reach the highest possible score, 4"),
    ({32: "      - {value: high, from: x}"}, 32, "'from' must be a number"),
])
def test_validator_reports_other_mistakes(tmp_path: Path, changes: dict[int, str], line: int,
                                          message: str) -> None:
    path = variant(tmp_path, "mistake", changes)
    instrument, problems = instruments.check_file(path)
    assert instrument is None
    assert [str(problem) for problem in problems] == [f"{path}:{line}: {message}"]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "listed.yaml"
    path.write_text("- id: listed\n", encoding="utf-8")
    assert [str(p) for p in instruments.check_file(path)[1]] == [
        f"{path}:1: expected a mapping of keys"]


# --------------------------------------------------------------------------- lookup

def test_get_finds_builtin_and_study_definitions() -> None:
    assert instruments.get("ucla20").id == "ucla20"
    assert instruments.get("wellbeing4", extra=STUDY).name == (
        "Four-item wellbeing check (test fixture)")


def test_get_names_the_known_ids_for_an_unknown_one() -> None:
    with pytest.raises(UnknownInstrument, match="unknown instrument 'ucla21': choose one of "
                                                "acceptability, lsns6, mspss, sus, ucla20, "
                                                "ucla3, uls8"):
        instruments.get("ucla21")


def test_study_definition_cannot_replace_a_builtin(tmp_path: Path) -> None:
    """It refuses a study file reusing a built-in id, so ``ucla20`` always means the same."""
    variant(tmp_path, "ucla20", {})
    with pytest.raises(InstrumentError, match="id 'ucla20' is a built-in instrument"):
        instruments.get("ucla20", extra=tmp_path)
