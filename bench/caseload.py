"""Benchmark: the moderator's caseload page with 500 participants, against a page that
runs a single trivial query, in the same run.

    .venv/bin/python bench/caseload.py [--participants 500] [--runs 15] [--database-url ...]

The data (bulk inserts): N active participants on one peer moderator's caseload, each with
40 activity events over 40 days, a mood on 12 of the last 14 days, 14 SMS prompts (two in
three answered), steps done in a 6-module library (one module opens after another, one in
week 3), and for some an open risk alert, open check-ins and unread replies. One in ten
has withdrawn from the study (the "Not to be contacted" list).

Both pages are fetched through the Flask test client by the signed-in moderator, so the
work around the page (session check, navigation, layout) is the same; the baseline is
``/help`` (the crisis resources: one trivial settings read of its own). The URLs take
turns and each figure is the median of ``--runs`` timed requests, after a warm-up.

``caseload`` is caseload time / baseline time. Goal 40: the page is a 9-column table of
500 rows (about 320 KiB of HTML) with every figure worked out, held to about 100 ms
against a trivial page of about 2.5 ms on the 2-core reference machine. SQLite (the
embedded default) unless ``--database-url`` is given (its tables are dropped and made
again: use a scratch database).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)
PASSWORD = "correct horse battery staple"  # noqa: S105 - the made-up bench account
EVENTS = 40
PROMPTS = 14
CHUNK = 250
GOAL = 40


def make_app(url: str):
    from core import create_app
    from core.extensions import db

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
                      "SECRET_KEY": "bench-secret-key-that-is-long-enough-123",
                      "SERVER_NAME": "kinship.test", "KINSHIP_DEMO": False,
                      "WTF_CSRF_ENABLED": False, "ARGON2_TIME_COST": 1,
                      "ARGON2_MEMORY_COST": 1024})
    with app.app_context():
        db.drop_all()
        db.create_all()
    return app


def seed_library() -> list[list[int]]:
    """Six modules of six steps; returns the step ids of each."""
    from core.extensions import db
    from modules.models import Module, Step

    steps = []
    for n in range(6):
        unlock = {"after": "m0"} if n == 1 else {"week": 3} if n == 2 else {}
        module = Module(key=f"m{n}", title=f"Module {n}", position=n, unlock=unlock)
        db.session.add(module)
        db.session.flush()
        rows = [Step(key=f"m{n}-{k}", module_id=module.id, position=k, kind="read",
                     title=f"Step {k}") for k in range(6)]
        db.session.add_all(rows)
        db.session.flush()
        steps.append([s.id for s in rows])
    return steps


def seed(count: int) -> None:
    from core.extensions import db
    from core.models import User
    from core.passwords import hash_password
    from core.roles import Role
    from outcomes.models import Arm, Study
    from outcomes.prompts.models import SmsProtocolVersion
    from outcomes.prompts.protocol import default_data

    study = Study(slug="bench", name="Bench study", code_prefix="B")
    db.session.add(study)
    db.session.flush()
    arm = Arm(study_id=study.id, code="guided", name="Guided", features={
        "modules": True, "gamification": True, "forum": True, "checkins": True, "sms": True})
    peer = User(email="peer@example.org", role=Role.PEER_MODERATOR, display_name="Kit",
                password_hash=hash_password(PASSWORD))
    db.session.add_all([arm, peer])
    version = SmsProtocolVersion(study_id=study.id, version=1, source="", data=default_data())
    db.session.add(version)
    db.session.flush()
    ids = {"study": study.id, "arm": arm.id, "peer": peer.id, "version": version.id,
           "steps": seed_library()}
    db.session.commit()
    for start in range(0, count, CHUNK):
        _seed_chunk(ids, start + 1, min(count, start + CHUNK) + 1)
        db.session.commit()


def _seed_chunk(ids: dict, first: int, last: int) -> None:
    from sqlalchemy import insert

    from core.events import ActivityEvent
    from core.extensions import db
    from core.models import Participant, User
    from core.roles import Role
    from moderation.care_models import CheckInTask, ModeratorMessage
    from moderation.models import RiskAlert
    from modules.models import MoodEntry, StepProgress

    people = range(first, last)
    offset = 10  # user ids 1.. are staff
    db.session.execute(insert(User), [
        {"id": n + offset, "role": Role.PARTICIPANT, "display_name": f"Bench {n}",
         "display_key": f"bench {n}"} for n in people])
    db.session.execute(insert(Participant), [
        {"id": n, "user_id": n + offset, "study_id": ids["study"], "study_code": f"B-{n:05d}",
         "arm_id": ids["arm"], "status": "withdrawn" if n % 10 == 0 else "active",
         "moderator_id": ids["peer"], "timezone": "Europe/London",
         "randomised_at": NOW - timedelta(days=30 + n % 10)} for n in people])
    db.session.execute(insert(ActivityEvent), [
        {"participant_id": n, "kind": "login" if e % 2 else "step_completed",
         "at": NOW - timedelta(days=e + n % 5, hours=n % 24), "detail": {}}
        for n in people for e in range(EVENTS)])
    db.session.execute(insert(MoodEntry), [
        {"participant_id": n, "local_date": TODAY - timedelta(days=d), "score": 1 + (n + d) % 5,
         "created_at": NOW - timedelta(days=d), "updated_at": NOW - timedelta(days=d)}
        for n in people for d in range(14) if (n + d) % 7])
    _seed_prompts(ids, people)
    steps = ids["steps"]
    db.session.execute(insert(StepProgress), [
        {"participant_id": n, "step_id": step, "completed_at": NOW - timedelta(days=3)}
        for n in people for module in (0, 1) for step in steps[module][: (n + module) % 7]])
    db.session.execute(insert(RiskAlert), [
        {"participant_id": n, "channel": "forum_post", "content_type": "forum_post",
         "content_id": n, "category": "self_harm", "opened_at": NOW - timedelta(hours=2),
         "actions_taken": []} for n in people if n % 9 == 0])
    db.session.execute(insert(CheckInTask), [
        {"participant_id": n, "moderator_id": ids["peer"], "reason": "inactive",
         "open_key": f"{n}:inactive", "status": "open", "detail": {},
         "due_at": NOW + timedelta(hours=(n % 5) - 2), "created_at": NOW - timedelta(days=1)}
        for n in people if n % 4 == 0])
    db.session.execute(insert(ModeratorMessage), [
        {"participant_id": n, "sender_id": n + offset, "direction": "from_participant",
         "body": "Thanks", "created_at": NOW - timedelta(hours=k),
         "read_at": None if k % 2 else NOW} for n in people if n % 3 == 0 for k in range(3)])


def _seed_prompts(ids: dict, people: range) -> None:
    from sqlalchemy import insert

    from core.extensions import db
    from core.sms import SmsMessage
    from outcomes.prompts.models import PlannedPrompt

    messages, prompts = [], []
    for n in people:
        for d in range(PROMPTS):
            mid = n * PROMPTS + d
            planned = NOW - timedelta(days=d + 1)
            messages.append({"id": mid, "direction": "out", "participant_id": n,
                             "purpose": "prompt", "body": "How lonely today?",
                             "status": "delivered", "created_at": planned,
                             "send_after": planned})
            answered = (n + d) % 3 != 0
            prompts.append({"participant_id": n, "protocol_version_id": ids["version"],
                            "prompt_key": "lonely", "slot": planned.date(),
                            "planned_at": planned, "expires_at": planned + timedelta(hours=3),
                            "message_id": mid,
                            "answered_at": planned + timedelta(minutes=5) if answered else None,
                            "expired_at": None if answered else planned + timedelta(hours=3)})
    db.session.execute(insert(SmsMessage), messages)
    db.session.execute(insert(PlannedPrompt), prompts)


def timed(client, urls: dict[str, str], runs: int) -> tuple[dict[str, float], dict[str, bytes]]:
    """The median seconds of ``runs`` GETs of each URL (after one warm-up each) and each
    page. The URLs take turns, so a change of load on the machine weighs on all alike."""
    pages = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        pages[name] = response.data
    times: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(runs):
        for name, url in urls.items():
            started = time.perf_counter()
            response = client.get(url)
            times[name].append(time.perf_counter() - started)
            assert response.status_code == 200
    return {name: statistics.median(values) for name, values in times.items()}, pages


def count_queries(app, client, url: str) -> int:
    from sqlalchemy import event

    from core.extensions import db

    with app.app_context():
        engine = db.engine
    statements = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return len(statements)


def measure(url: str, count: int, runs: int) -> dict[str, float]:
    from core import clock
    from tests.moderation.caseload_pages import apart_rows, caseload_rows

    app = make_app(url)
    clock.set_time(NOW)
    started = time.perf_counter()
    with app.app_context():
        seed(count)
    print(f"  seeded {count} participants in {time.perf_counter() - started:.1f} s")
    client = app.test_client()
    response = client.post("/login", data={"identifier": "peer@example.org",
                                           "password": PASSWORD})
    assert response.status_code == 302, "the moderator could not sign in"
    figures, pages = timed(client, {
        "baseline": "/help", "page": "/moderation/",
        "sorted": "/moderation/?sort=mood&dir=desc&has=checkins"}, runs)
    page = pages["page"]
    listed = len(caseload_rows(page)) + len(apart_rows(page))
    if listed != count:
        raise SystemExit(f"the page listed {listed} people, not {count}")
    queries = count_queries(app, client, "/moderation/")
    clock.set_time(None)
    print(f"  SQL statements per caseload page: {queries}; page size {len(page) // 1024} KiB")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    from core.config import normalise_database_url

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KINSHIP_INSTANCE_PATH"] = tmp
        url = normalise_database_url(args.database_url or f"sqlite:///{tmp}/bench.sqlite3")
        database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, {database}")
        figures = measure(url, args.participants, args.runs)
    ratio = figures["page"] / figures["baseline"]
    print(f"baseline page (/help, signed in):     {figures['baseline'] * 1000:8.1f} ms")
    print(f"caseload page, {args.participants} people:      {figures['page'] * 1000:8.1f} ms")
    print(f"caseload sorted by mood, filtered:     {figures['sorted'] * 1000:8.1f} ms")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"RESULT caseload ratio={ratio:.2f} goal={GOAL}")


if __name__ == "__main__":
    main()
