"""``flask db backup`` and ``flask db restore``: the demo study backed up, restored into a
fresh empty database, exports the same bundle (same checksum at the same moment); the
backup is readable by its owner only; non-empty targets, wrong files and existing output
files are refused with clear messages. On SQLite and, with TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from core import backup, clock, create_app
from core.extensions import db
from core.models import Participant
from outcomes import demo
from outcomes.exports import bundle
from outcomes.models import Study
from tests.conftest import _test_config, pg_url
from tests.factories import make_participant, make_study

MOMENT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def fresh(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """An app on a new, empty database of the same backend as ``app`` (dropped after)."""
    admin = None
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    else:
        server = make_url(pg_url())
        name = f"kinship_restore_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
    other = create_app(_test_config(url, tmp_path / "fresh-instance"))
    backup.register(other)
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()
    if admin is not None:
        # no WITH (FORCE): it may not end the autovacuum worker a restore sets off (not
        # our role's process); a plain DROP stops autovacuum itself
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def export_files(app: Flask) -> dict[str, bytes]:
    """The demo study's CSV export bundle (SHA256SUMS last: its hash is the checksum)."""
    with app.app_context():
        study = db.session.scalar(select(Study).where(Study.slug == "demo"))
        files = bundle.build(study, "csv").files
        db.session.commit()  # the study's pseudonym key, made on first use
        return files


def seeded(app: Flask) -> dict[str, bytes]:
    clock.set_time(MOMENT)
    with app.app_context():
        assert demo.seed()
        db.session.commit()
    return export_files(app)


def rows(files: dict[str, bytes]) -> dict[str, list[bytes]]:
    """Each exported table's lines, order aside (SHA256SUMS follows from the files)."""
    return {name: sorted(content.splitlines()) for name, content in files.items()
            if name != "SHA256SUMS"}


def cli(app: Flask, *args: str):
    backup.register(app)
    return app.test_cli_runner().invoke(args=["db", *args])


def test_restore_into_an_empty_database_gives_the_same_export_checksum(app, fresh, tmp_path):
    """It backs up the seeded demo study and restores it into a fresh database whose
    export bundle has exactly the checksum of the original at the same moment."""
    before = seeded(app)
    out = tmp_path / "kinship.backup"
    result = cli(app, "backup", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Backed up the" in result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, "a backup must not be world-readable"

    result = cli(fresh, "restore", str(out))
    assert result.exit_code == 0, result.output
    after = export_files(fresh)
    assert rows(after) == rows(before), "the restored database exports other rows"
    changed = [name for name in before if before[name] != after[name]]
    assert changed == []
    assert bundle.sha256(after["SHA256SUMS"]) == bundle.sha256(before["SHA256SUMS"])
    with fresh.app_context():
        assert demo.seed() is False  # the restored study is there: the demo is not re-seeded


def test_restore_refuses_a_database_with_data_unless_forced(app, fresh, tmp_path):
    """It refuses to restore over data (naming the tables), and --force replaces it."""
    with app.app_context():
        make_participant(make_study(slug="backed-up"), code="T-0001")
    out = tmp_path / "kinship.backup"
    assert cli(app, "backup", "--out", str(out)).exit_code == 0
    with fresh.app_context():
        db.create_all()
        fresh_study = Study(slug="other", name="Other study", code_prefix="O")
        db.session.add(fresh_study)
        db.session.commit()

    refused = cli(fresh, "restore", str(out))
    assert refused.exit_code == 1
    assert "the database is not empty" in refused.output and "study" in refused.output
    assert "--force" in refused.output
    with fresh.app_context():
        assert db.session.scalars(select(Study.slug)).all() == ["other"]

    forced = cli(fresh, "restore", "--force", str(out))
    assert forced.exit_code == 0, forced.output
    with fresh.app_context():
        assert db.session.scalars(select(Study.slug)).all() == ["backed-up"]
        assert db.session.scalars(select(Participant.study_code)).all() == ["T-0001"]


def test_backup_never_replaces_an_existing_file(app, tmp_path):
    out = tmp_path / "kinship.backup"
    out.write_bytes(b"keep me")
    result = cli(app, "backup", "--out", str(out))
    assert result.exit_code == 1 and "already exists" in result.output
    assert out.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".kinship-backup")] == []


def test_restore_refuses_files_that_are_not_backups(app, fresh, tmp_path):
    missing = cli(fresh, "restore", str(tmp_path / "nope.backup"))
    assert missing.exit_code == 1 and "does not exist" in missing.output
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database")
    result = cli(fresh, "restore", str(junk))
    assert result.exit_code == 1 and "is not a Kinship backup" in result.output


def test_restore_refuses_a_backup_of_the_other_kind(app, fresh, tmp_path):
    """A PostgreSQL dump cannot go into SQLite, nor an SQLite file into PostgreSQL."""
    other = tmp_path / "other-kind.backup"
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    other.write_bytes(b"PGDMP\x01\x0e\x00" if sqlite else b"SQLite format 3\x00" + b"\0" * 84)
    result = cli(fresh, "restore", str(other))
    assert result.exit_code == 1
    assert "backup but the database is" in result.output


def test_backup_of_an_unreachable_postgresql_database_fails_clearly(app, tmp_path):
    """pg_dump's own reason is shown, the password is not, and no file is left."""
    other = create_app(_test_config("postgresql://kinship:s3cret-pw@127.0.0.1:9/nothing",
                                    tmp_path / "down"))
    out = tmp_path / "down.backup"
    result = cli(other, "backup", "--out", str(out))
    assert result.exit_code == 1 and "pg_dump failed" in result.output
    assert "s3cret-pw" not in result.output
    assert list(tmp_path.glob("*.backup")) == [] and not out.exists()
