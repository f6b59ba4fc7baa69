"""``flask outcomes score`` and ``flask outcomes instruments validate``, through the Flask CLI
runner: exact JSON for every built-in instrument, exit code 2 naming the item for bad input, and
``file:line: message`` with exit code 1 for broken definitions.

Expected values are worked out by hand (the arithmetic is in the comments). ``NA`` is a missing
answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from outcomes.cli import outcomes_cli
from tests.outcomes.test_instruments import BROKEN, BROKEN_CASES, STUDY, expected_lines


@pytest.fixture
def cli(app: Flask) -> FlaskCliRunner:
    """The CLI runner with ``flask outcomes``, added here while core does not register it."""
    if "outcomes" not in app.cli.commands:
        app.cli.add_command(outcomes_cli)
    return app.test_cli_runner()


def invoke(cli: FlaskCliRunner, *args: str) -> Result:
    return cli.invoke(args=["outcomes", *args])


def numbers_are_ints_when_whole(value: Any) -> bool:
    if isinstance(value, dict):
        return all(numbers_are_ints_when_whole(item) for item in value.values())
    if isinstance(value, float):
        return not value.is_integer()
    return True


def score(cli: FlaskCliRunner, instrument: str, answers: list[str]) -> dict[str, Any]:
    """Run the command and check it printed exactly one JSON object and nothing else."""
    result = invoke(cli, "score", instrument, *answers)
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
    printed = json.loads(result.stdout)
    assert isinstance(printed, dict)
    assert numbers_are_ints_when_whole(printed)
    return printed


def rejected(cli: FlaskCliRunner, *args: str) -> str:
    """Run the command, check it failed with exit code 2 and printed nothing on stdout."""
    result = invoke(cli, "score", *args)
    assert (result.exit_code, result.stdout) == (2, "")
    return result.stderr


def ok(instrument: str, total: float | None, subscales: dict[str, Any] | None = None,
       labels: dict[str, Any] | None = None, missing: int = 0, **extra: Any) -> dict[str, Any]:
    """The expected JSON object."""
    return {"instrument": instrument, "total": total, **extra, "subscales": subscales or {},
            "labels": labels or {}, "missing": missing,
            "status": "ok" if total is not None else "insufficient"}


UCLA20_REVERSED = {1, 5, 6, 9, 10, 15, 16, 19, 20}

CASES = {
    # UCLA-LS v3: 20 items 1-4, reversed items 1, 5, 6, 9, 10, 15, 16, 19, 20 (5 - answer)
    "ucla20 minimum": ("ucla20", ["4" if i in UCLA20_REVERSED else "1" for i in range(1, 21)],
                       ok("ucla20", 20)),
    "ucla20 maximum": ("ucla20", ["1" if i in UCLA20_REVERSED else "4" for i in range(1, 21)],
                       ok("ucla20", 80)),
    "ucla20 all 1s": ("ucla20", ["1"] * 20, ok("ucla20", 11 * 1 + 9 * 4)),         # 47
    "ucla20 all 4s": ("ucla20", ["4"] * 20, ok("ucla20", 11 * 4 + 9 * 1)),         # 53
    "ucla20 reversed item 1 at 4": ("ucla20", ["4"] + ["2"] * 19, ok("ucla20", 49 - 2)),
    "ucla20 item 2 at 4": ("ucla20", ["2", "4"] + ["2"] * 18, ok("ucla20", 49 + 2)),
    # items 2, 3, 4, 7 missing from all 2s: (7 x 2 + 9 x 3) = 41 over 16, x 20
    "ucla20 4 missing": ("ucla20", ["2", "NA", "NA", "NA", "2", "2", "NA"] + ["2"] * 13,
                         ok("ucla20", 41 * 20 / 16, missing=4)),                   # 51.25
    "ucla20 5 missing": ("ucla20", ["2", "NA", "NA", "NA", "2", "2", "NA", "NA"] + ["2"] * 12,
                         ok("ucla20", None, missing=5)),
    # UCLA-3: 3 items 1-3, lonely when total >= 6
    "ucla3 minimum": ("ucla3", ["1", "1", "1"], ok("ucla3", 3, labels={"lonely": False})),
    "ucla3 maximum": ("ucla3", ["3", "3", "3"], ok("ucla3", 9, labels={"lonely": True})),
    "ucla3 total 5": ("ucla3", ["2", "2", "1"], ok("ucla3", 5, labels={"lonely": False})),
    "ucla3 total 6": ("ucla3", ["2", "2", "2"], ok("ucla3", 6, labels={"lonely": True})),
    "ucla3 1 missing": ("ucla3", ["2", "NA", "2"],
                        ok("ucla3", None, labels={"lonely": None}, missing=1)),
    # ULS-8: 8 items 1-4, items 3 and 6 reversed
    "uls8 minimum": ("uls8", ["1", "1", "4", "1", "1", "4", "1", "1"], ok("uls8", 8)),
    "uls8 maximum": ("uls8", ["4", "4", "1", "4", "4", "1", "4", "4"], ok("uls8", 32)),
    "uls8 all 2s": ("uls8", ["2"] * 8, ok("uls8", 6 * 2 + 2 * 3)),                 # 18
    "uls8 reversed item 3 at 4": ("uls8", ["2", "2", "4"] + ["2"] * 5, ok("uls8", 18 - 2)),
    # item 1 missing: 5 x 2 + 2 x 3 = 16 over 7, x 8
    "uls8 1 missing": ("uls8", ["NA"] + ["2"] * 7, ok("uls8", 16 * 8 / 7, missing=1)),
    "uls8 2 missing": ("uls8", ["NA", "NA"] + ["2"] * 6, ok("uls8", None, missing=2)),
    # MSPSS: 12 items 1-7, mean; subscales SO 1, 2, 5, 10 / family 3, 4, 8, 11 / friends 6, 7,
    # 9, 12; band low < 3.0 <= moderate <= 5.0 < high
    "mspss minimum": ("mspss", ["1"] * 12, ok(
        "mspss", 1, {"significant_other": 1, "family": 1, "friends": 1}, {"band": "low"},
        total_sum=12)),
    "mspss maximum": ("mspss", ["7"] * 12, ok(
        "mspss", 7, {"significant_other": 7, "family": 7, "friends": 7}, {"band": "high"},
        total_sum=84)),
    "mspss 2.9167": ("mspss", ["3"] * 11 + ["2"], ok(
        "mspss", 35 / 12, {"significant_other": 3, "family": 3, "friends": (3 + 3 + 3 + 2) / 4},
        {"band": "low"}, total_sum=35)),
    "mspss 3.0": ("mspss", ["3"] * 12, ok(
        "mspss", 3, {"significant_other": 3, "family": 3, "friends": 3}, {"band": "moderate"},
        total_sum=36)),
    "mspss 5.0": ("mspss", ["5"] * 12, ok(
        "mspss", 5, {"significant_other": 5, "family": 5, "friends": 5}, {"band": "moderate"},
        total_sum=60)),
    "mspss 5.0833": ("mspss", ["5"] * 11 + ["6"], ok(
        "mspss", 61 / 12, {"significant_other": 5, "family": 5, "friends": (5 + 5 + 5 + 6) / 4},
        {"band": "high"}, total_sum=61)),
    "mspss subscales": ("mspss", ["1", "2", "3", "4", "5", "6", "7", "1", "2", "3", "4", "5"],
                        ok("mspss", 43 / 12, {"significant_other": (1 + 2 + 5 + 3) / 4,
                                              "family": (3 + 4 + 1 + 4) / 4,
                                              "friends": (6 + 7 + 2 + 5) / 4},
                           {"band": "moderate"}, total_sum=43)),
    # items 11 and 12 missing: mean of 10 answered 4s; total_sum = 4 x 12
    "mspss 2 missing": ("mspss", ["4"] * 10 + ["NA", "NA"], ok(
        "mspss", 4, {"significant_other": 4, "family": None, "friends": None},
        {"band": "moderate"}, missing=2, total_sum=48)),
    "mspss 3 missing": ("mspss", ["4"] * 9 + ["NA"] * 3, ok(
        "mspss", None, {"significant_other": None, "family": None, "friends": None},
        {"band": None}, missing=3, total_sum=None)),
    # LSNS-6: 6 items 0-5, family 1-3, friends 4-6, isolated when total < 12
    "lsns6 minimum": ("lsns6", ["0"] * 6, ok("lsns6", 0, {"family": 0, "friends": 0},
                                             {"isolated": True})),
    "lsns6 maximum": ("lsns6", ["5"] * 6, ok("lsns6", 30, {"family": 15, "friends": 15},
                                             {"isolated": False})),
    "lsns6 total 11": ("lsns6", ["2", "2", "2", "2", "2", "1"],
                       ok("lsns6", 11, {"family": 6, "friends": 5}, {"isolated": True})),
    "lsns6 total 12": ("lsns6", ["2"] * 6,
                       ok("lsns6", 12, {"family": 6, "friends": 6}, {"isolated": False})),
    # item 1 missing: 10 over 5 answered, x 6
    "lsns6 1 missing": ("lsns6", ["NA"] + ["2"] * 5, ok(
        "lsns6", 10 * 6 / 5, {"family": None, "friends": 6}, {"isolated": False}, missing=1)),
    "lsns6 2 missing": ("lsns6", ["NA", "NA"] + ["2"] * 4, ok(
        "lsns6", None, {"family": None, "friends": 6}, {"isolated": None}, missing=2)),
    # SUS: odd items answer - 1, even items 5 - answer, sum x 2.5
    "sus minimum": ("sus", ["1", "5"] * 5, ok("sus", 0)),
    "sus maximum": ("sus", ["5", "1"] * 5, ok("sus", 40 * 2.5)),
    "sus all 3s": ("sus", ["3"] * 10, ok("sus", (5 * 2 + 5 * 2) * 2.5)),           # 50
    "sus item 2 at 5": ("sus", ["3", "5"] + ["3"] * 8, ok("sus", (20 - 2) * 2.5)),  # 45
    "sus 97.5": ("sus", ["5", "1", "5", "1", "5", "1", "5", "1", "5", "2"],
                 ok("sus", (20 + 19) * 2.5)),
    "sus 1 missing": ("sus", ["3"] * 9 + ["NA"], ok("sus", None, missing=1)),
    # acceptability: 8 items 1-5, item 6 reversed (6 - answer), mean; low < 3 <= moderate < 4
    "acceptability 2.875": ("acceptability", ["2"] + ["3"] * 7,
                            ok("acceptability", 23 / 8, labels={"acceptability": "low"})),
    "acceptability 3.0": ("acceptability", ["3"] * 8,
                          ok("acceptability", 3, labels={"acceptability": "moderate"})),
    "acceptability 3.875": ("acceptability", ["4"] * 5 + ["3"] + ["4"] * 2,
                            ok("acceptability", 31 / 8, labels={"acceptability": "moderate"})),
    "acceptability 4.0": ("acceptability", ["4"] * 5 + ["2"] + ["4"] * 2,
                          ok("acceptability", 4, labels={"acceptability": "high"})),
    "acceptability 1 missing": ("acceptability", ["NA"] + ["3"] * 7, ok(
        "acceptability", 21 / 7, labels={"acceptability": "moderate"}, missing=1)),
    "acceptability 2 missing": ("acceptability", ["NA", "NA"] + ["3"] * 6, ok(
        "acceptability", None, labels={"acceptability": None}, missing=2)),
}


@pytest.mark.parametrize("case", CASES)
def test_score_prints_the_exact_json_object(cli: FlaskCliRunner, case: str) -> None:
    instrument, answers, expected = CASES[case]
    printed = score(cli, instrument, answers)
    assert printed == expected
    assert list(printed) == list(expected)   # the keys in the documented order


def test_score_prints_whole_numbers_as_integers(cli: FlaskCliRunner) -> None:
    result = invoke(cli, "score", "mspss", *["3"] * 12)
    assert result.stdout == (
        '{"instrument": "mspss", "total": 3, "total_sum": 36, "subscales": '
        '{"significant_other": 3, "family": 3, "friends": 3}, "labels": {"band": "moderate"}, '
        '"missing": 0, "status": "ok"}\n')


def test_score_prints_prorated_totals_unrounded(cli: FlaskCliRunner) -> None:
    """It prints 920/19 in full: 19 answered 2s, item 20 (reversed) missing: (22 + 24) x 20/19."""
    printed = score(cli, "ucla20", ["2"] * 19 + ["NA"])
    assert printed["total"] == 46 * 20 / 19
    assert '"total": 48.421052631578945' in invoke(cli, "score", "ucla20",
                                                   *["2"] * 19, "NA").stdout


def test_score_accepts_na_in_any_case(cli: FlaskCliRunner) -> None:
    assert score(cli, "ucla3", ["na", "2", "2"])["missing"] == 1


def test_score_uses_study_definitions(cli: FlaskCliRunner) -> None:
    """It scores a study's own instrument: item 2 reversed (1 + 4 - 1 = 4), mean of 4 items."""
    result = invoke(cli, "score", "--definitions", str(STUDY), "wellbeing4", "4", "1", "4", "4")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == ok("wellbeing4", 4, {"first_half": 4 + 4},
                                           {"band": "high"})


