"""Syncing content into the database: idempotent, keyed by stable ids, never losing
participants' progress when content is edited, reordered, moved or removed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.extensions import db
from modules.library import load_library
from modules.models import Module, Pathway, Step, StepProgress
from modules.sync import ContentHasProblems, SyncReport, sync_library
from tests.factories import make_participant

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A copy of the good fixture library to edit."""
    return Path(shutil.copytree(FIXTURES / "good", tmp_path / "content"))


def sync(app: Flask, root: Path) -> SyncReport:
    with app.app_context():
        report = sync_library(load_library(root))
        db.session.commit()
        return report


def steps_by_key(app: Flask) -> dict[str, tuple[int, str, int, bool]]:
    """key -> (id, module key, position, is_active)"""
    with app.app_context():
        rows = db.session.execute(select(Step.key, Step.id, Module.key, Step.position,
                                         Step.is_active).join(Module, Step.module_id == Module.id))
        return {key: (id_, module, position, active)
                for key, id_, module, position, active in rows}


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_first_sync_adds_everything_and_records_an_audit_entry(app: Flask,
                                                               content: Path) -> None:
    report = sync(app, content)

    assert report.summary() == ("pathways 2 added, 0 updated, 0 deactivated; "
                                "modules 2 added, 0 updated, 0 deactivated; "
                                "steps 9 added, 0 updated, 0 deactivated")
    with app.app_context():
        module = db.session.scalar(select(Module).where(Module.key == "reaching-out"))
        assert (module.title, module.position, module.minutes, module.is_core) == (
            "Reaching out", 1, 20, False)
        assert module.pathway.key == "connecting"
        assert (module.evidence, module.unlock) == (["behavioural-activation"],
                                                     {"after": "first-steps"})
        assert [s.key for s in module.steps] == ["ro-watch", "ro-think", "ro-quiz",
                                                 "ro-reach-out", "ro-checkpoint"]
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "modules.synced"))
        assert entry.detail["steps_added"] == 9
        assert entry.detail["modules_added"] == 2


def test_sync_renders_markdown_and_kind_data_once(app: Flask, content: Path) -> None:
    (content / "first-steps/03-try-it.md").write_text(
        "---\nid: fs-try-it\nkind: action\ntitle: Try it\nprompt: Say **hi**.\n---\n"
        "Why it helps <script>alert(1)</script>\n")

    sync(app, content)

    with app.app_context():
        steps = {s.key: s for s in db.session.scalars(select(Step))}
    welcome = steps["fs-welcome"]
    assert ('<img src="/modules/media/first-steps/images/wave.svg" alt="A hand waving hello" '
            'loading="lazy">') in welcome.body_html
    assert welcome.data["panels"][0] == {
        "image": "images/panel-1.svg", "src": "/modules/media/first-steps/images/panel-1.svg",
        "alt": "Two people waving from far apart",
        "caption_html": "<p>Feeling <strong>far away</strong> from people is common.</p>\n"}
    assert welcome.data["media"] == ["first-steps/images/panel-1.svg",
                                     "first-steps/images/panel-2.svg",
                                     "first-steps/images/wave.svg"]
    action = steps["fs-try-it"]
    assert "<script" not in action.body_html
    assert action.data == {"prompt": "Say **hi**.", "prompt_html": "<p>Say <strong>hi</strong>."
                           "</p>\n", "check_after_days": 3, "media": []}
    quiz = steps["ro-quiz"].data
    assert quiz["pass_mark"] == 0.5
    assert quiz["questions"][0]["multiple"] is True
    assert [o["correct"] for o in quiz["questions"][0]["options"]] == [True, True, False]
    assert quiz["questions"][0]["options"][2]["feedback_html"] == (
        "<p>That can take a long time.</p>\n")
    video = steps["ro-watch"].data
    assert video["video"] == {"file": "media/hello.mp4", "type": "video/mp4",
                              "src": "/modules/media/reaching-out/media/hello.mp4"}
    assert video["captions"]["src"] == "/modules/media/reaching-out/media/hello.vtt"
    assert steps["fs-how-was-it"].data["question"] == "How helpful was this module for you?"


