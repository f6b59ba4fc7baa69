"""A corpus of known cross-site-scripting payloads, and a checker for rendered pages.

``PAYLOADS`` holds (payload, what it tries) pairs: script tags, event handlers,
``javascript:`` links with encoded and obfuscated variants, SVG/MathML, frames and
plugins, ``data:`` URLs, CSS tricks, entity- and percent-encoded text, mutation-XSS
(markup that changes meaning when a browser re-parses it) and Markdown link and image
tricks. Tests post them wherever people type text that others see, then call
:func:`assert_no_active_markup` on every page that shows it.

The checker parses with the standard library's ``html.parser`` (entities in attribute
values are decoded, as a browser would) and lists every piece of active markup. A whole
page has some on purpose (the stylesheet ``<link>``, the sign-out ``<form>``); pass the
same page rendered with harmless text as ``baseline`` and only what the payload added
counts.
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser

PAYLOADS: list[tuple[str, str]] = [
    # --- script tags
    ("<script>alert(1)</script>", "plain script tag"),
    ("<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "upper-case external script"),
    ("<scr<script>ipt>alert(1)</scr</script>ipt>", "nested tags that reassemble once stripped"),
    ("<script/x>alert(1)</script>", "slash instead of a space in the tag"),
    ('"><script>alert(1)</script>', "breaks out of a double-quoted attribute"),
    ("'><script>alert(1)</script>", "breaks out of a single-quoted attribute"),
    ("</title><script>alert(1)</script>", "closes the page title first"),
    ("<template><script>alert(1)</script></template>", "script inside a template element"),
    # --- event handlers
    ("<img src=x onerror=alert(1)>", "image error handler"),
    ('<img src="x" onerror="&#97;lert(1)">', "entity-encoded handler body"),
    ("<img src=x:alert(alt) onerror=eval(src) alt=0>", "handler that evaluates its own src"),
    ("<body onload=alert(1)>", "body load handler"),
    ("<input autofocus onfocus=alert(1)>", "fires without a click via autofocus"),
    ("<details open ontoggle=alert(1)>", "fires on page load via open details"),
    ("<video><source onerror=alert(1)></video>", "media source error handler"),
    ("<marquee onstart=alert(1)>x</marquee>", "legacy marquee handler"),
    ("<xss id=x tabindex=1 onfocusin=alert(1)></xss>", "handler on a made-up element"),
    ('<a href="#" onclick="alert(1)">x</a>', "click handler on a link"),
    ("Oak' contenteditable x'", "breaks out of a single-quoted attribute with "
     "only letters, spaces and quotes (passes the display-name rules)"),
    ("Sam' hidden autofocus '", "the same, as a plausible name"),
    # --- javascript:/vbscript: links, encoded and obfuscated
    ('<a href="javascript:alert(1)">x</a>', "javascript: link"),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', "mixed-case scheme"),
    ('<a href=" javascript:alert(1)">x</a>', "leading space before the scheme"),
    ('<a href="jav&#x09;ascript:alert(1)">x</a>', "tab entity inside the scheme"),
    ('<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
     "decimal entities"),
    ('<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;:alert(1)">x</a>',
     "hex entities"),
    ('<a href="javascript&colon;alert(1)">x</a>', "named entity for the colon"),
    ('<a href="vbscript:msgbox(1)">x</a>', "vbscript: link"),
    # --- SVG and MathML
    ("<svg onload=alert(1)>", "SVG load handler"),
    ("<svg><script>alert(1)</script></svg>", "script inside SVG"),
    ('<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>',
     "SVG link with xlink:href"),
    ('<svg><animate attributeName="href" values="javascript:alert(1)"/></svg>',
     "SVG animation that rewrites a link"),
    ('<math href="javascript:alert(1)">x</math>', "MathML link"),
    ("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
     "MathML namespace confusion (mutation XSS)"),
    # --- frames, plugins, data: URLs
    ('<iframe src="javascript:alert(1)"></iframe>', "iframe running a javascript: URL"),
    ('<iframe srcdoc="<script>alert(1)</script>"></iframe>', "iframe with inline document"),
    ('<object data="javascript:alert(1)"></object>', "object element"),
    ('<embed src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">', "embed of SVG"),
    ('<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
     "data: URL link"),
    ('<form action="javascript:alert(1)"><button>x</button></form>', "form posting to script"),
    ('<button formaction="javascript:alert(1)">x</button>', "formaction on a button"),
    # --- CSS
    ('<div style="background:url(javascript:alert(1))">x</div>', "style attribute URL"),
    ('<div style="width: expression(alert(1))">x</div>', "old IE CSS expression"),
    ("<style>@import 'http://evil.example/x.css';</style>", "style element import"),
    ("<link rel=stylesheet href=http://evil.example/x.css>", "external stylesheet"),
    # --- page-level tags
    ('<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', "meta refresh"),
    ('<base href="http://evil.example/">', "base URL hijack"),
    # --- mutation XSS (changes meaning when re-parsed)
    ('<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
     "noscript parsing differs with scripting on"),
    ('<!--<img src="--><img src=x onerror=alert(1)//">', "comment that ends inside an attribute"),
    ("<listing>&lt;img src=x onerror=alert(1)&gt;</listing>", "entities decoded by listing"),
    # --- encoded text that must stay text
    ("&lt;script&gt;alert(1)&lt;/script&gt;", "pre-encoded entities (double decoding)"),
    ("%3Cscript%3Ealert(1)%3C%2Fscript%3E", "percent-encoded tags"),
    ("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e", "JavaScript escapes as text"),
    ("\uff1cscript\uff1ealert(1)\uff1c/script\uff1e", "full-width angle brackets"),
    ("{{ 7 * 7 }}{% raw %}", "template syntax (must not be evaluated)"),
    # --- Markdown link and image tricks
    ("[x](javascript:alert(1))", "Markdown javascript: link"),
    ("[x](JaVaScRiPt:alert(1))", "Markdown mixed-case scheme"),
    ("[x](javascript&colon;alert(1))", "Markdown link with an entity colon"),
    ("[x](&#106;avascript:alert(1))", "Markdown link with an entity letter"),
    ("[x](vbscript:msgbox(1))", "Markdown vbscript: link"),
    ("[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", "Markdown data: link"),
    ("![x](javascript:alert(1))", "Markdown image with a javascript: source"),
    ('![x](x "a" onerror="alert(1)")', "Markdown image title breaking out"),
    ("<javascript:alert(1)>", "Markdown autolink"),
    ("[x][evil]\n\n[evil]: javascript:alert(1)", "Markdown reference link"),
    ('[x](http://example.org "t\\" onmouseover=\\"alert(1)")', "Markdown title breakout"),
    ("[<img src=x onerror=alert(1)>](http://example.org)", "HTML inside link text"),
    ("**<script>alert(1)</script>**", "HTML inside emphasis"),
]


#: elements that never belong in user content
ACTIVE_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg",
               "math", "style", "link", "meta", "base", "form", "template", "portal"}
#: attributes whose value is a URL a browser may load or navigate to
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "srcset", "poster",
                  "background", "data", "lowsrc", "dynsrc", "codebase", "ping"}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:")
#: browsers ignore ASCII whitespace and control characters inside a URL's scheme
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")


def _bad_url(value: str) -> bool:
    return _IGNORED_IN_SCHEME.sub("", value).lower().startswith(BAD_SCHEMES)


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ACTIVE_TAGS:
            self.found.append(f"<{tag} {sorted((k, v or '') for k, v in attrs)}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.found.append(f"{name}= on <{tag}>")
            elif name in ("style", "srcdoc", "http-equiv", "autofocus", "contenteditable"):
                self.found.append(f"{name}= on <{tag}>: {value[:60]}")
            elif name in URL_ATTRIBUTES and _bad_url(value):
                self.found.append(f"{value[:40]!r} in {name}= of <{tag}>")

    handle_startendtag = handle_starttag


def active_markup(html: str) -> list[str]:
    """Every piece of active markup in ``html``, described (empty when there is none)."""
    finder = _Finder()
    finder.feed(html)
    finder.close()
    return finder.found


def assert_no_active_markup(html: str, *, baseline: str | None = None) -> None:
    """Fail if ``html`` holds active markup: script, frames, plugins, SVG/MathML, style,
    link/meta/base, forms, ``on*``/``style``/``srcdoc``/``http-equiv`` attributes, or a
    ``javascript:``/``vbscript:``/``data:`` URL (and ``autofocus``/``contenteditable``,
    which an attribute breakout adds without ``=``). With ``baseline`` (the same page
    without the payload), only markup beyond the baseline's counts."""
    found = Counter(active_markup(html))
    if baseline is not None:
        found -= Counter(active_markup(baseline))
    assert not found, f"active markup reached the page: {sorted(found)}"