def test_score_refuses_a_study_definition_reusing_a_builtin_id(cli: FlaskCliRunner,
                                                                tmp_path: Path) -> None:
    (tmp_path / "ucla3.yaml").write_text(
        (STUDY / "wellbeing4.yaml").read_text(encoding="utf-8").replace(
            "id: wellbeing4", "id: ucla3"), encoding="utf-8")
    assert "id 'ucla3' is a built-in instrument" in rejected(
        cli, "--definitions", str(tmp_path), "ucla3", "1", "1", "1")


@pytest.mark.parametrize(("args", "message"), [
    (["ucla3", "1", "9", "2"], "item 2: 9 is not one of 1, 2, 3"),
    (["ucla3", "0", "1", "1"], "item 1: 0 is not one of 1, 2, 3"),
    (["ucla20", *["2"] * 6, "5", *["2"] * 13], "item 7: 5 is not one of 1, 2, 3, 4"),
    (["mspss", *["4"] * 11, "8"], "item 12: 8 is not one of 1, 2, 3, 4, 5, 6, 7"),
    (["lsns6", "-1", "2", "2", "2", "2", "2"], "item 1: -1 is not one of 0, 1, 2, 3, 4, 5"),
    (["lsns6", "2", "2", "2", "2", "2", "6"], "item 6: 6 is not one of 0, 1, 2, 3, 4, 5"),
    (["sus", *["3"] * 9, "6"], "item 10: 6 is not one of 1, 2, 3, 4, 5"),
    (["uls8", "2", "2", "2.5", "2", "2", "2", "2", "2"],
     "item 3: '2.5' is not a whole number; answer one of 1, 2, 3, 4 or NA"),
    (["ucla3", "1", "x", "1"], "item 2: 'x' is not a whole number; answer one of 1, 2, 3 or NA"),
    (["ucla3", "1", "", "1"], "item 2: '' is not a whole number"),
    (["acceptability", *["3"] * 7, "N/A"], "item 8: 'N/A' is not a whole number"),
])
def test_score_rejects_invalid_answers_naming_the_item(cli: FlaskCliRunner, args: list[str],
                                                       message: str) -> None:
    assert message in rejected(cli, *args)


