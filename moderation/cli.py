"""``flask moderation``: watched-word rules from and to YAML files.

``rules-import`` checks the whole file first and writes nothing while any line has a
problem (each printed as ``line N: ...``, exit 1); otherwise it commits once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from core.extensions import db
from core.models import User
from core.roles import Role
from moderation import rules

moderation_cli = AppGroup("moderation", help="Watched words and risk screening.")


@moderation_cli.command("rules-import")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False,
                                                          path_type=Path))
@click.option("--as", "email", required=True, help="E-mail of the admin doing it (audited).")
def rules_import_command(path: Path | None, email: str) -> None:
    """Import rules from PATH (default: the shipped moderation/watched_words.yaml)."""
    admin = db.session.scalar(select(User).where(User.email == email,
                                                 User.role == Role.ADMIN))
    if admin is None:
        click.echo(f"No admin account {email}.", err=True)
        sys.exit(2)
    text = (path or rules.SHIPPED).read_text(encoding="utf-8")
    try:
        result = rules.import_yaml(text, actor=admin)
    except rules.RulesFileError as exc:
        db.session.rollback()
        for problem in exc.problems:
            click.echo(f"{path or rules.SHIPPED}: {problem}", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(f"{result.created} new, {result.updated} changed, {result.unchanged} unchanged")


@moderation_cli.command("rules-export")
def rules_export_command() -> None:
    """Print the saved rules as YAML."""
    click.echo(rules.export_yaml(), nl=False)
