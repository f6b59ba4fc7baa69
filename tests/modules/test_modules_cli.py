"""``flask modules validate`` and ``flask modules sync``."""

from __future__ import annotations

import shutil
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.extensions import db
from modules.library import DEFAULT_CONTENT_ROOT, load_library
from modules.models import Module, Step

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_shipped_library_passes_validation(runner: FlaskCliRunner) -> None:
    """It validates modules/content with no problems, and ships at least 6 modules."""
    result = runner.invoke(args=["modules", "validate"])

    assert result.exit_code == 0, result.output
    assert result.output.endswith(": no problems\n")
    library = load_library(DEFAULT_CONTENT_ROOT)
    assert len(library.modules) >= 6
    assert all(len(module.steps) >= 4 for module in library.modules)


def test_validate_prints_each_problem_as_file_line_message(runner: FlaskCliRunner) -> None:
    broken = FIXTURES / "broken"

    result = runner.invoke(args=["modules", "validate", str(broken)])

    assert result.exit_code == 1
    lines = result.output.splitlines()
    expected = [str(p) for p in load_library(broken, display=str(broken)).problems]
    assert lines[:-1] == expected
    assert f"{broken}/steps/04-unknown-kind.md:3: unknown step kind 'lesson'" in result.output
    assert lines[-1] == f"{len(expected)} problems (10 modules, 20 steps)"


def test_validate_says_no_problems_with_the_counts(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["modules", "validate", str(FIXTURES / "good")])

    assert result.exit_code == 0
    assert result.output == "2 modules, 9 steps: no problems\n"


def test_validate_rejects_a_folder_that_does_not_exist(runner: FlaskCliRunner,
                                                       tmp_path: Path) -> None:
    result = runner.invoke(args=["modules", "validate", str(tmp_path / "nowhere")])

    assert result.exit_code == 2


def test_sync_loads_then_reports_no_changes(app: Flask, runner: FlaskCliRunner,
                                            tmp_path: Path) -> None:
    content = Path(shutil.copytree(FIXTURES / "good", tmp_path / "content"))

    first = runner.invoke(args=["modules", "sync", str(content)])
    second = runner.invoke(args=["modules", "sync", str(content)])

    assert first.exit_code == 0, first.output
    assert first.output.startswith(
        "Synced 2 modules, 9 steps: pathways 2 added, 0 updated, 0 deactivated; "
        "modules 2 added, 0 updated, 0 deactivated; steps 9 added, 0 updated, 0 deactivated\n")
    assert second.exit_code == 0
    assert second.output.startswith("Synced 2 modules, 9 steps: no changes\n")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Step)) == 9
        assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "modules.synced")) == 1


def test_sync_refuses_broken_content(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["modules", "sync", str(FIXTURES / "broken")])

    assert result.exit_code == 1
    assert "steps/04-unknown-kind.md:3: unknown step kind 'lesson'" in result.output
    assert result.output.endswith("Nothing was synced: fix the problems above first.\n")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Module)) == 0
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0
