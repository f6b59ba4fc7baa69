"""``flask sms``: advance time and run the SMS jobs, and see the outbox at a glance."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from core import clock, scheduler
from core.extensions import db
from core.sms.models import SmsMessage
from core.sms.statuses import meaning

sms_cli = AppGroup("sms", help="SMS gateway: run the SMS jobs, see the outbox.")


def sms_jobs() -> list[scheduler.Job]:
    """Every job whose id starts with ``sms.``, with ``sms.dispatch`` last."""
    jobs = [job for job in scheduler.JOBS if job.id.startswith("sms.")]
    return sorted(jobs, key=lambda job: job.id == "sms.dispatch")


@sms_cli.command("tick")
@click.option("--at", "at", default=None, metavar='"YYYY-MM-DD HH:MM"',
              help="Run as if it were this UTC time (default: now).")
def tick(at: str | None) -> None:
    """Run every sms.* job once (planning first, dispatch last)."""
    if at:
        try:
            moment = datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        except ValueError as exc:
            raise click.BadParameter('use "YYYY-MM-DD HH:MM" (UTC)', param_hint="--at") from exc
        clock.set_time(moment)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        click.echo(f"SMS tick at {clock.utcnow():%Y-%m-%d %H:%M} UTC")
        for job in sms_jobs():
            result = scheduler.run_job(app, job)
            click.echo(f"{job.id}: {json.dumps(result, default=str)}")
    finally:
        if at:
            clock.set_time(None)


@sms_cli.command("status")
def status() -> None:
    """Count outbound and inbound texts by status, and name recent error codes."""
    rows = db.session.execute(
        select(SmsMessage.direction, SmsMessage.status, func.count())
        .group_by(SmsMessage.direction, SmsMessage.status)
        .order_by(SmsMessage.direction, SmsMessage.status)).all()
    if not rows:
        click.echo("No texts yet.")
    for direction, state, count in rows:
        click.echo(f"{'outbound' if direction == 'out' else 'inbound'}\t{state}\t{count}")
    codes = db.session.execute(
        select(SmsMessage.error_code, func.count()).where(SmsMessage.error_code.is_not(None))
        .group_by(SmsMessage.error_code)).all()
    for code, count in codes:
        click.echo(f"error {code} ×{count}: {meaning(code)}")
