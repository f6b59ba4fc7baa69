"""The forum's Markdown subset, rendered once when a post or comment is written.

Emphasis, lists, links and line breaks only: markdown-it-py's ``js-default`` preset (raw
HTML is escaped, ``javascript:``/``vbscript:``/``data:`` links are refused) with every
other block and inline rule switched off, then nh3 with an allow-list of eight tags,
``href`` as the only attribute, http/https/mailto as the only link schemes and
``rel="nofollow noopener"`` on every link. Headings, quotes, code, tables and images
typed in a post come out as plain text.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "a"}
ATTRIBUTES = {"a": {"href"}}
URL_SCHEMES = {"http", "https", "mailto"}
#: markdown-it rules the subset leaves out
OFF = ["table", "code", "fence", "blockquote", "hr", "heading", "lheading", "reference",
       "image", "backticks", "strikethrough", "linkify"]

_md = MarkdownIt("js-default", {"breaks": True, "linkify": False}).disable(OFF)


def render(text: str) -> str:
    """Sanitised HTML for ``text`` (call when storing, never when showing)."""
    return nh3.clean(_md.render(text), tags=TAGS, attributes=ATTRIBUTES,
                     url_schemes=URL_SCHEMES, link_rel="nofollow noopener",
                     strip_comments=True).strip()
