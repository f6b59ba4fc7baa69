"""``flask modules``: validate and sync the therapy content library.

``validate`` only reads files. ``sync`` validates first and refuses to write anything
while there are problems; otherwise it calls ``modules.sync.sync_library`` (which
flushes) and commits once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from core.extensions import db
from modules import sync
from modules.library import Library, content_root, load_library

modules_cli = AppGroup("modules", help="Check and load therapy module content.")

_PATH = click.Path(exists=True, file_okay=False, path_type=Path)


@modules_cli.command("validate")
@click.argument("path", required=False, type=_PATH)
def validate_command(path: Path | None) -> None:
    """Check the content in PATH (default: the library the app serves) and print each
    problem as file:line: message. Exit 1 when there are problems."""
    library = _load(path)
    if library.problems:
        _print_problems(library)
        sys.exit(1)
    click.echo(f"{_size(library)}: no problems")


@modules_cli.command("sync")
@click.argument("path", required=False, type=_PATH)
def sync_command(path: Path | None) -> None:
    """Check the content in PATH, then load it into the database. Safe to run again:
    unchanged content changes nothing, and progress is never lost."""
    library = _load(path)
    if library.problems:
        _print_problems(library)
        click.echo("Nothing was synced: fix the problems above first.")
        sys.exit(1)
    report = sync.sync_library(library)
    db.session.commit()
    click.echo(f"Synced {_size(library)}: {report.summary()}")
    served = content_root()
    if library.root.resolve() != served.resolve():
        click.echo(f"Note: pages serve pictures and videos from {served}, not this folder "
                   "(set MODULES_CONTENT_DIR to change that).")


def _load(path: Path | None) -> Library:
    root = path if path is not None else content_root()
    return load_library(root, display=str(path) if path is not None else _shown(root))


def _shown(root: Path) -> str:
    """``root`` relative to the working directory when inside it, so editors and
    terminals can open the reported files."""
    try:
        return str(root.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(root)


def _print_problems(library: Library) -> None:
    for problem in library.problems:
        click.echo(str(problem))
    count = len(library.problems)
    click.echo(f"{count} problem{'' if count == 1 else 's'} ({_size(library)})")


def _size(library: Library) -> str:
    modules, steps = len(library.modules), len(library.steps)
    return (f"{modules} module{'' if modules == 1 else 's'}, "
            f"{steps} step{'' if steps == 1 else 's'}")
