"""The content parser and validator (no database): every problem is reported at the
file and line to fix, and media files are only ever resolved inside their module."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modules.library import load_library, markdown_images, media_path, media_url

FIXTURES = Path(__file__).parent / "fixtures"
SHAPE = ["a module needs at least 4 steps (this one has 0)",
         "a module needs at least one action step",
         "a module needs at least one quiz step"]
EVIDENCE = ("cbt, self-compassion, positive-psychology, behavioural-activation, mindfulness, "
            "psychoeducation, social-skills")
NOT_HERE = "(no such file in this module's folder)"


def _empty_modules(*folders: str) -> list[str]:
    return [f"broken/{folder}/module.yaml:1: {message}" for folder in folders
            for message in SHAPE]


BROKEN = sorted([
    # pathways.yaml
    "broken/pathways.yaml:4: pathway 'extras' has no title",
    # module.yaml: malformed YAML, missing file, bad fields, too few steps
    "broken/bad-yaml/module.yaml:2: YAML error: mapping values are not allowed here",
    "broken/no-yaml/module.yaml:1: missing module.yaml: every module folder needs one "
    "(see the README)",
    "broken/meta/module.yaml:1: a module needs at least 4 steps (this one has 1)",
    "broken/meta/module.yaml:1: a module needs at least one action step",
    "broken/meta/module.yaml:1: a module needs at least one quiz step",
    "broken/meta/module.yaml:3: unknown pathway 'nowhere': use one of extras, foundations",
    "broken/meta/module.yaml:5: minutes must be a whole number from 1 to 120 (it is 0)",
    f"broken/meta/module.yaml:6: unknown evidence 'astrology': use one of {EVIDENCE}",
    "broken/meta/module.yaml:7: unlock needs exactly one of after, level or week "
    "(it has after and level)",
    "broken/meta/module.yaml:10: unknown key 'colour' in module.yaml (allowed: core, "
    "evidence, minutes, order, pathway, summary, title, unlock)",
    # unlock rules
    "broken/unlock-self/module.yaml:8: unlock after itself: no one could ever open this module",
    "broken/unlock-unknown/module.yaml:8: unlock after 'no-such-module': there is no module "
    "folder with that name",
    "broken/cycle-a/module.yaml:8: unlock cycle: cycle-a -> cycle-b -> cycle-a "
    "(no one could ever open these modules)",
    "broken/cycle-b/module.yaml:8: unlock cycle: cycle-b -> cycle-a -> cycle-b "
    "(no one could ever open these modules)",
    "broken/unlock-level/module.yaml:8: unlock level must be a whole number of 2 or more "
    "(it is 1); everyone starts at level 1",
    "broken/unlock-week/module.yaml:8: unlock week must be a whole number of 1 or more "
    "(it is 0)",
    "broken/unlock-week/module.yaml:4: order 7 is also used by module 'unlock-level' in "
    "pathway 'foundations'",
    *_empty_modules("cycle-a", "cycle-b", "unlock-level", "unlock-self", "unlock-unknown",
                    "unlock-week"),
    # steps
    "broken/steps/notes.txt:1: unexpected file 'notes.txt': steps are Markdown files (.md); "
    "put pictures in images/ and videos in media/",
    "broken/steps/04-unknown-kind.md:3: unknown step kind 'lesson': use one of read, video, "
    "reflect, quiz, action, checkpoint",
    "broken/steps/05-missing-id-title.md:2: missing id",
    "broken/steps/05-missing-id-title.md:2: missing title",
    "broken/steps/06-missing-kind.md:2: missing kind",
    "broken/steps/07-quiz-no-correct.md:6: question 1 has no correct option: mark at least "
    "one with correct: true",
    "broken/steps/08-quiz-shape.md:5: pass_mark must be a fraction above 0 and at most 1, "
    "such as 0.5 (it is 2)",
    "broken/steps/08-quiz-shape.md:8: question 1 has 1 option: give 2 to 6",
    "broken/steps/08-quiz-shape.md:11: question 2 has 7 options: give 2 to 6",
    "broken/steps/08-quiz-shape.md:12: question 3 has no text",
    f"broken/steps/09-images.md:6: missing image file: images/missing.png {NOT_HERE}",
    "broken/steps/09-images.md:8: panel 2 has no alt text: say what the picture shows "
    "(alt: ...)",
    "broken/steps/09-images.md:13: the image images/ok.png has no alt text: say what it "
    "shows between the brackets, ![like this](images/ok.png)",
    f"broken/steps/09-images.md:15: missing image file: images/gone.png {NOT_HERE}",
    "broken/steps/10-video-no-captions.md:5: the video has no captions: add captions: "
    "media/<name>.vtt",
    f"broken/steps/11-video-missing-files.md:5: missing video file: media/missing.mp4 "
    f"{NOT_HERE}",
    f"broken/steps/11-video-missing-files.md:6: missing captions file: media/missing.vtt "
    f"{NOT_HERE}",
    "broken/steps/12-video-http.md:5: url must be a web address starting with https:// "
    "(it is 'http://example.org/video')",
    "broken/steps/13-action-days.md:6: check_after_days must be a whole number from 1 to 14 "
    "(it is 30)",
    "broken/steps/14-reflect-no-prompt.md:2: a reflect step needs prompt: the question to "
    "write about",
    "broken/steps/15-action-no-prompt.md:2: an action step needs prompt: the small "
    "real-world step to try",
    "broken/steps/16-duplicate-id.md:2: duplicate step id 'st-read': also used at "
    "broken/steps/01-read-ok.md:2; every step id must be unique in the library",
    "broken/steps/17-bad-yaml.md:4: YAML error: mapping values are not allowed here",
    "broken/steps/18-no-front-matter.md:1: a step file starts with front matter: a line "
    "'---', then id, kind and title, then another '---'",
    "broken/steps/19-typo.md:2: a reflect step needs prompt: the question to write about",
    "broken/steps/19-typo.md:5: unknown key 'promt' in a reflect step (allowed: id, kind, "
    "prompt, title)",
], key=lambda line: (line.split(":")[0], int(line.split(":")[1]), line))


def test_broken_fixture_reports_every_problem_at_its_file_and_line() -> None:
    """It reports each kind of problem, at the line to fix, and nothing else."""
    library = load_library(FIXTURES / "broken")

    assert [str(problem) for problem in library.problems] == BROKEN


def test_problem_paths_start_with_the_display_path_given() -> None:
    library = load_library(FIXTURES / "broken", display="content/here/")

    assert str(library.problems[0]).startswith("content/here/bad-yaml/module.yaml:2: ")


def test_good_fixture_has_no_problems_and_is_read_in_file_order() -> None:
    library = load_library(FIXTURES / "good")

    assert library.problems == []
    assert [p.key for p in library.pathways] == ["foundations", "connecting"]
    first, second = library.modules
    assert (first.key, first.pathway, first.order, first.unlock) == (
        "first-steps", "foundations", 1, {})
    assert (second.is_core, second.evidence, second.unlock) == (
        False, ["behavioural-activation"], {"after": "first-steps"})
    assert [s.key for s in first.steps] == ["fs-welcome", "fs-check", "fs-try-it",
                                            "fs-how-was-it"]
    assert first.steps[0].media == ["images/panel-1.svg", "images/panel-2.svg",
                                    "images/wave.svg"]
    assert second.steps[0].media == ["media/hello.mp4", "media/hello.vtt"]
    assert len(first.content_hash) == 64


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    """A copy of the good fixture to break in one place."""
    return Path(shutil.copytree(FIXTURES / "good", tmp_path / "content"))


def _problems(root: Path) -> list[str]:
    return [str(problem) for problem in load_library(root).problems]


def _write_step(root: Path, name: str, front: str, body: str = "Text.") -> None:
    (root / "first-steps" / name).write_text(f"---\n{front}\n---\n{body}\n", encoding="utf-8")


def test_missing_pathways_yaml_is_one_problem(library_dir: Path) -> None:
    (library_dir / "pathways.yaml").unlink()

    assert _problems(library_dir) == ["content/pathways.yaml:1: missing pathways.yaml: list "
                                      "the pathways here (see the README)"]


def test_images_must_stay_inside_the_module_folder(library_dir: Path) -> None:
    _write_step(library_dir, "05-images.md", "id: fs-images\nkind: read\ntitle: Pictures",
                "![Up](../reaching-out/media/x.png)\n\n![Web](https://example.org/x.png)\n\n"
                "![Video](media/clip.mp4)")

    assert _problems(library_dir) == [
        "content/first-steps/05-images.md:6: image '../reaching-out/media/x.png' must be a "
        "path inside this module's folder",
        "content/first-steps/05-images.md:8: image 'https://example.org/x.png' must be a "
        "file in this module's folder, not a web address",
        "content/first-steps/05-images.md:10: image 'media/clip.mp4' must be one of: JPEG, "
        "JPG, PNG, SVG, WEBP",
    ]


def test_an_svg_with_a_script_is_refused(library_dir: Path) -> None:
    (library_dir / "first-steps/images/wave.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')

    assert _problems(library_dir) == [
        "content/first-steps/01-welcome.md:14: the picture wave.svg contains a script or "
        "event handler; pictures must not run code"]


def test_duplicate_keys_bad_ids_and_unquoted_yes_are_reported(library_dir: Path) -> None:
    _write_step(library_dir, "05-odd.md", "id: Odd Id\nkind: quiz\ntitle: Odd\ntitle: Again\n"
                "questions:\n  - text: Ok?\n    options:\n      - {text: Yes, correct: true}\n"
                "      - {text: Maybe}")

    assert _problems(library_dir) == [
        "content/first-steps/05-odd.md:2: id 'Odd Id' must be lower-case letters, digits and "
        "dashes (at most 80)",
        "content/first-steps/05-odd.md:5: duplicate key 'title' (first on line 4)",
        "content/first-steps/05-odd.md:9: text must be text (it is True); put it in quotes",
    ]


def test_front_matter_that_is_not_closed_is_reported(library_dir: Path) -> None:
    (library_dir / "first-steps/05-open.md").write_text("---\nid: fs-open\nkind: read\n")

    assert _problems(library_dir) == ["content/first-steps/05-open.md:1: the front matter is "
                                      "not closed: add a line '---' after it"]


def test_a_video_needs_a_file_or_a_link_not_both(library_dir: Path) -> None:
    step = library_dir / "reaching-out/01-watch.md"
    step.write_text(step.read_text().replace("transcript:", "url: https://example.org/v\n"
                                                            "transcript:"))

    assert _problems(library_dir) == [
        "content/reaching-out/01-watch.md:7: a video step needs either video: (a local file, "
        "with captions:) or url: (an https:// link), not both or neither"]


def test_markdown_images_know_their_line_in_the_body() -> None:
    images = markdown_images("Intro\n\nA picture\n![A cat](images/cat.png) here\n\n"
                             "- ![](images/my%20dog.png)")

    assert [(i.src, i.alt, i.line) for i in images] == [("images/cat.png", "A cat", 3),
                                                        ("images/my dog.png", "", 5)]


def test_media_path_resolves_files_inside_the_module_only(tmp_path: Path) -> None:
    root = Path(shutil.copytree(FIXTURES / "good", tmp_path / "content"))
    (root / "first-steps/module.yaml").touch()
    (tmp_path / "secret.png").write_bytes(b"x")
    (root / "first-steps/images/link.png").symlink_to(tmp_path / "secret.png")
    (root / "first-steps/images/.hidden.png").write_bytes(b"x")

    found = media_path("first-steps", "images/wave.svg", root=root)

    assert found == (root / "first-steps/images/wave.svg").resolve()
    assert media_path("reaching-out", "media/hello.vtt", root=root) is not None
    for module, relative in [("first-steps", "../reaching-out/media/hello.mp4"),
                             ("first-steps", "/etc/passwd"),
                             ("first-steps", "images/../../pathways.yaml"),
                             ("first-steps", "module.yaml"),
                             ("first-steps", "images/link.png"),
                             ("first-steps", "images/.hidden.png"),
                             ("first-steps", "images/nope.png"),
                             ("first-steps", "images\\wave.svg"),
                             ("..", "content/first-steps/images/wave.svg"),
                             ("no-such-module", "images/wave.svg")]:
        assert media_path(module, relative, root=root) is None, (module, relative)


def test_media_url_is_under_the_modules_media_prefix() -> None:
    assert media_url("first-steps", "images/my dog.png") == (
        "/modules/media/first-steps/images/my%20dog.png")


def test_a_module_named_like_a_page_is_refused(library_dir: Path) -> None:
    """It refuses a module folder whose name is a page of the app (/modules/today...),
    which the module's own page could never be reached behind."""
    (library_dir / "reaching-out").rename(library_dir / "today")
    assert "content/today/module.yaml:1: the folder name 'today' is taken by a page of the " \
           "app (/modules/today); choose another name" in _problems(library_dir)
