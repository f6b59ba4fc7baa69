"""The journeys' phone layout check, in the real browser: content that runs off a phone's
screen fails the journey; content that wraps, and wide tables on a desktop, do not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e import axe
from tests.e2e.conftest import DESKTOP, PHONE

PAGE = """<!doctype html><html lang="en"><head><title>Layout</title><style>
.table-wrap {{ overflow-x: auto; }} th {{ white-space: {wrap}; }}
</style></head><body><nav aria-label="Main"><p>Kinship</p></nav><main>
<div class="table-wrap" tabindex="0" role="region" aria-label="Your progress in each module">
<table><caption>Modules</caption><tr><th scope="row">Noticing the thoughts that keep us
apart from the people around us</th><td>0 of 4</td><td>Locked: finish the module before
this one first</td></tr></table></div></main></body></html>"""


@pytest.fixture
def open_page(browser: Browser) -> Iterator:
    contexts = []

    def make(viewport: dict, wrap: str) -> Page:
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        page.set_content(PAGE.format(wrap=wrap))
        return page

    yield make
    for context in contexts:
        context.close()


def test_a_table_that_runs_off_a_phone_fails(open_page) -> None:
    audit = axe.AxeAudit()
    audit.check(open_page(PHONE, "nowrap"), "progress")
    assert len(audit.sideways) == 1
    assert 'div "Your progress in each module"' in audit.sideways[0]
    with pytest.raises(AssertionError, match="sideways scrolling on a phone"):
        audit.assert_clean()


def test_the_same_table_wrapped_fits_a_phone(open_page) -> None:
    audit = axe.AxeAudit()
    audit.check(open_page(PHONE, "normal"), "progress")
    assert audit.sideways == []


def test_desktop_pages_may_scroll_wide_tables(open_page) -> None:
    page = open_page(DESKTOP, "nowrap")
    page.evaluate("() => { document.querySelector('table').style.minWidth = '2000px'; }")
    audit = axe.AxeAudit()
    audit.check(page, "caseload")
    assert audit.sideways == []


def test_staff_tables_may_scroll_in_their_region_but_not_the_page(open_page) -> None:
    page = open_page(PHONE, "nowrap")
    audit = axe.AxeAudit(regions_may_scroll=True)
    audit.check(page, "caseload")
    assert audit.sideways == []
    # an absolutely placed label past the table's edge widens the page itself
    page.evaluate("""() => {
      const label = document.createElement('span');
      label.textContent = 'Move down';
      label.style.position = 'absolute';
      label.style.left = '700px';
      document.querySelector('td').append(label);
    }""")
    audit.check(page, "rota")
    assert len(audit.sideways) == 1
    assert "(rota): the page (" in audit.sideways[0]
