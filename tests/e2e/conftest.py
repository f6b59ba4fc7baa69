"""Fixtures for the browser journeys: the real app under gunicorn, Debian's chromium, and
a ``Person`` per browser (one signed-in human each) that checks every page it is shown
with axe-core and saves screenshots of key pages in ``tests/e2e/artifacts/``.

The journeys run once per session (not once per database backend): on PostgreSQL when
``TEST_DATABASE_URL`` is set, else on SQLite. They share one seeded demo study; each
journey makes the people it needs, so a module can also run alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.e2e.axe import AxeAudit, write_report
from tests.e2e.people import Person
from tests.e2e.server import (
    REPO,
    ScratchDatabase,
    Server,
    free_port,
    prepare,
    server_env,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# Debian's chromium as root in a container: no sandbox, and no background traffic to
# Google's hosts (this machine has no network; the refusals slow chromium down).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

_audits: dict[str, AxeAudit] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.slow)


def require_browser(path: Path, *, ci: bool) -> None:
    """A missing chromium fails the run in CI and skips the journeys elsewhere."""
    if path.exists():
        return
    missing = (f"{path} is missing: install Debian's chromium (apt-get install chromium); "
               "the browser journeys never download a browser")
    if ci:
        pytest.fail(missing)
    pytest.skip(reason=f"no browser here (CI fails instead): {missing}")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright launches this: Debian's chromium, never a downloaded browser."""
    require_browser(CHROMIUM, ci=os.environ.get("CI") == "true")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM),
            "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def artifacts() -> Iterator[Path]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    yield ARTIFACTS
    write_report(_audits, ARTIFACTS / "accessibility.md")


@pytest.fixture(scope="session")
def server(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn (platform/gunicorn.conf.py, 2 workers) on a migrated, seeded database."""
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("e2e")
    database = ScratchDatabase.create(os.environ.get("TEST_DATABASE_URL"), tmp)
    port = free_port()
    app = Server(base_url=f"http://127.0.0.1:{port}",
                 env=server_env(database.url, tmp / "instance", port),
                 log_path=artifacts / "gunicorn.log")
    try:
        prepare(app)
        app.site = _guided_site(app)
        app.start()
        app.timings["server ready"] = time.monotonic() - started
        yield app
    finally:
        app.stop()
        database.drop()
        (artifacts / "timings.txt").write_text("".join(
            f"{name}: {seconds:.1f} s\n" for name, seconds in app.timings.items()))


def _guided_site(app: Server) -> str:
    result = subprocess.run([sys.executable, "-m", "tests.e2e.trial_site"], cwd=REPO,
                            env=app.env, capture_output=True, text=True, timeout=120,
                            check=True)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def people(request: pytest.FixtureRequest, browser: Browser, server: Server,
           artifacts: Path) -> Iterator[Callable[..., Person]]:
    """Make a ``Person`` (own browser context) for this journey: ``people("name")``."""
    journey = request.node.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    audit = _audits.setdefault(journey, AxeAudit(
        regions_may_scroll=getattr(request.module, "REGIONS_MAY_SCROLL", False)))
    made: list[Person] = []

    def make(name: str, *, phone: bool = True) -> Person:
        context = browser.new_context(viewport=PHONE if phone else DESKTOP,
                                      base_url=server.base_url, accept_downloads=True)
        context.set_default_timeout(15_000)
        person = Person(name, context.new_page(), audit, artifacts / journey)
        made.append(person)
        return person

    started = time.monotonic()
    yield make
    server.timings[request.node.name] = time.monotonic() - started
    for person in made:
        person.close()
