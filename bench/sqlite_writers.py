"""Benchmark: four processes writing to one SQLite database at once through the app's own
services, counting "database is locked" errors.

    .venv/bin/python bench/sqlite_writers.py [--seconds 30] [--participants 40]

The embedded default (SQLite, WAL, the busy timeout of ``core/database.py``) must take
the writes of several gunicorn workers and the scheduler at the same time. Here four
processes, each with its own app and engine as a gunicorn worker has, write for
``--seconds`` as fast as they can, each one the way its view does (service, then commit):

- ``mood``: ``modules.mood.log_mood`` (upsert of today's mood, event, points);
- ``post``: ``forum.services.create_post`` (screening, event, points);
- ``comment``: ``forum.services.create_comment`` on the posts made before the run;
- ``sms``: ``core.sms.inbound.store`` then ``process`` (a reply to the daily prompt), with
  the two commits of the webhook view.

A writer that waits for the write lock waits up to the busy timeout (15 s) before it
fails, so the slowest write of each process is printed too. Every exception is counted;
``sqlite_locked`` is the number whose message says the database is locked (goal 0);
any other error is printed beside it with an example.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WRITERS = ("mood", "post", "comment", "sms")
LOCKED = "database is locked"


def make_app(url: str, *, create: bool = False):
    from core import create_app
    from core.extensions import db

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
                      "SECRET_KEY": "bench-secret-key-that-is-long-enough-123",
                      "SERVER_NAME": "kinship.test", "KINSHIP_DEMO": False,
                      "SMS_BACKEND": "console"})
    if create:
        with app.app_context():
            db.create_all()
    return app


def seed(app, count: int) -> None:
    """A study whose arm has the forum, ``count`` participants with phones, and 20 posts."""
    from core.clock import utcnow
    from core.extensions import db
    from core.models import Participant, User
    from core.roles import Role
    from forum.services import create_post
    from outcomes.models import Arm, Study

    with app.app_context():
        now = utcnow()
        study = Study(slug="bench", name="Bench study", code_prefix="B")
        db.session.add(study)
        db.session.flush()
        arm = Arm(study_id=study.id, code="guided", name="Guided", features={
            "modules": True, "gamification": True, "forum": True, "checkins": True,
            "sms": True})
        db.session.add(arm)
        db.session.flush()
        for n in range(count):
            user = User(role=Role.PARTICIPANT, display_name=f"Writer {n}",
                        display_key=f"writer {n}", created_at=now - timedelta(days=90))
            db.session.add(user)
            db.session.flush()
            db.session.add(Participant(
                user_id=user.id, study_id=study.id, study_code=f"B-{n:04d}", arm_id=arm.id,
                status="active", randomised_at=now - timedelta(days=30),
                phone=f"+447{n:09d}", sms_consent=True))
        db.session.flush()
        for n in range(20):
            author = db.session.get(User, 1 + n % count)
            create_post(author, kind="post", body=f"Something that helped this week ({n}).")
        db.session.commit()


def writer(kind: str, url: str, seconds: float, start_at: float, queue) -> None:
    """One process: write ``kind`` until the time is up; put its tally on ``queue``."""
    app = make_app(url)
    tally = {"kind": kind, "writes": 0, "locked": 0, "other": 0, "examples": [],
             "slowest": 0.0}
    with app.app_context():
        write = _writers()[kind]
        time.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
            _one(write, n, tally)
    queue.put(tally)


def _one(write, n: int, tally: dict) -> None:
    from core.extensions import db

    started = time.perf_counter()
    try:
        write(n)
        db.session.commit()
        tally["writes"] += 1
        tally["slowest"] = max(tally["slowest"], time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - every failure is counted, by kind
        db.session.rollback()
        locked = LOCKED in str(exc) or (isinstance(exc, sqlite3.OperationalError)
                                        and LOCKED in str(exc))
        tally["locked" if locked else "other"] += 1
        if len(tally["examples"]) < 3:
            waited = time.perf_counter() - started
            message = traceback.format_exception_only(exc)[-1].strip().splitlines()[0]
            tally["examples"].append(f"after {waited:.1f} s: {message[:200]}")


def _writers() -> dict:
    from sqlalchemy import select

    from core.extensions import db
    from core.models import Participant
    from core.sms.inbound import process, store
    from forum.models import Post
    from forum.services import create_comment, create_post
    from modules.mood import log_mood

    people = db.session.scalars(select(Participant).order_by(Participant.id)).all()
    ids = [p.id for p in people]
    posts = db.session.scalars(select(Post.id)).all()
    pid = os.getpid()

    def participant(n: int) -> Participant:
        return db.session.get(Participant, ids[n % len(ids)])

    def mood(n: int) -> None:
        log_mood(participant(n), 1 + n % 5)

    def post(n: int) -> None:
        create_post(participant(n).user, kind="post", body=f"A small win today, number {n}.")

    def comment(n: int) -> None:
        create_comment(participant(n).user, db.session.get(Post, posts[n % len(posts)]),
                       body=f"That sounds good ({n}).")

    def sms(n: int) -> None:
        message, _ = store({"MessageSid": f"SMbench{pid}x{n}", "From": participant(n).phone,
                            "Body": str(n % 11)})
        db.session.commit()  # the webhook view stores before it processes
        process(message)

    return {"mood": mood, "post": post, "comment": comment, "sms": sms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--participants", type=int, default=40)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KINSHIP_INSTANCE_PATH"] = tmp
        url = f"sqlite:///{tmp}/writers.sqlite3"
        seed(make_app(url, create=True), args.participants)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        start_at = time.time() + 8  # after every process has imported the app
        processes = [context.Process(target=writer, args=(kind, url, args.seconds, start_at,
                                                          queue)) for kind in WRITERS]
        for process in processes:
            process.start()
        tallies = [queue.get(timeout=args.seconds + 120) for _ in processes]
        for process in processes:
            process.join(timeout=30)
    report(tallies, args.seconds)


def report(tallies: list[dict], seconds: float) -> None:
    for tally in sorted(tallies, key=lambda t: WRITERS.index(t["kind"])):
        print(f"  {tally['kind']:<8} {tally['writes']:6d} writes "
              f"({tally['writes'] / seconds:6.1f}/s), slowest {tally['slowest']:5.2f} s, "
              f"locked {tally['locked']}, "
              f"other errors {tally['other']} {tally['examples']}")
    print(f"  {sum(t['writes'] for t in tallies)} writes in {seconds:.0f} s by "
          f"{len(tallies)} processes")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    other = sum(t["other"] for t in tallies)
    if other:
        print(f"  note: {other} errors other than a locked database (see above)")
    print(f"RESULT sqlite_locked ratio={sum(t['locked'] for t in tallies)} goal=0")


if __name__ == "__main__":
    main()