@pytest.mark.parametrize(("args", "message"), [
    (["ucla3", "1", "1"], "item 3: no answer given: ucla3 needs 3 answers, got 2 (write NA for "
                          "a missing answer)"),
    (["ucla3"], "item 1: no answer given: ucla3 needs 3 answers, got 0"),
    (["ucla3", "1", "1", "1", "1"], "item 4: ucla3 has only 3 items, but 4 answers were given"),
    (["ucla20", *["2"] * 19], "item 20: no answer given: ucla20 needs 20 answers, got 19"),
    (["mspss", *["4"] * 13], "item 13: mspss has only 12 items, but 13 answers were given"),
])
def test_score_rejects_the_wrong_number_of_answers(cli: FlaskCliRunner, args: list[str],
                                                   message: str) -> None:
    assert message in rejected(cli, *args)


def test_score_rejects_an_unknown_instrument(cli: FlaskCliRunner) -> None:
    assert ("unknown instrument 'ucla': choose one of acceptability, lsns6, mspss, sus, ucla20, "
            "ucla3, uls8") in rejected(cli, "ucla", "1", "2", "3")


def test_score_without_an_instrument_is_a_usage_error(cli: FlaskCliRunner) -> None:
    result = invoke(cli, "score")
    assert result.exit_code == 2
    assert "Missing argument 'INSTRUMENT'" in result.stderr


