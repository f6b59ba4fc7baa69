"""The forum's Markdown subset: emphasis, lists, links and line breaks; nothing else
becomes markup, and links are safe."""

from __future__ import annotations

import pytest

from forum.markup import render


def test_the_subset_renders():
    assert render("*so* **glad**\nnext line") == (
        "<p><em>so</em> <strong>glad</strong><br>\nnext line</p>")
    assert render("- one\n- two") == "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"
    assert render("1. one\n2. two") == "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"


@pytest.mark.parametrize("text", ["[site](https://example.org)", "<https://example.org>",
                                  "[site](http://example.org)", "[me](mailto:a@example.org)"])
def test_links_get_nofollow_noopener(text):
    html = render(text)
    assert 'rel="nofollow noopener"' in html
    assert html.count("<a ") == 1


@pytest.mark.parametrize("text", ["[x](tel:+441234)", "[x](ftp://example.org)",
                                  "[x](javascript:alert(1))", "[x](data:text/html,hi)",
                                  "[x](file:///etc/passwd)"])
def test_other_link_schemes_lose_their_href(text):
    assert "href" not in render(text)


@pytest.mark.parametrize("text, kept", [
    ("# Big heading", "# Big heading"), ("> quoted", "quoted"), ("`code`", "`code`"),
    ("![alt](https://example.org/x.png)", "alt"), ("---", "---"),
    ("<b>raw</b>", "&lt;b&gt;raw&lt;/b&gt;"), ("| a | b |\n|---|---|\n| 1 | 2 |", "| a | b |"),
])
def test_everything_else_stays_text(text, kept):
    html = render(text)
    assert kept in html
    for tag in ("<h1", "<blockquote", "<code", "<img", "<hr", "<b>", "<table"):
        assert tag not in html
