"""Read a whole content folder: pathways.yaml, each module folder, and the checks that
need more than one file (pathway references, unlock rules, duplicate step ids)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.library import documents as d
from modules.library.documents import YamlDoc
from modules.library.media import content_root
from modules.library.sources import (
    EVIDENCE,
    MAX_MODULE_KEY,
    MAX_MODULE_TITLE,
    MAX_PATHWAY_KEY,
    MAX_PATHWAY_TITLE,
    MIN_STEPS,
    UNLOCK_RULES,
    Library,
    ModuleSource,
    PathwaySource,
    Problem,
)
from modules.library.steps import read_step

_PATHWAY_KEYS = frozenset({"id", "title", "description"})
_MODULE_KEYS = frozenset({"title", "summary", "pathway", "order", "minutes", "core",
                          "evidence", "unlock"})


@dataclass
class _Loader:
    root: Path
    display_root: str
    problems: list[Problem] = field(default_factory=list)
    #: module key -> its module.yaml document, for the checks across modules
    docs: dict[str, YamlDoc] = field(default_factory=dict)
    #: step id -> where it was first seen, "path:line"
    step_ids: dict[str, str] = field(default_factory=dict)

    def display(self, path: Path) -> str:
        return f"{self.display_root}/{path.relative_to(self.root).as_posix()}"

    def report(self, path: Path, line: int, message: str) -> None:
        self.problems.append(Problem(self.display(path), line, message))

    def read_text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            self.report(path, 1, "not UTF-8 text: save the file as UTF-8")
            return None

    def read_yaml(self, path: Path) -> YamlDoc | None:
        content = self.read_text(path)
        if content is None:
            return None
        return d.load_yaml(content, self.display(path), 1, self.problems)


#: first path segments under /modules/ that are pages, not modules (see modules/views.py)
RESERVED_MODULE_KEYS = frozenset({"today", "progress", "mood", "media", "actions",
                                  "suggestions"})


def load_library(root: Path | str | None = None, *, display: str | None = None) -> Library:
    """Read and check the content folder ``root`` (default: ``content_root()``), collecting
    every problem. Problem paths start with ``display`` (default: the folder's own name,
    so paths are relative to the folder's parent)."""
    root = Path(root) if root is not None else content_root()
    loader = _Loader(root, (display or "").rstrip("/") or root.name)
    if not root.is_dir():
        loader.problems.append(Problem(loader.display_root, 1, "no such folder"))
        return Library(root, [], [], loader.problems)
    pathways = _read_pathways(loader)
    folders = sorted(path for path in root.iterdir()
                     if path.is_dir() and not path.name.startswith((".", "_")))
    modules = [_read_module(loader, folder) for folder in folders]
    _check_across_modules(loader, modules, pathways)
    return Library(root, pathways or [], modules, sorted(loader.problems))


# --------------------------------------------------------------------------- pathways


def _read_pathways(loader: _Loader) -> list[PathwaySource] | None:
    """The pathways, or None when pathways.yaml is missing or unreadable (modules'
    pathway references are then not checked, rather than one problem per module)."""
    path = loader.root / "pathways.yaml"
    if not path.is_file():
        loader.report(path, 1, "missing pathways.yaml: list the pathways here (see the README)")
        return None
    doc = loader.read_yaml(path)
    if doc is None:
        return None
    if not isinstance(doc.data, list) or not doc.data:
        doc.report("pathways.yaml must be a list of pathways, each '- id: ...' with a title")
        return None
    pathways: list[PathwaySource] = []
    for index, item in enumerate(doc.data):
        pathway = _read_pathway(doc, index, item, {p.key for p in pathways})
        if pathway is not None:
            pathways.append(pathway)
    return pathways


def _read_pathway(doc: YamlDoc, index: int, item: Any, seen: set[str]) -> PathwaySource | None:
    if not isinstance(item, dict):
        doc.report(f"pathway {index + 1} must have id: and title:", index)
        return None
    d.check_keys(doc, item, _PATHWAY_KEYS, "a pathway", index)
    key = d.text(doc, item, "id", index, label=f"pathway {index + 1} has no id")
    if key and not d.valid_id(key, MAX_PATHWAY_KEY):
        doc.report(f"pathway id '{key}' must be lower-case letters, digits and dashes "
                   f"(at most {MAX_PATHWAY_KEY})", index, "id")
    elif key in seen:
        doc.report(f"duplicate pathway id '{key}'", index, "id")
        return None
    title = d.text(doc, item, "title", index, label=f"pathway '{key}' has no title")
    d.max_length(doc, title, MAX_PATHWAY_TITLE, "title", index, "title")
    description = d.text(doc, item, "description", index, required=False)
    return PathwaySource(key, title, description, index + 1) if key else None


# ---------------------------------------------------------------------------- modules


def _read_module(loader: _Loader, folder: Path) -> ModuleSource:
    module = ModuleSource(key=folder.name, folder=folder)
    doc = _read_module_yaml(loader, module)
    step_files = _step_files(loader, folder)
    for path in step_files:
        content = loader.read_text(path)
        step = None if content is None else read_step(
            path, content, loader.display(path), loader.problems, loader.step_ids)
        if step is not None:
            module.steps.append(step)
    if doc is not None:
        _check_module_shape(doc, module, unreadable=len(step_files) - len(module.steps))
    module.content_hash = _content_hash(module, step_files)
    return module


def _read_module_yaml(loader: _Loader, module: ModuleSource) -> YamlDoc | None:
    path = module.folder / "module.yaml"
    if not path.is_file():
        loader.report(path, 1, "missing module.yaml: every module folder needs one "
                               "(see the README)")
        return None
    doc = loader.read_yaml(path)
    if doc is None:
        return None
    if not isinstance(doc.data, dict):
        doc.report("module.yaml must be 'key: value' lines (title, summary, pathway, ...)")
        return None
    if not d.valid_id(module.key, MAX_MODULE_KEY):
        doc.report(f"the folder name '{module.key}' is the module id: use lower-case letters, "
                   f"digits and dashes (at most {MAX_MODULE_KEY})")
    elif module.key in RESERVED_MODULE_KEYS:
        doc.report(f"the folder name '{module.key}' is taken by a page of the app "
                   f"(/modules/{module.key}); choose another name")
    _fill_module(doc, module)
    loader.docs[module.key] = doc
    return doc


def _fill_module(doc: YamlDoc, module: ModuleSource) -> None:
    data: dict[str, Any] = doc.data
    d.check_keys(doc, data, _MODULE_KEYS, "module.yaml")
    module.title = d.text(doc, data, "title")
    d.max_length(doc, module.title, MAX_MODULE_TITLE, "title", "title")
    module.summary = d.text(doc, data, "summary")
    module.pathway = d.text(doc, data, "pathway")
    module.order = d.whole(doc, data, "order", 0) or 0
    module.minutes = d.whole(doc, data, "minutes", 1, 120) or 0
    module.is_core = d.flag(doc, data, "core", default=True)
    module.evidence = _evidence(doc, data)
    module.unlock = _unlock(doc, data, module.key)


def _evidence(doc: YamlDoc, data: dict[str, Any]) -> list[str]:
    value = data.get("evidence")
    if not isinstance(value, list) or not value:
        doc.report("evidence must be a list of one or more of: " + ", ".join(EVIDENCE),
                   "evidence")
        return []
    for index, item in enumerate(value):
        if item not in EVIDENCE:
            doc.report(f"unknown evidence '{item}': use one of " + ", ".join(EVIDENCE),
                       "evidence", index)
    return [str(item) for item in value]


def _unlock(doc: YamlDoc, data: dict[str, Any], module_key: str) -> dict[str, Any]:
    """The unlock rule checked on its own; whether an ``after`` module exists (and
    cycles) is checked once every module has been read."""
    value = data.get("unlock")
    if value is None:
        return {}
    rules = [rule for rule in UNLOCK_RULES if rule in value] if isinstance(value, dict) else []
    if len(rules) != 1:
        found = f" (it has {' and '.join(rules)})" if rules else ""
        doc.report(f"unlock needs exactly one of after, level or week{found}", "unlock")
        return {}
    d.check_keys(doc, value, frozenset(UNLOCK_RULES), "unlock", "unlock")
    rule = rules[0]
    if rule == "after":
        after = d.text(doc, value, "after", "unlock", label="unlock after needs a module id")
        if after == module_key:
            doc.report("unlock after itself: no one could ever open this module",
                       "unlock", "after")
        return {"after": after} if after else {}
    level = rule == "level"
    number = d.whole(doc, value, rule, 2 if level else 1, where=("unlock",),
                     name=f"unlock {rule}", hint="; everyone starts at level 1" if level else "")
    return {rule: number} if number is not None else {}


def _step_files(loader: _Loader, folder: Path) -> list[Path]:
    """The step files in name order; any other file in the folder's top level (except
    module.yaml and names starting with "." or "_") is a problem."""
    steps = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")) or path.is_dir() or path.name == "module.yaml":
            continue
        if path.suffix.lower() == ".md":
            steps.append(path)
        else:
            loader.report(path, 1, f"unexpected file '{path.name}': steps are Markdown files "
                                   "(.md); put pictures in images/ and videos in media/")
    return steps


def _check_module_shape(doc: YamlDoc, module: ModuleSource, *, unreadable: int) -> None:
    count = len(module.steps) + unreadable
    if count < MIN_STEPS:
        doc.report(f"a module needs at least {MIN_STEPS} steps (this one has {count})")
    if unreadable:  # their kinds are unknown: do not claim a quiz or action is missing
        return
    kinds = {step.kind for step in module.steps}
    if "quiz" not in kinds:
        doc.report("a module needs at least one quiz step")
    if "action" not in kinds:
        doc.report("a module needs at least one action step")


def _content_hash(module: ModuleSource, step_files: list[Path]) -> str:
    digest = hashlib.sha256()
    media = sorted({name for step in module.steps for name in step.media})
    paths = [module.folder / "module.yaml", *step_files, *(module.folder / m for m in media)]
    for path in paths:
        if path.is_file():
            digest.update(path.relative_to(module.folder).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# ----------------------------------------------------------------- across the library


def _check_across_modules(loader: _Loader, modules: list[ModuleSource],
                          pathways: list[PathwaySource] | None) -> None:
    if pathways is not None:
        _check_pathway_references(loader, modules, {p.key for p in pathways})
    keys = {module.key for module in modules}
    for module in modules:
        after = module.unlock.get("after")
        if after and after != module.key and after not in keys:
            loader.docs[module.key].report(
                f"unlock after '{after}': there is no module folder with that name",
                "unlock", "after")
    for key, cycle in _unlock_cycles(modules).items():
        loader.docs[key].report("unlock cycle: " + " -> ".join(cycle)
                                + " (no one could ever open these modules)", "unlock", "after")


def _check_pathway_references(loader: _Loader, modules: list[ModuleSource],
                              known: set[str]) -> None:
    orders: dict[tuple[str, int], str] = {}
    for module in modules:
        doc = loader.docs.get(module.key)
        if doc is None or not module.pathway:
            continue
        if module.pathway not in known:
            doc.report(f"unknown pathway '{module.pathway}': use one of "
                       + ", ".join(sorted(known)), "pathway")
            continue
        slot = (module.pathway, module.order)
        if slot in orders:
            doc.report(f"order {module.order} is also used by module '{orders[slot]}' in "
                       f"pathway '{module.pathway}'", "order")
        else:
            orders[slot] = module.key


def _unlock_cycles(modules: list[ModuleSource]) -> dict[str, list[str]]:
    """Module key -> the cycle of ``after`` rules it is part of (two or more modules)."""
    after = {m.key: m.unlock["after"] for m in modules if m.unlock.get("after")}
    cycles = {}
    for start in after:
        chain = [start]
        current = after[start]
        while current in after and current not in chain:
            chain.append(current)
            current = after[current]
        if current == start and len(chain) > 1:
            cycles[start] = [*chain, start]
    return cycles