def test_second_sync_without_changes_changes_nothing(app: Flask, content: Path) -> None:
    sync(app, content)
    before = steps_by_key(app)
    audits = count(app, AuditEntry)

    report = sync(app, content)

    assert not report.changed
    assert report.summary() == "no changes"
    assert steps_by_key(app) == before
    assert (count(app, Pathway), count(app, Module), count(app, Step)) == (2, 2, 9)
    assert count(app, AuditEntry) == audits


def test_editing_a_step_updates_it_in_place(app: Flask, content: Path) -> None:
    sync(app, content)
    before = steps_by_key(app)
    step_file = content / "first-steps/03-try-it.md"
    step_file.write_text(step_file.read_text().replace("Small steps count.", "Tiny steps too."))

    report = sync(app, content)

    assert (report.steps.updated, report.steps.added, report.modules.updated) == (1, 0, 1)
    assert steps_by_key(app) == before
    with app.app_context():
        step = db.session.scalar(select(Step).where(Step.key == "fs-try-it"))
        assert step.body_html == "<p>Tiny steps too.</p>\n"


def test_reordering_files_changes_positions_but_keeps_ids(app: Flask, content: Path) -> None:
    sync(app, content)
    before = steps_by_key(app)
    folder = content / "first-steps"
    (folder / "01-welcome.md").rename(folder / "05-welcome.md")

    sync(app, content)

    after = steps_by_key(app)
    assert {key: row[0] for key, row in after.items()} == {k: r[0] for k, r in before.items()}
    assert [after[k][2] for k in ("fs-check", "fs-try-it", "fs-how-was-it", "fs-welcome")] == [
        1, 2, 3, 4]


def test_removing_a_step_deactivates_it_and_keeps_progress(app: Flask, content: Path) -> None:
    sync(app, content)
    with app.app_context():
        participant = make_participant()
        step_id = db.session.scalar(select(Step.id).where(Step.key == "ro-think"))
        db.session.add(StepProgress(participant_id=participant.id, step_id=step_id))
        db.session.commit()
    thought = (content / "reaching-out/02-think.md").read_text()
    (content / "reaching-out/02-think.md").unlink()

    report = sync(app, content)

    assert (report.steps.deactivated, report.steps.updated) == (1, 3)  # three moved up
    assert steps_by_key(app)["ro-think"] == (step_id, "reaching-out", 2, False)
    with app.app_context():
        assert db.session.scalar(select(StepProgress.step_id)) == step_id
        module = db.session.scalar(select(Module).where(Module.key == "reaching-out"))
        assert "ro-think" not in [s.key for s in module.steps]

    (content / "reaching-out/02-think.md").write_text(thought)
    sync(app, content)

    assert steps_by_key(app)["ro-think"] == (step_id, "reaching-out", 2, True)


def test_moving_a_step_to_another_module_keeps_its_id(app: Flask, content: Path) -> None:
    sync(app, content)
    step_id = steps_by_key(app)["ro-think"][0]
    (content / "reaching-out/02-think.md").rename(content / "first-steps/05-think.md")

    report = sync(app, content)

    assert report.steps.added == 0
    assert steps_by_key(app)["ro-think"] == (step_id, "first-steps", 5, True)


def test_removing_a_module_folder_deactivates_it_and_its_steps(app: Flask,
                                                               content: Path) -> None:
    sync(app, content)
    shutil.rmtree(content / "reaching-out")

    report = sync(app, content)

    assert (report.modules.deactivated, report.steps.deactivated) == (1, 5)
    with app.app_context():
        module = db.session.scalar(select(Module).where(Module.key == "reaching-out"))
        assert module.is_active is False
    assert count(app, Step) == 9


def test_sync_refuses_broken_content_and_writes_nothing(app: Flask) -> None:
    with app.app_context():
        library = load_library(FIXTURES / "broken")
        with pytest.raises(ContentHasProblems) as raised:
            sync_library(library)
        db.session.commit()

    assert raised.value.problems == library.problems
    assert (count(app, Pathway), count(app, Module), count(app, Step),
            count(app, AuditEntry)) == (0, 0, 0, 0)
