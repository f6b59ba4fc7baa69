"""The production start-up guard, and the ``platform/`` folder that must never
shadow the standard library."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from flask import Flask

from core import create_app
from core.config import DEFAULT_SECRET_KEY
from core.extensions import db
from core.security import UnsafeConfiguration
from tests.conftest import TEST_DATABASE_URL

REPO = Path(__file__).resolve().parents[2]
LONG_SECRET = "a-production-secret-that-is-well-over-thirty-two-characters"
#: nothing listens here: the app must start without connecting
UNREACHABLE_POSTGRES = "postgresql://kinship:kinship@127.0.0.1:9/kinship_nowhere"
POSTGRES_URL = TEST_DATABASE_URL or UNREACHABLE_POSTGRES
SETTINGS = ("FLASK_DEBUG", "SECRET_KEY", "DATABASE_URL", "KINSHIP_ALLOW_SQLITE", "KINSHIP_DEMO",
            "KINSHIP_HTTPS")


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A safe production environment; each test spoils one thing."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KINSHIP_ENV", "production")
    monkeypatch.setenv("KINSHIP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", LONG_SECRET)
    monkeypatch.setenv("DATABASE_URL", POSTGRES_URL)
    return monkeypatch


def dispose(app: Flask) -> None:
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("FLASK_DEBUG", "1", "debug mode is on"),
    ("SECRET_KEY", None, "SECRET_KEY is missing, the default"),
    ("SECRET_KEY", DEFAULT_SECRET_KEY, "SECRET_KEY is missing, the default"),
    ("SECRET_KEY", "short-but-not-empty", "shorter than 32 characters"),
    ("DATABASE_URL", "sqlite:///kinship.sqlite3", "the database is SQLite"),
    ("KINSHIP_DEMO", "1", "demo mode is on"),
], ids=["debug", "no-secret", "default-secret", "short-secret", "sqlite", "demo"])
def test_production_refuses_unsafe_setting(production, name, value, problem):
    """It refuses to start in production and names what is unsafe."""
    if value is None:
        production.delenv(name)
    else:
        production.setenv(name, value)
    with pytest.raises(UnsafeConfiguration, match="refusing to start in production") as info:
        create_app()
    assert problem in str(info.value)


def test_production_names_every_problem_at_once(production):
    """It lists all the problems in one message, so one restart fixes them."""
    production.setenv("FLASK_DEBUG", "1")
    production.setenv("KINSHIP_DEMO", "1")
    production.delenv("SECRET_KEY")
    with pytest.raises(UnsafeConfiguration) as info:
        create_app()
    message = str(info.value)
    assert "debug mode" in message and "demo mode" in message and "SECRET_KEY" in message


def test_production_starts_with_long_secret_and_postgresql(production):
    """It starts with a long secret and a PostgreSQL URL, and turns on secure cookies."""
    app = create_app()
    try:
        assert app.config["KINSHIP_ENV"] == "production"
        assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_NAME"] == "__Host-kinship"
        assert not app.debug
    finally:
        dispose(app)


def test_production_start_does_not_connect_to_the_database(production):
    """It starts even when the database cannot be reached: nothing connects at start-up."""
    production.setenv("DATABASE_URL", UNREACHABLE_POSTGRES)
    dispose(create_app())


def test_production_starts_on_sqlite_when_allowed(production, tmp_path):
    """It accepts SQLite on purpose with KINSHIP_ALLOW_SQLITE=1."""
    production.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'kinship.sqlite3'}")
    production.setenv("KINSHIP_ALLOW_SQLITE", "1")
    app = create_app()
    try:
        assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    finally:
        dispose(app)


def test_guard_is_off_outside_production(production):
    """It leaves development alone, default secret and demo mode included."""
    production.setenv("KINSHIP_ENV", "development")
    production.setenv("KINSHIP_DEMO", "1")
    production.delenv("DATABASE_URL")
    app = create_app()
    try:
        assert app.config["KINSHIP_DEMO"] is True
    finally:
        dispose(app)


def test_standard_library_platform_is_used_by_the_app(production):
    """It imports the standard library's ``platform`` next to the app, not the folder."""
    app = create_app()
    try:
        import platform

        assert platform.system()
        stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
        assert Path(platform.__file__).resolve().parent == stdlib
    finally:
        dispose(app)


def test_platform_folder_is_not_a_package():
    """It keeps ``platform/`` a plain folder: no ``platform/__init__.py`` in the repo."""
    assert (REPO / "platform").is_dir()
    assert not os.path.exists(os.path.join(REPO, "platform/__init__.py"))


def test_platform_import_works_from_the_repo_root():
    """It gets the standard library's platform (and uuid) when Python runs in the repo root."""
    result = subprocess.run(
        [sys.executable, "-c", "import platform, uuid; print(platform.system(), uuid.uuid4())"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == __import__("platform").system()
