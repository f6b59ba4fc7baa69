"""The one scheduler process.

``flask scheduler run`` starts an APScheduler ``BlockingScheduler`` with the
declarative job list below (stable ids, ``coalesce``, ``max_instances=1``).
Each job runs in an app context and commits once. Only one process may run
jobs: on PostgreSQL it must hold a session-level advisory lock (a second
process waits as a standby and takes over when the first dies, because the
lock goes with its connection); on SQLite an exclusive file lock in
``instance/`` does the same on one machine. Job state lives in our own tables,
never in an APScheduler job store.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy import String, select, text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.config import is_sqlite
from core.extensions import db

log = logging.getLogger("kinship.scheduler")

#: the advisory-lock key: any fixed 64-bit number unique to this application
LOCK_KEY = 0x4B494E5348495031  # "KINSHIP1"
HEARTBEAT_SECONDS = 15


@dataclass(frozen=True)
class Job:
    id: str
    #: "package.module:function"
    func: str
    trigger: str
    trigger_args: dict[str, Any] = field(default_factory=dict)


#: every scheduled job of the platform; domain packages' jobs are listed here too
JOBS: list[Job] = [
    Job("core.housekeeping", "core.jobs:housekeeping", "cron", {"hour": 3, "minute": 17}),
    Job("moderation.escalate", "moderation.jobs:escalate_alerts", "interval", {"minutes": 1}),
    Job("moderation.checkins", "moderation.jobs:generate_checkins", "cron",
        {"hour": 6, "minute": 7}),
    Job("sms.reconcile", "core.sms.jobs:reconcile", "interval", {"minutes": 5}),
    Job("sms.dispatch", "core.sms.jobs:dispatch", "interval", {"seconds": 30}),
    Job("sms.plan", "outcomes.prompts.jobs:plan", "interval", {"minutes": 5}),
    Job("sms.expire", "outcomes.prompts.jobs:expire", "interval", {"minutes": 5}),
    Job("core.notifications_purge", "core.jobs:purge_notifications", "cron",
        {"hour": 3, "minute": 27}),
    Job("core.audit_anchor", "core.jobs:audit_anchor", "cron", {"minute": 37}),
    Job("outcomes.assessment_reminders", "outcomes.assessments.jobs:send_reminders", "cron",
        {"minute": "*/15"}),
]


class SchedulerHeartbeat(db.Model):
    """Which process is the scheduler leader, and when it last showed signs of life."""

    __tablename__ = "scheduler_heartbeat"

    id: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def resolve(job: Job) -> Callable[[], Any]:
    module, _, name = job.func.partition(":")
    return getattr(import_module(module), name)


def run_job(app: Flask, job: Job) -> Any:
    """Run one job in its own app context and transaction."""
    with app.app_context():
        try:
            result = resolve(job)()
            db.session.commit()
            log.info("job %s done: %s", job.id, result)
            return result
        except Exception:
            db.session.rollback()
            log.exception("job %s failed", job.id)
            raise
        finally:
            db.session.remove()


class Leadership:
    """Hold the right to run jobs until the process ends."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.url = app.config["SQLALCHEMY_DATABASE_URI"]
        self._conn: Any = None
        self._file: Any = None

    def try_acquire(self) -> bool:
        if is_sqlite(self.url):
            path = Path(self.app.instance_path) / "scheduler.lock"
            handle = open(path, "a+")  # noqa: SIM115 - held for the process lifetime
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._file = handle
            return True
        with self.app.app_context():
            conn = db.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar()
        conn.commit()
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def wait(self, poll_seconds: float, stop: Callable[[], bool]) -> bool:
        announced = False
        while not stop():
            if self.try_acquire():
                return True
            if not announced:
                log.info("another scheduler is the leader; waiting as standby")
                announced = True
            time.sleep(poll_seconds)
        return False

    def still_held(self) -> bool:
        if self._conn is None:
            return self._file is not None
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:
            return False


def beat(app: Flask, holder: str, started_at: datetime) -> None:
    with app.app_context():
        row = db.session.get(SchedulerHeartbeat, 1)
        now = utcnow()
        if row is None:
            db.session.add(SchedulerHeartbeat(id=1, holder=holder, started_at=started_at,
                                              beat_at=now))
        else:
            row.holder, row.started_at, row.beat_at = holder, started_at, now
        db.session.commit()
        db.session.remove()


def current_leader(app: Flask) -> SchedulerHeartbeat | None:
    with app.app_context():
        row = db.session.scalar(select(SchedulerHeartbeat).where(SchedulerHeartbeat.id == 1))
        if row is not None:
            db.session.expunge(row)
        return row


def build(app: Flask, jobs: list[Job] | None = None) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
    for job in jobs if jobs is not None else JOBS:
        scheduler.add_job(run_job, job.trigger, args=[app, job], id=job.id, name=job.id,
                          replace_existing=True, **job.trigger_args)
    return scheduler


def run(app: Flask, jobs: list[Job] | None = None) -> None:
    """Become the leader (waiting as standby if needed), then run jobs until stopped."""
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    leadership = Leadership(app)
    poll = float(app.config["SCHEDULER_STANDBY_POLL_SECONDS"])
    if not leadership.wait(poll, lambda: stopping):
        return
    holder, started_at = holder_name(), utcnow()
    log.info("scheduler %s is the leader", holder)
    beat(app, holder, started_at)
    scheduler = build(app, jobs)
    heartbeat_every = float(app.config.get("SCHEDULER_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))

    def heartbeat() -> None:
        if not leadership.still_held():
            log.error("lost the scheduler lock (database connection gone); exiting")
            os.kill(os.getpid(), signal.SIGTERM)
            return
        beat(app, holder, started_at)

    scheduler.add_job(heartbeat, "interval", seconds=heartbeat_every, id="core.heartbeat",
                      coalesce=True, max_instances=1)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler %s stopping", holder)
