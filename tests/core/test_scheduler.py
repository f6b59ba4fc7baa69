"""The scheduler: the job list, ``flask scheduler`` commands, housekeeping, and the
election of one leader among real scheduler processes (PostgreSQL advisory lock,
SQLite file lock)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from core import clock, create_app, scheduler
from core.extensions import db
from core.models import LoginAttempt, User, UserSession
from core.roles import Role
from core.scheduler import JOBS, Job
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_staff

ROOT = Path(__file__).resolve().parents[2]
#: generous bounds: a process start imports the whole app (about a second)
START_TIMEOUT = 30
TAKEOVER_TIMEOUT = 10


# --- the job list and the commands -----------------------------------------------

def test_jobs_have_unique_dotted_ids():
    """It gives every job a unique dotted id and a function that exists."""
    ids = [job.id for job in JOBS]
    assert len(ids) == len(set(ids))
    assert "core.housekeeping" in ids
    for job in JOBS:
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", job.id), job.id
        assert callable(scheduler.resolve(job))


def test_build_sets_coalesce_and_one_instance_on_every_job(app):
    """It registers each job under its own id with coalesce on and at most one instance."""
    built = scheduler.build(app)
    runner = threading.Thread(target=built.start, kwargs={"paused": True}, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not built.running and time.monotonic() < deadline:
            time.sleep(0.01)
        jobs = built.get_jobs()
        assert sorted(job.id for job in jobs) == sorted(job.id for job in JOBS)
        for job in jobs:
            assert (job.coalesce, job.max_instances) == (True, 1), job.id
            assert job.name == job.id
            assert job.args[1] in JOBS  # run through run_job, in an app context
    finally:
        built.shutdown(wait=False)
        runner.join(timeout=10)


def test_scheduler_jobs_lists_every_job(runner):
    """It prints each job's id, trigger and function."""
    result = runner.invoke(args=["scheduler", "jobs"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == len(JOBS)
    for job, line in zip(JOBS, lines, strict=True):
        assert line.split("\t") == [job.id, f"{job.trigger} {json.dumps(job.trigger_args)}",
                                    job.func]


def test_housekeeping_forgets_old_attempts_and_dead_sessions(app, runner):
    """It deletes sign-in attempts and dead sessions older than 30 days and keeps recent ones."""
    now = clock.utcnow()

    def days(n: int) -> datetime:
        return now - timedelta(days=n)

    with app.app_context():
        user_id = make_staff(Role.ADMIN).id
        db.session.add_all([
            LoginAttempt(account_key="old", ip_hash="x", at=days(31)),
            LoginAttempt(account_key="recent", ip_hash="x", at=days(29)),
            UserSession(id="revoked-long-ago", user_id=user_id, created_at=days(40),
                        last_seen_at=days(40), revoked_at=days(31)),
            UserSession(id="revoked-lately", user_id=user_id, created_at=days(29) - timedelta(
                hours=1), last_seen_at=days(29), revoked_at=days(29)),
            UserSession(id="expired-long-ago", user_id=user_id, created_at=days(31),
                        last_seen_at=days(31)),
            UserSession(id="expired-lately", user_id=user_id, created_at=days(30) + timedelta(
                hours=1), last_seen_at=days(30)),
            UserSession(id="live", user_id=user_id, created_at=now, last_seen_at=now),
        ])
        db.session.commit()

    result = runner.invoke(args=["scheduler", "run-job", "core.housekeeping"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"login_attempts": 1, "sessions": 2}
    with app.app_context():
        assert set(db.session.scalars(select(LoginAttempt.account_key))) == {"recent"}
        assert set(db.session.scalars(select(UserSession.id))) == {
            "revoked-lately", "expired-lately", "live"}


def test_run_job_refuses_an_unknown_job(runner):
    """It exits with an error naming the unknown job id."""
    result = runner.invoke(args=["scheduler", "run-job", "core.nope"])
    assert result.exit_code != 0
    assert "no job 'core.nope'" in result.output


def failing_job() -> None:
    db.session.add(User(role=Role.ADMIN, email="written-then-failed@example.org"))
    db.session.add(LoginAttempt(account_key="half-done", ip_hash="x"))
    db.session.flush()
    raise RuntimeError("job broke")


def test_run_job_rolls_back_a_failing_job(app):
    """It rolls back what a failing job flushed and re-raises its error."""
    job = Job("tests.failing", f"{__name__}:failing_job", "interval", {"minutes": 1})
    with pytest.raises(RuntimeError, match="job broke"):
        scheduler.run_job(app, job)
    with app.app_context():
        assert db.session.scalar(select(func.count(LoginAttempt.id))) == 0
        assert db.session.scalar(select(func.count(User.id))) == 0


# --- leader election with real processes -------------------------------------------

class SchedulerProcesses:
    """Start ``flask scheduler run`` processes, wait on them, and always stop them."""

    def __init__(self, database_url: str, instance: Path, logs: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KINSHIP_", "FLASK_"))},
            "DATABASE_URL": database_url,
            "KINSHIP_INSTANCE_PATH": str(instance),
            "KINSHIP_ENV": "development",
            "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
            "SCHEDULER_STANDBY_POLL_SECONDS": "0.3",
            "SCHEDULER_HEARTBEAT_SECONDS": "0.5",
            "PYTHONPATH": str(ROOT),
        }
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}
        #: processes this test stopped on purpose
        self.stopped: set[str] = set()

    def start(self, name: str) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", "run"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self.procs[name]

    def signal(self, name: str, signum: int) -> int:
        """Send a signal and return the exit code."""
        self.stopped.add(name)
        self.procs[name].send_signal(signum)
        return self.procs[name].wait(timeout=10)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def report(self) -> str:
        """Every process's exit code and log, for a failure message."""
        return "\n".join(f"--- {name} (pid {proc.pid}, exit {proc.poll()}):\n{self.log(name)}"
                         for name, proc in self.procs.items())

    def wait_for(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        """Poll until ``condition`` holds; fail at once if a process died unasked."""
        deadline = time.monotonic() + timeout
        while not condition():
            died = [name for name, proc in self.procs.items()
                    if name not in self.stopped and proc.poll() is not None]
            if died or time.monotonic() > deadline:
                problem = f"{', '.join(died)} exited" if died else f"timed out after {timeout}s"
                raise AssertionError(f"{problem} waiting for {what}\n{self.report()}")
            time.sleep(0.1)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[str], SchedulerProcesses]]:
    started: list[SchedulerProcesses] = []

    def make(database_url: str) -> SchedulerProcesses:
        group = SchedulerProcesses(database_url, tmp_path / "instance", tmp_path)
        started.append(group)
        return group

    yield make
    for group in started:
        group.stop_all()


def holder_pid(app: Flask) -> int | None:
    row = scheduler.current_leader(app)
    return int(row.holder.rsplit(":", 1)[1]) if row is not None else None


def leads(log: str) -> bool:
    return re.search(r"scheduler \S+:\d+ is the leader", log) is not None


def check_election(app: Flask, group: SchedulerProcesses) -> float:
    """Run the whole election story; return how long the standby took to take over."""
    first = group.start("first")
    group.wait_for(lambda: holder_pid(app) == first.pid, START_TIMEOUT, "the first to lead")
    assert leads(group.log("first"))

    second = group.start("second")
    group.wait_for(lambda: "waiting as standby" in group.log("second"), START_TIMEOUT,
                   "the second to wait as standby")
    beat = scheduler.current_leader(app).beat_at
    group.wait_for(lambda: scheduler.current_leader(app).beat_at > beat, 5,
                   "the leader's next beat")
    time.sleep(1)  # three more standby polls: the second must not take over meanwhile
    assert holder_pid(app) == first.pid
    assert second.poll() is None
    assert not leads(group.log("second"))

    assert group.signal("first", signal.SIGKILL) == -signal.SIGKILL
    killed_at = time.monotonic()
    group.wait_for(lambda: holder_pid(app) == second.pid, TAKEOVER_TIMEOUT,
                   "the standby to take over")
    takeover = time.monotonic() - killed_at
    assert leads(group.log("second"))

    group.start("third")  # a standby stops cleanly too
    group.wait_for(lambda: "waiting as standby" in group.log("third"), START_TIMEOUT,
                   "a third process to wait as standby")
    for name in ("third", "second"):
        assert group.signal(name, signal.SIGTERM) == 0, group.report()
    assert "stopping" in group.log("second")
    assert holder_pid(app) == second.pid  # nobody else took over
    return takeover


@pytest.mark.slow
@pytest.mark.parametrize("app", [pytest.param("postgresql", marks=pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set: no PostgreSQL for the "
                                  "advisory-lock election"))], indirect=True)
def test_one_leader_among_processes_on_postgresql(app, processes):
    """It lets one process lead while another waits, and hands over within seconds when the
    leader is killed (its advisory lock goes with its connection)."""
    takeover = check_election(app, processes(app.config["SQLALCHEMY_DATABASE_URI"]))
    assert takeover < TAKEOVER_TIMEOUT


@pytest.fixture
def sqlite_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("KINSHIP_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'election.sqlite3'}"})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.mark.slow
def test_one_leader_among_processes_on_sqlite(sqlite_app, processes, tmp_path):
    """It elects one leader with the file lock in the shared instance folder, and hands over
    when the leader is killed (the kernel drops its lock)."""
    group = processes(sqlite_app.config["SQLALCHEMY_DATABASE_URI"])
    takeover = check_election(sqlite_app, group)
    assert takeover < TAKEOVER_TIMEOUT
    assert (tmp_path / "instance" / "scheduler.lock").exists()
