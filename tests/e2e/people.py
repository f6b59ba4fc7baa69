"""``Person``: one human in their own browser, driving Kinship only through its pages.

Every page the person is shown goes through axe (``settle``), so a journey cannot show a
page without checking it; ``shot`` saves a screenshot of a key page for the artefacts.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import BrowserContext, Locator, Page, Response, expect

from tests.e2e.axe import AxeAudit

DEMO_PASSWORD = "kinship-demo-2026"  # outcomes/demo.py, demo mode only


class Person:
    def __init__(self, name: str, page: Page, audit: AxeAudit, shots: Path) -> None:
        self.name = name
        self.page = page
        self.context: BrowserContext = page.context
        self.audit = audit
        self.shots = shots
        self._shot_number = 0
        self._unchecked: str | None = None  # a page that loaded and axe has not seen yet
        page.on("load", self._loaded)
        page.on("response", self._response)

    def _response(self, response: Response) -> None:
        if response.status >= 500:
            self.audit.server_errors.append(f"{response.status} {response.url}")

    def _loaded(self, page: Page) -> None:
        if self._unchecked is not None:  # the page before this one was never checked
            self.audit.unchecked.append(self._unchecked)
        self._unchecked = page.url

    # --- looking ------------------------------------------------------------------------

    @property
    def main(self) -> Locator:
        return self.page.locator("main")

    def text(self) -> str:
        return self.main.inner_text()

    def settle(self, label: str = "") -> None:
        """The page is loaded: check it with axe (every page a journey shows)."""
        self.audit.check(self.page, label)
        self._unchecked = None

    def shot(self, name: str) -> Path:
        self._shot_number += 1
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{self._shot_number:02d}-{self.name}-{name}.png"
        # the whole page at the viewport's width (the nav scroller's hidden overflow would
        # otherwise widen a full-page shot of a phone screen)
        width = self.page.viewport_size["width"]
        height = self.page.evaluate("() => document.documentElement.scrollHeight")
        self.page.screenshot(path=str(path), full_page=True,
                             clip={"x": 0, "y": 0, "width": width, "height": height})
        return path

    def sees(self, text: str | re.Pattern[str]) -> None:
        expect(self.main).to_contain_text(text)

    # --- moving -------------------------------------------------------------------------

    def goto(self, path: str, label: str = "") -> int:
        """Open a path (as if typed or bookmarked); return the HTTP status."""
        response = self.page.goto(path)
        self.settle(label)
        return response.status if response else 0

    def press(self, name: str | re.Pattern[str], *, within: Locator | None = None,
              label: str = "") -> None:
        """Press a button that submits a form, and wait for the page it leads to."""
        button = (within or self.main).get_by_role("button", name=name)
        with self.page.expect_navigation():
            button.first.click()
        self.settle(label)

    def follow(self, name: str | re.Pattern[str], *, within: Locator | None = None,
               label: str = "") -> None:
        link = (within or self.main).get_by_role("link", name=name)
        with self.page.expect_navigation():
            link.first.click()
        self.settle(label)

    def tab_to(self, target: Locator, *, limit: int = 80) -> None:
        """Press Tab (only Tab) until ``target`` has the keyboard focus."""
        element = target.first
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            if element.evaluate("el => el === document.activeElement"):
                return
        raise AssertionError(f"{limit} presses of Tab never reached {target}")

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.page.keyboard.press(key)

    def submit_with_keyboard(self, *keys: str, label: str = "") -> None:
        """Press keys of which the last one submits a form (Enter or Space on a button)."""
        with self.page.expect_navigation():
            self.keys(*keys)
        self.settle(label)

    # --- signing in ---------------------------------------------------------------------

    def sign_in(self, identifier: str, password: str = DEMO_PASSWORD) -> None:
        self.goto("/login")
        self.main.get_by_label("E-mail, study code or display name").fill(identifier)
        self.main.get_by_label("Password").fill(password)
        self.press("Sign in")
        if self.page.url.endswith("/login/code"):
            # demo mode shows the demo account's current code on the page
            code = self.main.locator("strong.code").inner_text().strip()
            self.main.get_by_label(re.compile("^Code from your authenticator")).fill(code)
            self.press("Continue")
        expect(self.page).not_to_have_url(re.compile(r"/login"))

    def sign_out(self) -> None:
        with self.page.expect_navigation():
            self.page.locator("header").get_by_role("button", name="Sign out").click()
        self.settle()

    def close(self) -> None:
        if self._unchecked is not None:
            self.audit.unchecked.append(self._unchecked)
        self.context.close()
