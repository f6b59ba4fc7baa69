"""Markdown to safe HTML, rendered once when text is written, never per view.

markdown-it-py's ``js-default`` preset (raw HTML off, dangerous links refused)
and then nh3 (an allow-list sanitiser) so nothing active can reach a page, and
links get ``rel="nofollow noopener"``.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

#: with ``breaks`` a single newline is a line break (forum posts, typed on phones);
#: without, it is a space (authored content, whose paragraphs may be wrapped in the file)
_md = {breaks: MarkdownIt("js-default", {"breaks": breaks, "linkify": False})
       for breaks in (True, False)}

TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "a", "h2", "h3", "h4", "blockquote", "code"}
ATTRIBUTES = {"a": {"href", "title"}}


def render(text: str, *, extra_tags: set[str] | None = None, breaks: bool = True) -> str:
    html = _md[breaks].render(text)
    return nh3.clean(
        html,
        tags=TAGS | (extra_tags or set()),
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="nofollow noopener",
    )
