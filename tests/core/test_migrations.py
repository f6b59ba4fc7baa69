"""The Alembic migrations match the models, on SQLite and on PostgreSQL.

Each case migrates its own scratch database (a temporary SQLite file, or a
PostgreSQL database created and dropped here), so the shared test schema is
never touched.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask, current_app
from sqlalchemy import Column, Integer, MetaData, create_engine, inspect, text
from sqlalchemy.engine import make_url

from core import create_app
from core.extensions import db
from tests.conftest import TEST_DATABASE_URL, pg_url

BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set: no PostgreSQL to migrate")),
]


@pytest.fixture
def _keep_loggers() -> Iterator[None]:
    """Alembic's env.py calls ``logging.config.fileConfig``, which disables every logger
    that already exists; put them back so later tests can still capture logs."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    disabled = {logger.name: logger.disabled for logger in loggers}
    root_level, root_handlers = logging.root.level, list(logging.root.handlers)
    yield
    for logger in loggers:
        logger.disabled = disabled[logger.name]
    logging.root.setLevel(root_level)
    logging.root.handlers[:] = root_handlers


@pytest.fixture
def scratch_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the requested backend, dropped again afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    server = make_url(pg_url())
    name = f"kinship_migrations_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def scratch_app(scratch_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                _keep_loggers: None) -> Iterator[Flask]:
    monkeypatch.setenv("KINSHIP_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": scratch_url,
                      "SECRET_KEY": "test-secret-key-that-is-long-enough-1234"})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def application_tables() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def differences(metadata: MetaData) -> list:
    """What ``flask db migrate`` would put into a new migration for ``metadata``."""
    options = current_app.extensions["migrate"].configure_args
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": options.get("compare_type", True),
            "render_as_batch": options.get("render_as_batch", False),
        })
        return compare_metadata(context, metadata)


@pytest.mark.parametrize("scratch_url", BACKENDS, indirect=True)
def test_upgrade_to_head_creates_every_model_table(scratch_app: Flask) -> None:
    """It creates every table of the models with ``flask db upgrade``."""
    with scratch_app.app_context():
        assert application_tables() == set()
        flask_migrate.upgrade()
        missing = set(db.metadata.tables) - application_tables()
        assert not missing, f"model tables that no migration creates: {sorted(missing)}"
        assert application_tables() == set(db.metadata.tables)


@pytest.mark.parametrize("scratch_url", BACKENDS, indirect=True)
def test_models_and_migrations_do_not_differ(scratch_app: Flask) -> None:
    """It finds nothing for autogenerate to add: every model change has its migration."""
    with scratch_app.app_context():
        flask_migrate.upgrade()
        found = differences(db.metadata)
    assert found == [], "models and migrations differ; write a migration for:\n" + "\n".join(
        describe(d) for d in found)


def describe(difference) -> str:
    """One line per autogenerate difference (a tuple, or a list of column modifications)."""
    first = difference[0] if isinstance(difference, list) else difference
    names = [getattr(part, "name", part) for part in first[1:4] if part is not None]
    return " ".join(str(part) for part in [first[0], *names])


@pytest.mark.parametrize("scratch_url", BACKENDS, indirect=True)
def test_a_model_change_without_migration_is_detected(scratch_app: Flask) -> None:
    """It notices a column that the models have and the migrations lack (the check has teeth)."""
    changed = MetaData(naming_convention=db.metadata.naming_convention)
    for table in db.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["study"].append_column(Column("not_migrated", Integer, nullable=True))
    with scratch_app.app_context():
        flask_migrate.upgrade()
        found = differences(changed)
    added = [(d[2], d[3].name) for d in found if d[0] == "add_column"]
    assert ("study", "not_migrated") in added


@pytest.mark.parametrize("scratch_url", BACKENDS, indirect=True)
def test_downgrade_to_base_removes_tables_and_upgrade_works_again(scratch_app: Flask) -> None:
    """It leaves no application table after ``flask db downgrade base`` and can upgrade again."""
    with scratch_app.app_context():
        flask_migrate.upgrade()
        migrated = application_tables()
        assert migrated
        flask_migrate.downgrade(revision="base")
        assert application_tables() == set()
        flask_migrate.upgrade()
        assert application_tables() == migrated


@pytest.mark.parametrize("scratch_url", BACKENDS, indirect=True)
def test_cli_upgrade_and_downgrade(scratch_app: Flask) -> None:
    """It runs the same migrations through the ``flask db`` commands operators use."""
    runner = scratch_app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with scratch_app.app_context():
        assert application_tables() >= {"user", "participant", "audit_entry"}
    result = runner.invoke(args=["db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    with scratch_app.app_context():
        assert application_tables() == set()
