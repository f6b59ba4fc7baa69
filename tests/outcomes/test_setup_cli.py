"""``flask outcomes study export FILE`` and ``flask outcomes study import FILE [--dry-run]``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from core.audit import AuditEntry
from core.extensions import db
from outcomes.models import Arm, Study
from outcomes.randomisation import open_enrolment
from tests.outcomes.trial import make_trial, researcher


@pytest.fixture
def trial(app) -> None:
    with app.app_context():
        make_trial()


def ratios(app) -> list[int]:
    with app.app_context():
        return [arm.ratio for arm in db.session.scalars(select(Arm).order_by(Arm.id))]


def setup_audits(app) -> list[dict]:
    with app.app_context():
        return [e.detail for e in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "study.setup_changed"))]


def exported(runner, tmp_path: Path) -> Path:
    path = tmp_path / "study.yaml"
    result = runner.invoke(args=["outcomes", "study", "export", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_export_writes_the_set_up(app, runner, trial, tmp_path):
    data = yaml.safe_load(exported(runner, tmp_path).read_text(encoding="utf-8"))
    assert data["study"]["slug"] == "test"
    assert [arm["code"] for arm in data["arms"]] == ["guided", "self"]
    to_stdout = runner.invoke(args=["outcomes", "study", "export", "-"])
    assert yaml.safe_load(to_stdout.output) == data


def test_export_then_import_is_a_no_op(app, runner, trial, tmp_path):
    path = exported(runner, tmp_path)
    result = runner.invoke(args=["outcomes", "study", "import", str(path)])
    assert result.exit_code == 0 and result.output == "Nothing changed.\n"
    assert setup_audits(app) == []


def test_a_dry_run_prints_the_differences_and_saves_nothing(app, runner, trial, tmp_path):
    path = exported(runner, tmp_path)
    path.write_text(path.read_text().replace("ratio: 1", "ratio: 2", 1), encoding="utf-8")
    result = runner.invoke(args=["outcomes", "study", "import", str(path), "--dry-run"])
    assert result.exit_code == 0
    assert result.output == ("  arms.guided.ratio: 1 → 2\n"
                             "1 difference(s); not saved (dry run).\n")
    assert ratios(app) == [1, 1]
    result = runner.invoke(args=["outcomes", "study", "import", str(path)])
    assert result.exit_code == 0 and "Saved 1 change(s)." in result.output
    assert ratios(app) == [2, 1]
    [detail] = setup_audits(app)
    assert detail["via"] == "cli"


def test_import_problems_are_printed_with_file_and_line(app, runner, trial, tmp_path):
    path = exported(runner, tmp_path)
    text = path.read_text().replace("ratio: 1", "ratio: -1", 1)
    path.write_text(text, encoding="utf-8")
    line = text[:text.index("ratio: -1")].count("\n") + 1
    result = runner.invoke(args=["outcomes", "study", "import", str(path)])
    assert result.exit_code == 1
    assert f"{path}:{line}: arms.0.ratio: give a whole number from 1 to 20" in result.output
    assert ratios(app) == [1, 1]


def test_after_enrolment_opens_import_refuses_and_asks_to_confirm(app, runner, trial, tmp_path):
    with app.app_context():
        open_enrolment(db.session.scalar(select(Study)), actor=researcher(), seed="cli")
        db.session.commit()
    path = exported(runner, tmp_path)
    original = path.read_text()
    path.write_text(original.replace("ratio: 1", "ratio: 2", 1), encoding="utf-8")
    dry = runner.invoke(args=["outcomes", "study", "import", str(path), "--dry-run"])
    assert dry.exit_code == 1 and "would be refused" in dry.output
    assert dry.output.startswith("x arms.guided.ratio: 1 → 2  (arms.guided.ratio: the "
                                 "allocation ratio cannot change once enrolment has opened")
    result = runner.invoke(args=["outcomes", "study", "import", str(path)])
    assert result.exit_code == 1 and "the allocation ratio cannot change" in result.output
    path.write_text(original.replace("    forum: false", "    forum: true"), encoding="utf-8")
    result = runner.invoke(args=["outcomes", "study", "import", str(path)])
    assert result.exit_code == 1 and "run again with --confirm" in result.output
    result = runner.invoke(args=["outcomes", "study", "import", str(path), "--confirm"])
    assert result.exit_code == 0, result.output
    [detail] = setup_audits(app)
    assert detail["confirmed"] is True and detail["via"] == "cli"


def test_an_unknown_study_is_an_error(app, runner, trial, tmp_path):
    result = runner.invoke(args=["outcomes", "study", "export", str(tmp_path / "x.yaml"),
                                 "--study", "nope"])
    assert result.exit_code == 2 and "no study 'nope'" in result.output


def test_the_shipped_example_passes_a_dry_run(app, runner, trial):
    example = Path(__file__).resolve().parents[2] / "outcomes" / "study.example.yaml"
    result = runner.invoke(args=["outcomes", "study", "import", str(example), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "study.slug: test → kinship-rct" in result.output