# --------------------------------------------------------------------------- validate

def test_validate_checks_the_builtin_definitions(cli: FlaskCliRunner) -> None:
    result = invoke(cli, "instruments", "validate")
    assert (result.exit_code, result.stdout) == (
        0, "7 instrument definition(s) checked: no problems.\n")


def test_validate_accepts_a_single_good_file(cli: FlaskCliRunner) -> None:
    result = invoke(cli, "instruments", "validate", str(STUDY / "wellbeing4.yaml"))
    assert (result.exit_code, result.stdout) == (
        0, "1 instrument definition(s) checked: no problems.\n")


def test_validate_prints_file_and_line_of_every_problem(cli: FlaskCliRunner) -> None:
    result = invoke(cli, "instruments", "validate", str(BROKEN))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        line for name in sorted(BROKEN_CASES) for line in expected_lines(name)]
    count = sum(len(problems) for problems in BROKEN_CASES.values())
    assert result.stderr == f"{count} problem(s) found.\n"


def test_validate_one_broken_file(cli: FlaskCliRunner) -> None:
    result = invoke(cli, "instruments", "validate", str(BROKEN / "bands_overlap.yaml"))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == expected_lines("bands_overlap.yaml")


def test_validate_a_missing_path_is_a_usage_error(cli: FlaskCliRunner, tmp_path: Path) -> None:
    result = invoke(cli, "instruments", "validate", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
