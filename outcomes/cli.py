"""``flask demo``: the demo study for trying Kinship out."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from core.extensions import db

demo_cli = AppGroup("demo", help="The demo study for trying Kinship out.")


@demo_cli.command("seed")
@click.option("--participants", default=30, show_default=True)
def seed(participants: int) -> None:
    """Create the demo study, unless the database already has a study."""
    from outcomes import demo

    if not demo.seed(participants=participants):
        click.echo("A study already exists; the demo was not seeded again.")
        return
    db.session.commit()
    click.echo(f"Demo study seeded with {participants} participants.")


@demo_cli.command("logins")
def logins() -> None:
    """Print the demo accounts and their password."""
    from outcomes import demo

    click.echo(demo.logins_text())
