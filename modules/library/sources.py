"""What a content folder holds, as plain dataclasses (no database, no HTML), and the
limits of the content format (``modules/content/README.md``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.models import STEP_KINDS

ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
EVIDENCE = ("cbt", "self-compassion", "positive-psychology", "behavioural-activation",
            "mindfulness", "psychoeducation", "social-skills")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".svg", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".webm"})
CAPTION_SUFFIXES = frozenset({".vtt"})
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES | CAPTION_SUFFIXES
UNLOCK_RULES = ("after", "level", "week")
MIN_STEPS = 4
DEFAULT_PASS_MARK = 0.5
DEFAULT_CHECK_AFTER_DAYS = 3
DEFAULT_CHECKPOINT_QUESTION = "How helpful was this module for you?"

# Column widths in modules.models, so a value that validates also fits.
MAX_PATHWAY_KEY, MAX_MODULE_KEY, MAX_STEP_KEY = 60, 60, 80
MAX_PATHWAY_TITLE, MAX_MODULE_TITLE, MAX_STEP_TITLE = 120, 120, 160

__all__ = ["STEP_KINDS", "Problem", "PathwaySource", "ModuleSource", "StepSource", "Library"]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the content, at a file and a line (1-based)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class PathwaySource:
    key: str
    title: str
    description: str
    #: 1-based, in the order of pathways.yaml
    position: int


@dataclass
class StepSource:
    #: the ``id`` in the front matter
    key: str
    kind: str
    title: str
    #: the Markdown after the front matter
    body: str
    #: the whole front matter as written, kind-specific fields included
    meta: dict[str, Any]
    file: Path
    #: files this step uses, relative to its module folder (pictures, video, captions)
    media: list[str] = field(default_factory=list)


@dataclass
class ModuleSource:
    #: the folder name
    key: str
    folder: Path
    title: str = ""
    summary: str = ""
    pathway: str = ""
    order: int = 0
    minutes: int = 0
    is_core: bool = True
    evidence: list[str] = field(default_factory=list)
    #: {"after": module key} | {"level": n} | {"week": n} | {} (open at once)
    unlock: dict[str, Any] = field(default_factory=dict)
    #: in file-name order
    steps: list[StepSource] = field(default_factory=list)
    #: SHA-256 over module.yaml, the step files and the media files they use
    content_hash: str = ""


@dataclass
class Library:
    root: Path
    pathways: list[PathwaySource]
    #: in folder-name order
    modules: list[ModuleSource]
    #: sorted by path and line; empty when the library may be synced
    problems: list[Problem]

    @property
    def steps(self) -> list[StepSource]:
        return [step for module in self.modules for step in module.steps]
