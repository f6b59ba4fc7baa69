"""``flask modules``: validate and sync the therapy content library."""

from __future__ import annotations

from flask.cli import AppGroup

modules_cli = AppGroup("modules", help="Check and load therapy module content.")
