"""YAML documents that remember the line of every key, and the small value checks that
report a problem at that line.

PyYAML's composer gives each node a start mark; ``load_yaml`` keeps a map from key paths
such as ``("questions", 0, "options")`` to file lines, so a problem found in the
constructed data can still point at the line the author has to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from modules.library.sources import ID_PATTERN, Problem

Where = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """A YAML document (a whole file, or a step's front matter) and where things are."""

    display: str
    data: Any
    #: the file line of the document's first line
    first_line: int
    problems: list[Problem]
    lines: dict[Where, int] = field(default_factory=dict)

    def line(self, *where: str | int) -> int:
        """The line of the key or item at ``where``, or of its nearest parent."""
        path = tuple(where)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.first_line

    def report(self, message: str, *where: str | int) -> None:
        self.problems.append(Problem(self.display, self.line(*where), message))

    def report_at(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.display, line, message))


def load_yaml(text: str, display: str, first_line: int,
              problems: list[Problem]) -> YamlDoc | None:
    """Parse one YAML document whose first line is file line ``first_line``; None on a
    YAML error, which is reported at the line YAML names."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot be read"
        problems.append(Problem(display, first_line + (mark.line if mark else 0),
                                f"YAML error: {problem}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(display, first_line, f"YAML error: {exc}"))
        return None
    finally:
        if loader is not None:
            loader.dispose()
    doc = YamlDoc(display, data, first_line, problems)
    if node is not None:
        _index_lines(doc, node, ())
    return doc


def _index_lines(doc: YamlDoc, node: yaml.Node, where: Where) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = doc.first_line + key_node.start_mark.line
            if key in seen:
                doc.report_at(line, f"duplicate key '{key}' (first on line {seen[key]})")
            else:
                seen[key] = doc.lines[(*where, key)] = line
            _index_lines(doc, value_node, (*where, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[(*where, index)] = doc.first_line + item.start_mark.line
            _index_lines(doc, item, (*where, index))


def split_front_matter(text: str) -> tuple[str, str, int] | str:
    """(front matter, body, file line where the body starts), or what is wrong. The front
    matter sits between a first line ``---`` and the next ``---``, so it starts on line 2."""
    lines = text.splitlines()
    if not lines or lines[0].rstrip() != "---":
        return ("a step file starts with front matter: a line '---', then id, kind and "
                "title, then another '---'")
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1:]), index + 2
    return "the front matter is not closed: add a line '---' after it"


def text(doc: YamlDoc, data: dict[str, Any], key: str, *where: str | int,
         required: bool = True, label: str | None = None) -> str:
    """The text at ``data[key]`` (stripped), or "" with a problem when it is missing (and
    required: reported at the mapping, with ``label`` or "missing <key>") or not text."""
    value = data.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is None or value == "":
        if required:
            doc.report(label or f"missing {key}", *where)
        return ""
    hint = "; put it in quotes" if isinstance(value, bool | int | float) else ""
    doc.report(f"{key} must be text (it is {value!r}){hint}", *where, key)
    return ""


def whole(doc: YamlDoc, data: dict[str, Any], key: str, low: int, high: int | None = None, *,
          where: Where = (), name: str | None = None, hint: str = "") -> int | None:
    """The whole number at ``data[key]`` from ``low`` to ``high`` (no upper limit when
    None), or None with a problem."""
    value = data.get(key)
    name = name or key
    if value is None:
        doc.report(f"missing {name}", *where)
        return None
    too_big = high is not None and isinstance(value, int) and value > high
    if isinstance(value, bool) or not isinstance(value, int) or value < low or too_big:
        limits = f"from {low} to {high}" if high is not None else f"of {low} or more"
        doc.report(f"{name} must be a whole number {limits} (it is {value!r}){hint}",
                   *where, key)
        return None
    return value


def flag(doc: YamlDoc, data: dict[str, Any], key: str, *, default: bool,
         where: Where = ()) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        doc.report(f"{key} must be true or false (it is {value!r})", *where, key)
        return default
    return value


def check_keys(doc: YamlDoc, data: dict[str, Any], allowed: frozenset[str], what: str,
               *where: str | int) -> None:
    """Report keys the format does not know (usually a typo that would be ignored)."""
    for key in data:
        if key not in allowed:
            doc.report(f"unknown key '{key}' in {what} (allowed: {', '.join(sorted(allowed))})",
                       *where, str(key))


def max_length(doc: YamlDoc, value: str, limit: int, name: str, *where: str | int) -> None:
    if len(value) > limit:
        doc.report(f"{name} is too long ({len(value)} characters, at most {limit})", *where)


def valid_id(value: str, limit: int) -> bool:
    return bool(ID_PATTERN.fullmatch(value)) and len(value) <= limit
