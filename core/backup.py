"""``flask db backup`` and ``flask db restore``: a whole-database copy and its way back.

SQLite: the sqlite3 online backup API (a consistent copy while the app keeps running),
written as a standalone database file (no WAL beside it). PostgreSQL: ``pg_dump`` in its
custom format, restored with ``pg_restore`` in one transaction; both are found on PATH or
under ``/usr/lib/postgresql/*/bin`` (newest first). The password goes to them in the
environment (``PGPASSWORD``), never on a command line another user could read.

A backup file is created ``0600`` (it holds every participant's data) and never replaces
an existing file. A restore goes into an empty database (no rows in any table; tables
made by ``flask db upgrade`` are fine) and refuses one with data unless ``--force``.

Transaction contract: these commands work below the ORM. The app's pooled connections
are closed first; nothing here is part of a request's transaction.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import click
from flask import Flask, current_app
from sqlalchemy import inspect, select, table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from core.config import is_sqlite
from core.extensions import db

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
#: tables that do not make a database "not empty"
IGNORED_TABLES = frozenset({"alembic_version"})
#: libpq environment variables for URL query options that matter for a connection
LIBPQ_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
             "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY"}


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why and what to do."""


# --- finding things ------------------------------------------------------------------

def database_url() -> URL:
    return make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])


def sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("the database is an in-memory SQLite database: nothing to back up")
    return Path(url.database)


def pg_tool(name: str) -> str:
    """The path of ``pg_dump`` or ``pg_restore``: PATH first, else the newest server's."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda path: int(Path(path).parts[4]) if
                        Path(path).parts[4].isdigit() else 0, reverse=True)
    if not candidates:
        raise BackupError(f"{name} was not found on PATH or in /usr/lib/postgresql/*/bin; "
                          "install the PostgreSQL client tools (apt install postgresql-client)")
    return candidates[0]


def pg_args(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection options for the PostgreSQL tools, and their environment (password)."""
    args = ["--dbname", url.database or ""]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    for key, variable in LIBPQ_ENV.items():
        value = url.query.get(key)
        if isinstance(value, str):
            env[variable] = value
    return args, env


def run_tool(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(f"{Path(command[0]).name} failed: "
                          f"{detail[-1] if detail else f'exit {result.returncode}'}")


# --- backup --------------------------------------------------------------------------

def backup(out: Path) -> str:
    """Write a backup of the configured database to ``out`` (0600); return its kind."""
    if out.exists():
        raise BackupError(f"{out} already exists; choose another file name (a backup never "
                          "replaces a file)")
    if not out.parent.is_dir():
        raise BackupError(f"the folder {out.parent} does not exist")
    url = database_url()
    handle, temporary = tempfile.mkstemp(prefix=".kinship-backup-", dir=out.parent)
    os.close(handle)  # mkstemp made it 0600; the tools below write into it
    try:
        kind = _backup_sqlite(url, Path(temporary)) if is_sqlite(str(url)) else \
            _backup_postgresql(url, Path(temporary))
        os.chmod(temporary, 0o600)
        os.link(temporary, out)  # fails rather than replace a file made meanwhile
    finally:
        Path(temporary).unlink(missing_ok=True)
    return kind


def _backup_sqlite(url: URL, target: Path) -> str:
    source_path = sqlite_path(url)
    if not source_path.is_file():
        raise BackupError(f"the SQLite database {source_path} does not exist")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one standalone file, no -wal beside it
    except sqlite3.Error as exc:
        raise BackupError(f"the SQLite backup failed: {exc}") from exc
    finally:
        copy.close()
        source.close()
    return "sqlite"


def _backup_postgresql(url: URL, target: Path) -> str:
    args, env = pg_args(url)
    run_tool([pg_tool("pg_dump"), "--format=custom", "--file", str(target), *args], env)
    return "postgresql"


# --- restore -------------------------------------------------------------------------

def file_kind(path: Path) -> str:
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file")
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a Kinship backup (neither an SQLite database nor a "
                      "pg_dump custom-format file)")


def tables_with_rows() -> list[str]:
    """The tables of the configured database that hold at least one row."""
    try:
        with db.engine.connect() as conn:
            names = [name for name in inspect(conn).get_table_names()
                     if name not in IGNORED_TABLES]
            return [name for name in names
                    if conn.execute(select(text("1")).select_from(table(name)).limit(1)).first()]
    except OperationalError as exc:
        raise BackupError("cannot reach the database to restore into: "
                          f"{type(exc.orig).__name__}; create it first and check "
                          "DATABASE_URL") from exc


def restore(source: Path, *, force: bool = False) -> str:
    """Restore ``source`` into the configured database; return its kind."""
    kind = file_kind(source)
    url = database_url()
    target = "sqlite" if is_sqlite(str(url)) else "postgresql"
    if kind != target:
        raise BackupError(f"{source} is a {kind} backup but the database is {target}; "
                          "restore it into a database of the same kind")
    if target == "sqlite" and not sqlite_path(url).exists():
        sqlite_path(url).touch(mode=0o600)
    full = tables_with_rows()
    if full and not force:
        shown = ", ".join(sorted(full)[:5]) + (" ..." if len(full) > 5 else "")
        raise BackupError(f"the database is not empty ({len(full)} tables have rows: {shown}); "
                          "restore into an empty database, or add --force to replace "
                          "everything in it")
    db.session.remove()
    db.engine.dispose()  # no pooled connection may hold the old contents or a lock
    if target == "sqlite":
        _restore_sqlite(source, sqlite_path(url))
    else:
        _restore_postgresql(source, url, clean=bool(full) or _has_tables())
    db.engine.dispose()
    return kind


def _has_tables() -> bool:
    with db.engine.connect() as conn:
        return bool(inspect(conn).get_table_names())


def _restore_sqlite(source_path: Path, target_path: Path) -> None:
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(target_path)
    try:
        if source.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise BackupError(f"{source_path} is damaged (SQLite quick_check failed)")
        source.backup(target)
    except sqlite3.Error as exc:
        raise BackupError(f"the SQLite restore failed: {exc}") from exc
    finally:
        target.close()
        source.close()


def _restore_postgresql(source: Path, url: URL, *, clean: bool) -> None:
    args, env = pg_args(url)
    options = ["--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
    if clean:  # tables from `flask db upgrade` or --force: drop what the backup brings
        options += ["--clean", "--if-exists"]
    run_tool([pg_tool("pg_restore"), *options, *args, str(source)], env)


# --- the commands --------------------------------------------------------------------

@click.command("backup")
@click.option("--out", "out", required=True,
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="The file to write (must not exist yet); readable by its owner only.")
def backup_command(out: Path) -> None:
    """Back up the whole database to a file (SQLite online backup, or pg_dump)."""
    try:
        kind = backup(out)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Backed up the {kind} database to {out} ({out.stat().st_size} bytes, "
               "mode 0600).")


@click.command("restore")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already has data.")
def restore_command(source: Path, force: bool) -> None:
    """Restore a backup made by `flask db backup` into an empty database."""
    try:
        kind = restore(source, force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Restored the {kind} backup {source}.")


def register(app: Flask) -> None:
    """Add ``backup`` and ``restore`` to Flask-Migrate's ``flask db`` group."""
    group = app.cli.commands.get("db")
    if group is None or not isinstance(group, click.Group):
        raise RuntimeError("flask db (Flask-Migrate) must be registered first")
    group.add_command(backup_command)
    group.add_command(restore_command)
