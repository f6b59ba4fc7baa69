"""Command-line interface: ``flask users``, ``flask audit``, ``flask scheduler``,
``flask demo``. Commands call the same services as the web pages and commit once."""

from __future__ import annotations

import json
import logging
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from core import accounts, audit, scheduler
from core.extensions import db
from core.roles import Role

users_cli = AppGroup("users", help="Manage staff accounts.")
audit_cli = AppGroup("audit", help="Check the audit log.")
scheduler_cli = AppGroup("scheduler", help="Run the one scheduler process.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role if r != Role.PARTICIPANT]),
              required=True)
@click.option("--name", "display_name", default=None, help="Name shown to participants.")
@click.password_option("--password", help="Prompted for when not given.")
def create_user(email: str, role: str, display_name: str | None, password: str) -> None:
    """Create a staff account (the first admin is made this way)."""
    try:
        user = accounts.create_staff(email, Role(role), password, actor=None,
                                     display_name=display_name)
    except accounts.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Created {user.role.label.lower()} {user.email} (id {user.id}).")


@audit_cli.command("verify")
@click.option("--anchor", "anchors", multiple=True, metavar="SEQ:HASH",
              help="An anchor kept outside the database (the scheduler logs one every "
                   "hour; `flask audit anchor` prints one). Repeatable.")
def verify(anchors: tuple[str, ...]) -> None:
    """Recompute the hash chain and check each anchor; exit 1 and say what is wrong."""
    try:
        parsed = [audit.parse_anchor(text) for text in anchors]
    except audit.BadAnchor as exc:
        raise click.BadParameter(str(exc), param_hint="--anchor") from exc
    report = audit.verify_chain()
    if not report.ok:
        click.echo(f"Audit chain BROKEN at entry {report.broken_seq}: {report.reason}. "
                   f"{report.checked} entries before it are intact.", err=True)
        sys.exit(1)
    problems = [problem for seq, digest in parsed
                if (problem := audit.check_anchor(seq, digest))]
    for problem in problems:
        click.echo(f"Audit log does NOT match an anchor: {problem}.", err=True)
    if problems:
        sys.exit(1)
    matched = f"; {len(anchors)} anchor(s) match" if anchors else ""
    click.echo(f"Audit chain intact: {report.checked} entries checked{matched}.")


@audit_cli.command("anchor")
def print_anchor() -> None:
    """Print the newest entry's number and hash, to keep outside the database."""
    click.echo(audit.anchor())


@scheduler_cli.command("run")
def run_scheduler() -> None:
    """Run scheduled jobs (waits as standby while another scheduler leads)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # APScheduler logs every run at INFO (the heartbeat every 15 s); our jobs log their own
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    scheduler.run(app)


@scheduler_cli.command("jobs")
def list_jobs() -> None:
    """List the scheduled jobs."""
    for job in scheduler.JOBS:
        click.echo(f"{job.id}\t{job.trigger} {json.dumps(job.trigger_args)}\t{job.func}")


@scheduler_cli.command("run-job")
@click.argument("job_id")
def run_one(job_id: str) -> None:
    """Run one job now, in this process (for operators and tests)."""
    job = next((j for j in scheduler.JOBS if j.id == job_id), None)
    if job is None:
        raise click.ClickException(f"no job {job_id!r}; see `flask scheduler jobs`")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    click.echo(json.dumps(scheduler.run_job(app, job), default=str))


def register(app: Flask) -> None:
    for group in (users_cli, audit_cli, scheduler_cli):
        app.cli.add_command(group)
