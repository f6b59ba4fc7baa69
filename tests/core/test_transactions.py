"""``core.transactions``: a request that wrote nothing ends with COMMIT on PostgreSQL, so the
connection keeps its prepared statements; a request that wrote, left changes pending or
failed still ends with ROLLBACK, so nothing half-done is kept."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from core import create_app
from core.config import _prepare_threshold
from core.extensions import db
from core.models import SiteSetting


def _routes(app) -> None:
    """Views that write and then return without committing (a bug, or a view giving up)."""

    def flushed():
        db.session.add(SiteSetting(key="flushed", value=1))
        db.session.flush()
        return "ok"

    def pending():
        db.session.execute(select(SiteSetting)).all()
        db.session.add(SiteSetting(key="pending", value=1))
        return "ok"

    def raw():
        db.session.execute(text("INSERT INTO site_setting (key, value, updated_at) "
                                "VALUES ('raw', '1', CURRENT_TIMESTAMP)"))
        db.session.execute(select(SiteSetting)).all()
        return "ok"

    def failed():
        db.session.add(SiteSetting(key="failed", value=1))
        db.session.flush()
        raise RuntimeError("the view failed after writing")

    def committed():
        db.session.add(SiteSetting(key="committed", value=1))
        db.session.commit()
        db.session.execute(select(SiteSetting)).all()
        return "ok"

    for view in (flushed, pending, raw, failed, committed):
        app.add_url_rule(f"/test-transactions/{view.__name__}", view.__name__, view)


def _postgresql_only(app) -> None:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip(reason="PostgreSQL only: SQLite has no server-side prepared statements")


def _keys(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(select(SiteSetting.key)))


def test_a_request_that_wrote_without_committing_keeps_nothing(app):
    """Flushed rows, pending objects, raw SQL writes and a failed view all roll back; a
    commit the view made itself stays."""
    _routes(app)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    for name in ("flushed", "pending", "raw", "committed"):
        assert client.get(f"/test-transactions/{name}").status_code == 200, name
    assert client.get("/test-transactions/failed").status_code == 500
    assert _keys(app) == {"committed"}


@pytest.mark.postgres_only
def test_a_read_only_request_keeps_the_prepared_statements(app, client):
    """psycopg prepares a statement the fifth time a connection runs it and forgets it on
    ROLLBACK: after read-only requests the pooled connection holds prepared statements."""
    _postgresql_only(app)
    for _ in range(8):
        assert client.get("/healthz").status_code == 200
    with app.app_context():
        prepared = db.session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
    assert prepared >= 1


@pytest.mark.postgres_only
def test_a_read_only_request_after_a_write_in_an_earlier_request_still_commits(app, client):
    """The 'wrote' mark belongs to one transaction: a request that committed a write does
    not make the next read-only one roll back (and lose the prepared statements)."""
    _postgresql_only(app)
    _routes(app)
    assert client.get("/test-transactions/committed").status_code == 200
    assert client.get("/test-transactions/flushed").status_code == 200  # rolled back
    for _ in range(8):
        assert client.get("/healthz").status_code == 200
    with app.app_context():
        prepared = db.session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
    assert prepared >= 1
    assert _keys(app) == {"committed"}


@pytest.mark.postgres_only
def test_prepared_statements_can_be_turned_off(app, tmp_path):
    """``DATABASE_PREPARE_THRESHOLD=off`` (PgBouncer in transaction mode before 1.22): the
    same read-only requests leave no prepared statement behind."""
    _postgresql_only(app)
    from tests.conftest import _test_config

    other = create_app({**_test_config(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path),
                        "DATABASE_PREPARE_THRESHOLD": None})
    client = other.test_client()
    for _ in range(8):
        assert client.get("/healthz").status_code == 200
    with other.app_context():
        prepared = db.session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
        db.session.remove()
        db.engine.dispose()
    assert prepared == 0


@pytest.mark.parametrize(("value", "threshold"), [("5", 5), (" 0 ", 0), ("", 5),
                                                   ("off", None), ("None", None)])
def test_the_prepare_threshold_setting_is_read(value, threshold):
    assert _prepare_threshold(value) == threshold


@pytest.mark.parametrize(("value", "problem"), [("often", "whole number or 'off'"),
                                                 ("-1", "must not be negative"),
                                                 ("2.5", "whole number")])
def test_a_bad_prepare_threshold_is_named(value, problem):
    with pytest.raises(ValueError, match=problem):
        _prepare_threshold(value)
