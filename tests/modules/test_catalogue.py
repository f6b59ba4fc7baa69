"""The per-process module catalogue: kept between syncs, keyed by the content version a
sync stores, so every process sees a sync at its next request."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from core.extensions import db
from core.models import Participant, SiteSetting
from modules import catalogue, services
from modules.library import load_library
from modules.models import Module, Step
from modules.sync import sync_library
from tests.factories import make_participant
from tests.modules.content_rows import make_module
from tests.sql_count import counting

# what the page itself costs, not its cached copy (core.pagecache)
pytestmark = pytest.mark.usefixtures("uncached")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A copy of the good fixture library to edit."""
    return Path(shutil.copytree(FIXTURES / "good", tmp_path / "content"))


@pytest.fixture(autouse=True)
def _fresh_snapshot() -> None:
    catalogue.forget()


def sync(app: Flask, root: Path) -> None:
    with app.app_context():
        sync_library(load_library(root))
        db.session.commit()


def stored_version(app: Flask) -> str | None:
    with app.app_context():
        return catalogue.stored_version()


def retitle(root: Path, title: str) -> None:
    path = root / "first-steps" / "module.yaml"
    path.write_text(path.read_text().replace("title: First steps", f"title: {title}"))


def page(app: Flask, client: Any, path: str) -> tuple[str, list[str]]:
    """A page's HTML and the statements it sent."""
    with counting(app) as seen:
        html = client.get(path).get_data(as_text=True)
    return html, seen


def library_page(app: Flask, client: Any) -> tuple[str, list[str]]:
    return page(app, client, "/modules/")


def loads_catalogue(statements: list[str]) -> bool:
    return any("FROM module LEFT OUTER JOIN module_pathway" in s for s in statements)


@pytest.fixture
def participant(app: Flask, auth: Any) -> None:
    with app.app_context():
        make_participant(code="T-0001", arm="guided")
        db.session.commit()
    assert auth.login("T-0001").status_code == 302


def test_sync_stores_a_new_version_only_when_something_changed(app: Flask,
                                                               content: Path) -> None:
    sync(app, content)
    first = stored_version(app)
    assert first
    sync(app, content)
    assert stored_version(app) == first  # unchanged content: nothing written
    retitle(content, "Starting out")
    sync(app, content)
    assert stored_version(app) not in (None, first)


def test_sync_stores_a_version_when_none_is_stored(app: Flask, content: Path) -> None:
    sync(app, content)
    with app.app_context():
        db.session.delete(db.session.get(SiteSetting, catalogue.VERSION_KEY))
        db.session.commit()
    sync(app, content)  # nothing changed, but there was no version
    assert stored_version(app)


def test_pages_reuse_the_catalogue_and_see_the_next_sync(app: Flask, client: Any,
                                                         content: Path, participant: None
                                                         ) -> None:
    sync(app, content)
    html, statements = library_page(app, client)
    assert "First steps" in html and loads_catalogue(statements)
    html, statements = library_page(app, client)
    assert "First steps" in html and not loads_catalogue(statements)

    retitle(content, "Starting out")
    sync(app, content)
    html, statements = library_page(app, client)
    assert "Starting out" in html and "First steps" not in html
    assert loads_catalogue(statements)


def test_a_sync_by_another_process_is_seen_through_the_stored_version(
        app: Flask, client: Any, content: Path, participant: None) -> None:
    sync(app, content)
    library_page(app, client)  # this process now holds the catalogue
    with app.app_context():  # what another process's sync leaves in the database
        db.session.execute(update(Module).where(Module.key == "first-steps")
                           .values(title="Starting out"))
        catalogue.bump_version()
        db.session.commit()
    html, _ = library_page(app, client)
    assert "Starting out" in html and "First steps" not in html


def test_without_a_stored_version_every_page_loads_the_catalogue(
        app: Flask, client: Any, participant: None) -> None:
    with app.app_context():
        make_module("first-steps", kinds=("read",))
        db.session.commit()
    html, statements = library_page(app, client)
    assert loads_catalogue(statements)
    with app.app_context():
        db.session.execute(update(Module).values(title="Starting out"))
        db.session.commit()
    html, statements = library_page(app, client)
    assert "Starting out" in html and loads_catalogue(statements)


def test_pages_get_their_own_rows_with_lazy_relationships(app: Flask, content: Path) -> None:
    sync(app, content)
    with app.app_context():
        version = catalogue.stored_version()
        catalogue.library(version)
    with app.app_context():  # another request: its own session
        modules, totals = catalogue.library(version)
        assert all(module in db.session for module in modules)
        first = next(m for m in modules if m.key == "first-steps")
        assert first.pathway.key == "foundations"
        assert len(first.steps) == totals[first.id] == 4
        assert db.session.scalar(select(Module.title).where(Module.id == first.id)) == \
            first.title


def home_page(app: Flask, client: Any) -> tuple[str, list[str]]:
    return page(app, client, "/modules/today")


def test_home_names_the_next_step_from_the_catalogue(app: Flask, client: Any, content: Path,
                                                      participant: None) -> None:
    sync(app, content)
    for _ in range(3):  # three steps done, one at a time
        with app.app_context():
            person = db.session.scalar(select(Participant).where(
                Participant.study_code == "T-0001"))
            expected = services.next_step(person)
            link = f"/modules/{expected.module.key}/{expected.key}"
            title = expected.title
        home_page(app, client)
        html, statements = home_page(app, client)
        assert link in html and title in html
        assert not any("module_step.body_html" in s for s in statements)
        with app.app_context():
            person = db.session.get(Participant, person.id)
            services.complete_step(person, db.session.get(Step, expected.id))
            db.session.commit()
