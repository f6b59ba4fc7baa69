"""Markdown to safe HTML, rendered once when text is written, never per view.

markdown-it-py's ``js-default`` preset (raw HTML off, dangerous links refused)
and then nh3 (an allow-list sanitiser) so nothing active can reach a page, and
links get ``rel="nofollow noopener"``.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("js-default", {"breaks": True, "linkify": False})

TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "a", "h2", "h3", "h4", "blockquote", "code"}
ATTRIBUTES = {"a": {"href", "title"}}


def render(text: str, *, extra_tags: set[str] | None = None) -> str:
    html = _md.render(text)
    return nh3.clean(
        html,
        tags=TAGS | (extra_tags or set()),
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="nofollow noopener",
    )
