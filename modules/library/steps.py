"""Read and check one step file: front matter, the kind-specific fields, the files it
uses (pictures, video, captions) and the images in its Markdown body."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

from modules.library import documents as d
from modules.library.documents import YamlDoc
from modules.library.media import WEB_ADDRESS, file_inside, normal_relative
from modules.library.sources import (
    CAPTION_SUFFIXES,
    IMAGE_SUFFIXES,
    MAX_STEP_KEY,
    MAX_STEP_TITLE,
    STEP_KINDS,
    VIDEO_SUFFIXES,
    Problem,
    StepSource,
)

_STEP_KEYS = frozenset({"id", "kind", "title"})
_KIND_KEYS = {
    "read": frozenset({"panels"}),
    "video": frozenset({"video", "captions", "url", "transcript"}),
    "reflect": frozenset({"prompt"}),
    "quiz": frozenset({"questions", "pass_mark"}),
    "action": frozenset({"prompt", "check_after_days"}),
    "checkpoint": frozenset({"question"}),
}
_PANEL_KEYS = frozenset({"image", "alt", "caption"})
_QUESTION_KEYS = frozenset({"text", "options"})
_OPTION_KEYS = frozenset({"text", "correct", "feedback"})
_HTTPS_URL = re.compile(r"https://[^\s/?#]+\S*")
_SVG_ACTIVE = re.compile(rb"<script|\bon[a-z]+\s*=|javascript:", re.IGNORECASE)

# The same parser settings as core.markup, so the images found here are the images that
# core.markup renders, in the same order (modules.sync relies on it).
_markdown = MarkdownIt("js-default", {"breaks": True, "linkify": False})


@dataclass(frozen=True)
class MarkdownImage:
    """An image in a Markdown body, ``![alt](src)``; ``line`` counts from 0 in the body."""

    src: str
    alt: str
    line: int


@dataclass
class _Step:
    """A step file being checked."""

    doc: YamlDoc
    path: Path
    meta: dict[str, Any]
    body: str
    #: the file line where the Markdown body starts
    body_line: int
    media: list[str] = field(default_factory=list)

    def report(self, message: str, *where: str | int) -> None:
        self.doc.report(message, *where)


def markdown_images(text: str) -> list[MarkdownImage]:
    """The images in a Markdown text, in the order core.markup renders them."""
    lines = text.splitlines()
    images = []
    for token in _markdown.parse(text):
        if token.type != "inline" or not token.children:
            continue
        start, end = token.map or (0, 1)
        for child in token.children:
            if child.type == "image":
                raw = str(child.attrs.get("src", ""))
                src = unquote(raw)
                images.append(MarkdownImage(src, _plain_text(child.children),
                                            _line_with(lines, start, end, (src, raw))))
    return images


def read_step(path: Path, text: str, display: str, problems: list[Problem],
              step_ids: dict[str, str]) -> StepSource | None:
    """Check the step file ``path`` (its ``text`` already read). ``step_ids`` maps the
    ids seen so far in the library to where, and gains this one. None when the front
    matter cannot be read at all."""
    split = d.split_front_matter(text)
    if isinstance(split, str):
        problems.append(Problem(display, 1, split))
        return None
    front, body, body_line = split
    doc = d.load_yaml(front, display, 2, problems)
    if doc is None:
        return None
    if not isinstance(doc.data, dict):
        doc.report_at(1, "the front matter must be 'key: value' lines with id, kind and title")
        return None
    step = _Step(doc, path, doc.data, body, body_line)
    key = _step_id(step, step_ids)
    kind = d.text(doc, step.meta, "kind")
    if kind and kind not in STEP_KINDS:
        step.report(f"unknown step kind '{kind}': use one of {', '.join(STEP_KINDS)}", "kind")
    title = d.text(doc, step.meta, "title")
    d.max_length(doc, title, MAX_STEP_TITLE, "title", "title")
    if kind in _KIND_CHECKS:
        d.check_keys(doc, step.meta, _STEP_KEYS | _KIND_KEYS[kind], f"a {kind} step")
        _KIND_CHECKS[kind](step)
    _check_body_images(step)
    return StepSource(key, kind, title, body, step.meta, path, step.media)


def _step_id(step: _Step, step_ids: dict[str, str]) -> str:
    key = d.text(step.doc, step.meta, "id")
    if not key:
        return ""
    if not d.valid_id(key, MAX_STEP_KEY):
        step.report(f"id '{key}' must be lower-case letters, digits and dashes "
                    f"(at most {MAX_STEP_KEY})", "id")
    elif key in step_ids:
        step.report(f"duplicate step id '{key}': also used at {step_ids[key]}; every step "
                    "id must be unique in the library", "id")
    else:
        step_ids[key] = f"{step.doc.display}:{step.doc.line('id')}"
    return key


def _check_read(step: _Step) -> None:
    panels = step.meta.get("panels")
    if panels is None:
        if not step.body.strip():
            step.report("a read step needs some text (below the front matter) or panels")
        return
    if not isinstance(panels, list) or not panels:
        step.report("panels must be a list of {image: ..., alt: ..., caption: ...}", "panels")
        return
    for index, panel in enumerate(panels):
        _check_panel(step, index, panel)


def _check_panel(step: _Step, index: int, panel: Any) -> None:
    where = ("panels", index)
    label = f"panel {index + 1}"
    if not isinstance(panel, dict):
        step.report(f"{label} must be {{image: ..., alt: ..., caption: ...}}", *where)
        return
    d.check_keys(step.doc, panel, _PANEL_KEYS, "a panel", *where)
    if "image" not in panel:
        step.report(f"{label} has no image", *where)
    else:
        _check_file(step, panel["image"], IMAGE_SUFFIXES, "image",
                    lambda message: step.report(message, *where, "image"))
    d.text(step.doc, panel, "alt", *where,
           label=f"{label} has no alt text: say what the picture shows (alt: ...)")
    d.text(step.doc, panel, "caption", *where, required=False)


def _check_video(step: _Step) -> None:
    meta = step.meta
    if ("video" in meta) == ("url" in meta):
        step.report("a video step needs either video: (a local file, with captions:) or "
                    "url: (an https:// link), not both or neither", "url")
    if "video" in meta:
        _check_file(step, meta["video"], VIDEO_SUFFIXES, "video",
                    lambda message: step.report(message, "video"))
        if "captions" not in meta:
            step.report("the video has no captions: add captions: media/<name>.vtt", "video")
    if "captions" in meta:
        _check_file(step, meta["captions"], CAPTION_SUFFIXES, "captions",
                    lambda message: step.report(message, "captions"))
    if "url" in meta:
        url = meta["url"]
        if not isinstance(url, str) or not _HTTPS_URL.fullmatch(url.strip()):
            step.report(f"url must be a web address starting with https:// (it is {url!r})",
                        "url")
    d.text(step.doc, meta, "transcript", required=False)


def _check_reflect(step: _Step) -> None:
    d.text(step.doc, step.meta, "prompt",
           label="a reflect step needs prompt: the question to write about")


def _check_quiz(step: _Step) -> None:
    questions = step.meta.get("questions")
    if not isinstance(questions, list) or not questions:
        step.report("a quiz needs questions: a list, each with text: and options:", "questions")
    else:
        for index, question in enumerate(questions):
            _check_question(step, index, question)
    if "pass_mark" in step.meta:
        mark = step.meta["pass_mark"]
        if isinstance(mark, bool) or not isinstance(mark, int | float) or not 0 < mark <= 1:
            step.report(f"pass_mark must be a fraction above 0 and at most 1, such as 0.5 "
                        f"(it is {mark!r})", "pass_mark")


def _check_question(step: _Step, index: int, question: Any) -> None:
    where = ("questions", index)
    label = f"question {index + 1}"
    if not isinstance(question, dict):
        step.report(f"{label} must have text: and options:", *where)
        return
    d.check_keys(step.doc, question, _QUESTION_KEYS, "a question", *where)
    d.text(step.doc, question, "text", *where, label=f"{label} has no text")
    options = question.get("options")
    if not isinstance(options, list):
        step.report(f"{label} needs options: a list of 2 to 6 answers", *where)
        return
    if not 2 <= len(options) <= 6:
        count = f"{len(options)} option" + ("" if len(options) == 1 else "s")
        step.report(f"{label} has {count}: give 2 to 6", *where, "options")
    correct = [_check_option(step, (*where, "options", i), f"{label}, option {i + 1}", option)
               for i, option in enumerate(options)]
    if options and not any(correct):
        step.report(f"{label} has no correct option: mark at least one with correct: true",
                    *where)


def _check_option(step: _Step, where: d.Where, label: str, option: Any) -> bool:
    """Check one answer option; True when it is marked correct."""
    if not isinstance(option, dict):
        step.report(f"{label} must be {{text: ..., correct: true|false, feedback: ...}}",
                    *where)
        return False
    d.check_keys(step.doc, option, _OPTION_KEYS, "an option", *where)
    d.text(step.doc, option, "text", *where, label=f"{label} has no text")
    d.text(step.doc, option, "feedback", *where, required=False)
    return d.flag(step.doc, option, "correct", default=False, where=where)


def _check_action(step: _Step) -> None:
    d.text(step.doc, step.meta, "prompt",
           label="an action step needs prompt: the small real-world step to try")
    if "check_after_days" in step.meta:
        d.whole(step.doc, step.meta, "check_after_days", 1, 14)


def _check_checkpoint(step: _Step) -> None:
    d.text(step.doc, step.meta, "question", required=False)


_KIND_CHECKS: dict[str, Callable[[_Step], None]] = {
    "read": _check_read,
    "video": _check_video,
    "reflect": _check_reflect,
    "quiz": _check_quiz,
    "action": _check_action,
    "checkpoint": _check_checkpoint,
}


def _check_body_images(step: _Step) -> None:
    for image in markdown_images(step.body):
        line = step.body_line + image.line
        _check_file(step, image.src, IMAGE_SUFFIXES, "image",
                    lambda message, line=line: step.doc.report_at(line, message))
        if not image.alt.strip():
            step.doc.report_at(line, f"the image {image.src} has no alt text: say what it "
                                     f"shows between the brackets, ![like this]({image.src})")


def _check_file(step: _Step, value: Any, suffixes: frozenset[str], what: str,
                report: Callable[[str], None]) -> None:
    """Check that ``value`` names an existing file of the right type in the module's
    folder, and remember it as one of the step's media files."""
    if not isinstance(value, str) or not value.strip():
        report(f"{what} must be a file path such as {_example(suffixes)}")
        return
    written = value.strip()
    normal = normal_relative(written)
    if WEB_ADDRESS.match(written):
        report(f"{what} '{written}' must be a file in this module's folder, not a web address")
    elif normal is None:
        report(f"{what} '{written}' must be a path inside this module's folder")
    elif PurePosixPath(normal).suffix.lower() not in suffixes:
        report(f"{what} '{written}' must be one of: "
               + ", ".join(sorted(s.lstrip(".").upper() for s in suffixes)))
    elif file_inside(step.path.parent, normal) is None:
        report(f"missing {what} file: {written} (no such file in this module's folder)")
    else:
        _check_svg(step.path.parent / normal, report)
        if normal not in step.media:
            step.media.append(normal)


def _check_svg(path: Path, report: Callable[[str], None]) -> None:
    if path.suffix.lower() == ".svg" and _SVG_ACTIVE.search(path.read_bytes()):
        report(f"the picture {path.name} contains a script or event handler; "
               "pictures must not run code")


def _example(suffixes: frozenset[str]) -> str:
    if suffixes == VIDEO_SUFFIXES:
        return "media/intro.mp4"
    return "media/intro.vtt" if suffixes == CAPTION_SUFFIXES else "images/picture.png"


def _plain_text(tokens: list[Token] | None) -> str:
    return "".join(token.content for token in tokens or [])


def _line_with(lines: list[str], start: int, end: int, needles: tuple[str, ...]) -> int:
    """The first line in ``lines[start:end]`` containing one of ``needles``."""
    for index in range(start, min(end, len(lines))):
        if any(needle and needle in lines[index] for needle in needles):
            return index
    return start
