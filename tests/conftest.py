"""Shared fixtures: ``app``, ``client``, ``runner``, ``auth`` and the database.

Each test gets an empty database. The suite runs on SQLite, and on PostgreSQL
as well when ``TEST_DATABASE_URL`` is set (every test that uses ``app`` runs
once per backend). With ``CI=true`` a missing ``TEST_DATABASE_URL`` fails the
run instead of quietly testing less.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import create_engine, text

from core import clock, create_app
from core.config import normalise_database_url
from core.extensions import db

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])
PASSWORD = "correct horse battery staple"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI") == "true" and not TEST_DATABASE_URL:
        raise pytest.UsageError("CI=true but TEST_DATABASE_URL is not set: PostgreSQL tests "
                                "would be skipped. Start PostgreSQL and set it (see .ci/run).")


def pg_url() -> str:
    if not TEST_DATABASE_URL:
        raise RuntimeError("TEST_DATABASE_URL is not set")
    return normalise_database_url(TEST_DATABASE_URL)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to reach a host other than this machine."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if isinstance(address, tuple):
            host = str(address[0])
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise RuntimeError(f"test tried to reach the network: {host}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.set_time(None)


@pytest.fixture(scope="session")
def _schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Create the schema once per backend; tests empty the tables instead."""
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"}
    if TEST_DATABASE_URL:
        urls["postgresql"] = pg_url()
    app = create_app(_test_config(urls["sqlite"], tmp_path_factory.mktemp("instance")))
    for url in urls.values():
        engine = create_engine(url)
        with engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            db.metadata.create_all(conn)
        engine.dispose()
    del app
    return urls


def _test_config(url: str, instance: Path) -> dict[str, object]:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
        "WTF_CSRF_ENABLED": False,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "KINSHIP_DEMO": False,
        "SERVER_NAME": "kinship.test",
        "PUBLIC_URL": "http://kinship.test",
        "INSTANCE_DIR": str(instance),
    }


def empty_tables() -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, _schemas: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KINSHIP_INSTANCE_PATH", str(tmp_path))
    app = create_app(_test_config(_schemas[request.param], tmp_path))
    with app.app_context():
        empty_tables()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def uncached(app) -> None:
    """Pages made afresh on every request (``core.pagecache`` off), for the tests that
    count what a page itself costs."""
    app.config["PAGE_CACHE_SECONDS"] = 0


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    """Sign in through the real pages, second step included."""

    def __init__(self, client, app) -> None:
        self._client = client
        self._app = app

    def login(self, identifier: str, password: str = PASSWORD, *, follow: bool = False):
        response = self._client.post("/login", data={"identifier": identifier,
                                                     "password": password})
        if response.status_code == 302 and response.headers["Location"].endswith("/login/code"):
            from core.auth import find_account

            with self._app.app_context():
                secret = find_account(identifier).mfa_secret
            code = pyotp.TOTP(secret).at(clock.utcnow())
            response = self._client.post("/login/code", data={"code": code})
        if follow and response.status_code == 302:
            return self._client.get(response.headers["Location"], follow_redirects=True)
        return response

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client, app) -> AuthActions:
    return AuthActions(client, app)
