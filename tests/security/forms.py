"""Reading the forms on rendered pages: each form's action and its fields (with the
choices of selects and radio buttons), with the standard library's HTML parser."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class _Forms(HTMLParser):
    def __init__(self, page_path: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: dict[str, dict[str, list[str]]] = {}
        self._fields: dict[str, list[str]] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and values.get("method", "get").lower() == "post":
            action = urlsplit(values.get("action") or self.page_path).path
            self._fields = self.forms.setdefault(action, {})
        elif self._fields is None:
            return
        elif tag in ("input", "textarea", "select") and values.get("name"):
            name = values["name"]
            choices = self._fields.setdefault(name, [])
            if tag == "input" and values.get("type") in ("radio", "checkbox", "hidden"):
                choices.append(values.get("value", "y"))
            if tag == "select":
                self._select = name
        elif tag == "option" and self._select:
            self._fields[self._select].append(values.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._fields = None
        elif tag == "select":
            self._select = None


def forms_on(page: str, path: str) -> dict[str, dict[str, list[str]]]:
    """{action path: {field name: choices seen (empty for free text)}} of POST forms."""
    parser = _Forms(path)
    parser.feed(page)
    parser.close()
    return parser.forms


def csrf_token(page: str) -> str | None:
    match = TOKEN.search(page)
    return match.group(1) if match else None
