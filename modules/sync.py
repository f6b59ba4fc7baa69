"""Load a checked content library into the database (``flask modules sync``).

``sync_library(library)`` upserts pathways, modules and steps by their stable keys (the
pathway id, the module folder name, the step id) and renders every Markdown field to
sanitised HTML once, here, so pages never render Markdown. Nothing is ever deleted: a
module or step whose files are gone is deactivated (``is_active`` False), so the
progress rows pointing at it survive, and it comes back with the same row if its file
returns. A step moved to another module keeps its row and moves. Positions follow file
order. Running it again on unchanged content changes nothing at all (no audit entry).

Transactions: ``sync_library`` flushes and, when anything changed, records one
``modules.synced`` audit entry with the counts and stores a new content version (also
when none is stored yet), which tells every process to reload its catalogue
(``modules.catalogue``); the caller commits once.

``Step.data`` by kind (HTML fields already sanitised; ``src`` fields are the URLs the
pages serve the module's files at, see ``modules.library.media_url``):

- every kind: ``media``: the files the step uses, relative to the content root
  (``"<module key>/images/x.svg"``); ``media_path(module_key, rest)`` opens one.
- read: ``panels``: ``[{image, src, alt, caption_html}]`` (empty when none).
- video: ``video``: ``{file, src, type}`` or None; ``captions``: ``{file, src}`` or None;
  ``url``: an https link or None; ``transcript_html``.
- reflect: ``prompt``, ``prompt_html``.
- quiz: ``questions``: ``[{text, multiple, options: [{text, correct, feedback_html}]}]``
  (``multiple``: more than one correct option, "choose all that apply"); ``pass_mark``.
- action: ``prompt``, ``prompt_html``, ``check_after_days``.
- checkpoint: ``question``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import PurePosixPath
from typing import Any, TypeVar

from sqlalchemy import select

from core import audit, markup
from core.clock import utcnow
from core.extensions import db
from core.models import User
from modules import catalogue
from modules.library import (
    DEFAULT_CHECK_AFTER_DAYS,
    DEFAULT_CHECKPOINT_QUESTION,
    DEFAULT_PASS_MARK,
    Library,
    MarkdownImage,
    ModuleSource,
    PathwaySource,
    Problem,
    StepSource,
    markdown_images,
    media_url,
)
from modules.library.media import normal_relative
from modules.models import Module, Pathway, Step

#: tags allowed in content on top of core.markup's; <img> is rebuilt here (see below)
_EXTRA_TAGS = {"img", "hr"}
# core.markup keeps <img> but none of its attributes except a title; each one is swapped
# for a tag built here from the same image in the Markdown. Attribute values come out of
# nh3 double-quoted with '"' escaped, so this matches exactly one whole tag.
_IMG_TAG = re.compile(r'<img(?:\s+[^\s"=<>/]+="[^"]*")*\s*/?>')
_VIDEO_TYPES = {".mp4": "video/mp4", ".webm": "video/webm"}

Row = TypeVar("Row", Pathway, Module, Step)


class ContentHasProblems(Exception):
    """The library has problems, so nothing was synced."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"the content has {len(problems)} problem(s); nothing was synced")
        self.problems = problems


@dataclass
class Counts:
    added: int = 0
    updated: int = 0
    deactivated: int = 0

    def __str__(self) -> str:
        return f"{self.added} added, {self.updated} updated, {self.deactivated} deactivated"


@dataclass
class SyncReport:
    pathways: Counts = field(default_factory=Counts)
    modules: Counts = field(default_factory=Counts)
    steps: Counts = field(default_factory=Counts)

    @property
    def changed(self) -> bool:
        return any(vars(counts) != vars(Counts()) for counts in self._parts().values())

    def summary(self) -> str:
        if not self.changed:
            return "no changes"
        return "; ".join(f"{name} {counts}" for name, counts in self._parts().items())

    def as_detail(self) -> dict[str, int]:
        return {f"{name}_{what}": number for name, counts in self._parts().items()
                for what, number in vars(counts).items()}

    def _parts(self) -> dict[str, Counts]:
        return {"pathways": self.pathways, "modules": self.modules, "steps": self.steps}


def sync_library(library: Library, *, actor: User | None = None) -> SyncReport:
    """Make the database match ``library``. Raises ``ContentHasProblems`` (writing
    nothing) when the library has problems. Flushes; the caller commits."""
    if library.problems:
        raise ContentHasProblems(library.problems)
    report = SyncReport()
    pathways = _sync_pathways(library.pathways, report.pathways)
    modules = _sync_modules(library.modules, pathways, report.modules)
    _sync_steps(library.modules, modules, report.steps)
    db.session.flush()
    if report.changed:
        audit.record("modules.synced", actor=actor, **report.as_detail())
    if report.changed or catalogue.stored_version() is None:
        catalogue.bump_version()  # every process reloads its catalogue
    return report


def render_markdown(text: str, module_key: str) -> str:
    """Sanitised HTML for a Markdown text of module ``module_key``; its images point at
    the module's files as the pages serve them."""
    if not text.strip():
        return ""
    images = iter(markdown_images(text))
    html = markup.render(text, extra_tags=_EXTRA_TAGS, breaks=False)
    return _IMG_TAG.sub(lambda _: _image_tag(next(images, None), module_key), html)


def step_data(step: StepSource, module_key: str) -> dict[str, Any]:
    """The kind-specific data stored in ``Step.data`` (see the module docstring)."""
    data = _KIND_DATA[step.kind](step.meta, module_key)
    data["media"] = [f"{module_key}/{name}" for name in step.media]
    return data


# ------------------------------------------------------------------------------ rows


