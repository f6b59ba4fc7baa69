"""axe-core in the browser: every page a journey shows is checked, and a journey fails
on any serious or critical violation, listed readably (rule, impact, element, page), on
a page it was shown without checking it, and on any 5xx response its browser received.

On a phone-sized viewport every checked page is also measured: nothing in ``main`` may
need sideways scrolling (a table whose columns run off the screen, a word too long to
wrap). A phone user rarely finds content hidden to the right, so the journeys treat it as
a failure like a serious axe finding. The navigation bar scrolls sideways by design and is
outside ``main``. Staff data tables (a caseload of nine columns) may scroll inside their
labelled region on a phone (``regions_may_scroll``); the page itself never may.

axe comes from npm (``node_modules/axe-core/axe.min.js``, installed by ``make test``).
Its source is evaluated in the page rather than added as a ``<script>`` tag so the app's
Content-Security-Policy (``script-src 'self'``, no inline scripts) stays in force for the
whole journey instead of being bypassed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page

from tests.e2e.server import REPO

AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")
#: viewports this wide or narrower are phones (the journeys' phone is 390 px)
PHONE_WIDTH = 480
#: scroll containers in main, and the page itself, whose content is wider than their box
FIND_SIDEWAYS = """() => {
  const found = [];
  const root = document.scrollingElement;
  if (root.scrollWidth > window.innerWidth + 1) {
    found.push({what: "the page", by: root.scrollWidth - window.innerWidth, page: true});
  }
  for (const el of document.querySelectorAll("main *")) {
    const overflow = getComputedStyle(el).overflowX;
    if ((overflow === "auto" || overflow === "scroll") && el.scrollWidth > el.clientWidth + 1) {
      const name = el.getAttribute("aria-label") || el.id || el.getAttribute("class") || "";
      found.push({what: el.tagName.toLowerCase() + (name ? ` "${name}"` : ""),
                  by: el.scrollWidth - el.clientWidth, page: false});
    }
  }
  return found;
}"""
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(" ")).slice(0, 5),
  }));
}"""


@cache
def axe_source() -> str:
    if not AXE_JS.exists():
        raise FileNotFoundError(f"{AXE_JS} is missing: run `npm ci` (make test does)")
    return AXE_JS.read_text()


@dataclass(frozen=True)
class Violation:
    page: str
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def line(self) -> str:
        return (f"{self.page}: [{self.impact}] {self.rule} ({self.help}) at "
                f"{'; '.join(self.targets)}")


@dataclass
class AxeAudit:
    """The pages checked so far and what axe found on them."""

    checked: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    #: pages a journey was shown without checking them (a test bug: use Person's helpers)
    unchecked: list[str] = field(default_factory=list)
    #: any 5xx response the browser received on the way (none is acceptable)
    server_errors: list[str] = field(default_factory=list)
    #: content that needs sideways scrolling on a phone, as "page: what (N px too wide)"
    sideways: list[str] = field(default_factory=list)
    #: scrolling regions (staff data tables) may be wider than a phone; the page may not
    regions_may_scroll: bool = False

    def check(self, page: Page, label: str = "") -> list[Violation]:
        """Run axe on the page as it is now; keep and return its violations."""
        page.wait_for_load_state("load")
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate("(source) => { (0, eval)(source); }", axe_source())
        where = urlsplit(page.url).path + (f" ({label})" if label else "")
        found = [Violation(where, v["id"], v["impact"] or "unknown", v["help"],
                           tuple(v["targets"]))
                 for v in page.evaluate(RUN_AXE)]
        self.checked.append(where)
        self.violations.extend(found)
        if (page.viewport_size or {}).get("width", PHONE_WIDTH + 1) <= PHONE_WIDTH:
            self.sideways.extend(f"{where}: {box['what']} ({box['by']} px too wide)"
                                 for box in page.evaluate(FIND_SIDEWAYS)
                                 if box["page"] or not self.regions_may_scroll)
        return found

    def serious(self) -> list[Violation]:
        return [v for v in self.violations if v.impact in FAILING_IMPACTS]

    def assert_clean(self) -> None:
        """Fail on serious or critical violations (fix the template, never excuse them)."""
        assert not self.server_errors, "server errors: " + ", ".join(self.server_errors)
        assert not self.unchecked, ("pages shown but never checked with axe: "
                                    + ", ".join(self.unchecked))
        assert not self.sideways, ("content needs sideways scrolling on a phone:\n"
                                   + "\n".join(self.sideways))
        serious = self.serious()
        assert not serious, (
            f"axe found {len(serious)} serious or critical accessibility violation(s) on "
            f"{len({v.page for v in serious})} of {len(self.checked)} pages checked:\n"
            + "\n".join(v.line() for v in serious))


def write_report(audits: dict[str, AxeAudit], path: Path) -> None:
    """Every page checked and every violation (all impacts), as Markdown."""
    lines = ["# axe-core findings of the browser journeys", ""]
    for journey, audit in audits.items():
        lines += [f"## {journey}: {len(audit.checked)} pages checked", ""]
        if not audit.violations:
            lines += ["No violations.", ""]
        lines += [f"- {v.line()}" for v in audit.violations]
        lines += [f"- sideways scrolling on a phone: {line}" for line in audit.sideways]
        lines.append("")
    path.write_text("\n".join(lines))