def _sync_pathways(sources: list[PathwaySource], counts: Counts) -> dict[str, Pathway]:
    """Upsert the pathways (a pathway no longer listed is left alone: it has no
    is_active column, and its modules are deactivated with their folders)."""
    rows = {row.key: row for row in db.session.scalars(select(Pathway))}
    for source in sources:
        values = {"title": source.title, "description": source.description,
                  "position": source.position}
        rows[source.key] = _upsert(Pathway, rows.get(source.key), source.key, values, counts)
    db.session.flush()
    return rows


def _sync_modules(sources: list[ModuleSource], pathways: dict[str, Pathway],
                  counts: Counts) -> dict[str, Module]:
    rows = {row.key: row for row in db.session.scalars(select(Module))}
    for source in sources:
        values = {
            "pathway_id": pathways[source.pathway].id, "title": source.title,
            "summary": source.summary, "position": source.order, "minutes": source.minutes,
            "is_core": source.is_core, "evidence": list(source.evidence),
            "unlock": dict(source.unlock), "content_hash": source.content_hash,
            "is_active": True,
        }
        row = rows.get(source.key)
        rows[source.key] = _upsert(Module, row, source.key, values, counts,
                                   on_update=lambda module: setattr(module, "synced_at", utcnow()))
    _deactivate(rows, {source.key for source in sources}, counts)
    db.session.flush()
    return rows


def _sync_steps(sources: list[ModuleSource], modules: dict[str, Module],
                counts: Counts) -> None:
    rows = {row.key: row for row in db.session.scalars(select(Step))}
    keys = set()
    for module in sources:
        for position, step in enumerate(module.steps, start=1):
            values = {
                "module_id": modules[module.key].id, "position": position, "kind": step.kind,
                "title": step.title, "body_html": render_markdown(step.body, module.key),
                "data": step_data(step, module.key), "is_active": True,
            }
            _upsert(Step, rows.get(step.key), step.key, values, counts)
            keys.add(step.key)
    _deactivate(rows, keys, counts)


def _upsert(model: type[Row], row: Row | None, key: str, values: dict[str, Any],
            counts: Counts, *, on_update: Callable[[Row], None] | None = None) -> Row:
    if row is None:
        row = model(key=key, **values)
        db.session.add(row)
        counts.added += 1
        return row
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    for name in changed:
        setattr(row, name, values[name])
    if changed:
        counts.updated += 1
        if on_update is not None:
            on_update(row)
    return row


def _deactivate(rows: Mapping[str, Module | Step], keep: set[str],
                counts: Counts) -> None:
    for key, row in rows.items():
        if key not in keep and row.is_active:
            row.is_active = False
            counts.deactivated += 1


# ------------------------------------------------------------------------ step data


def _media_file(value: str, module_key: str) -> dict[str, str]:
    name = normal_relative(value.strip()) or ""
    return {"file": name, "src": media_url(module_key, name)}


def _read_data(meta: dict[str, Any], module_key: str) -> dict[str, Any]:
    panels = []
    for panel in meta.get("panels") or []:
        image = _media_file(panel["image"], module_key)
        panels.append({"image": image["file"], "src": image["src"], "alt": panel["alt"].strip(),
                       "caption_html": render_markdown(panel.get("caption") or "", module_key)})
    return {"panels": panels}


def _video_data(meta: dict[str, Any], module_key: str) -> dict[str, Any]:
    video = _media_file(meta["video"], module_key) if meta.get("video") else None
    if video is not None:
        video["type"] = _VIDEO_TYPES.get(PurePosixPath(video["file"]).suffix.lower(), "video/mp4")
    captions = _media_file(meta["captions"], module_key) if meta.get("captions") else None
    url = meta["url"].strip() if meta.get("url") else None
    return {"video": video, "captions": captions, "url": url,
            "transcript_html": render_markdown(meta.get("transcript") or "", module_key)}


def _prompt_data(meta: dict[str, Any], module_key: str) -> dict[str, Any]:
    prompt = meta["prompt"].strip()
    return {"prompt": prompt, "prompt_html": render_markdown(prompt, module_key)}


def _quiz_data(meta: dict[str, Any], module_key: str) -> dict[str, Any]:
    questions = []
    for question in meta["questions"]:
        options = [{"text": option["text"].strip(), "correct": option.get("correct") is True,
                    "feedback_html": render_markdown(option.get("feedback") or "", module_key)}
                   for option in question["options"]]
        questions.append({"text": question["text"].strip(), "options": options,
                          "multiple": sum(option["correct"] for option in options) > 1})
    return {"questions": questions,
            "pass_mark": float(meta.get("pass_mark", DEFAULT_PASS_MARK))}


def _action_data(meta: dict[str, Any], module_key: str) -> dict[str, Any]:
    return {**_prompt_data(meta, module_key),
            "check_after_days": int(meta.get("check_after_days", DEFAULT_CHECK_AFTER_DAYS))}


def _checkpoint_data(meta: dict[str, Any], module_key: str) -> dict[str, Any]:
    question = meta.get("question")
    return {"question": question.strip() if question else DEFAULT_CHECKPOINT_QUESTION}


_KIND_DATA: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "read": _read_data,
    "video": _video_data,
    "reflect": _prompt_data,
    "quiz": _quiz_data,
    "action": _action_data,
    "checkpoint": _checkpoint_data,
}


def _image_tag(image: MarkdownImage | None, module_key: str) -> str:
    name = normal_relative(image.src) if image is not None else None
    if image is None or name is None:
        return ""
    return (f'<img src="{escape(media_url(module_key, name))}" alt="{escape(image.alt)}" '
            'loading="lazy">')
