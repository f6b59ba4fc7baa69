"""Benchmark: plan and dispatch 10,000 SMS prompts through the gateway, against sending
the same texts with the bare ``twilio`` client, in the same run.

    .venv/bin/python bench/sms.py [--count 10000] [--database-url postgresql://...]

Both sides talk to the same local Twilio stand-in (``tests/core/sms/fake_twilio.py``,
run in its own process so it does not share this one's interpreter lock) through
``twilio``'s requests-based client. The gateway side is what production does: the
``sms.plan`` job (``outcomes.prompts``) queues one prompt per participant in the outbox,
then the ``sms.dispatch`` job claims, guards, sends and records each one (with the send
rate limit off: it is a policy, not an overhead). The baseline is a loop of
``client.messages.create`` calls. The stand-in's counters check that every text was
created exactly once on each side.

Figures: planning time, dispatch time, bare-client time; ``sms_dispatch`` is dispatch
time / bare time (goal 1.3); planning is reported next to it. SQLite (the embedded
default) unless ``--database-url`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ACCOUNT = "AC" + "a" * 32
FROM = "+15005550006"
AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 09:00 in London: the daily prompt is due


def start_stand_in() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "tests.core.sms.fake_twilio"],
                               cwd=REPO, stdout=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip()
    return process, url


def created(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/_stats", timeout=10) as answer:  # noqa: S310 - local
        return json.load(answer)


def make_app(database_url: str, stand_in: str):
    from core import create_app
    from core.extensions import db

    app = create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-123", "SERVER_NAME": "kinship.test",
        "PUBLIC_URL": "https://kinship.example.org", "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "bench-token",
        "TWILIO_FROM": FROM, "TWILIO_API_BASE": stand_in, "SMS_SEND_RATE_PER_SECOND": 0,
        "SMS_DISPATCH_MAX_SECONDS": 3600, "SMS_DISPATCH_BATCH": 100,
    })
    with app.app_context():
        db.drop_all()
        db.create_all()
    return app


def seed(app, count: int) -> None:
    """A study with the default SMS protocol and ``count`` randomised, texting participants."""
    from core.extensions import db
    from core.models import Participant, User
    from core.roles import Role
    from outcomes.models import Arm, Study
    from outcomes.prompts import protocol

    with app.app_context():
        study = Study(slug="bench", name="Bench study", code_prefix="B")
        db.session.add(study)
        db.session.flush()
        arm = Arm(study_id=study.id, code="sms", name="SMS", features={
            "modules": True, "gamification": True, "forum": True, "checkins": True, "sms": True})
        db.session.add(arm)
        protocol.save_protocol_text(study, protocol.default_text(), actor=None)
        users = [User(role=Role.PARTICIPANT, display_name=f"Bench {n}") for n in range(count)]
        db.session.add_all(users)
        db.session.flush()
        db.session.add_all([
            Participant(user_id=user.id, study_id=study.id, study_code=f"B-{n:05d}",
                        arm_id=arm.id, status="active", randomised_at=AT - timedelta(days=2),
                        phone=f"+447{n:09d}", sms_consent=True, timezone="Europe/London",
                        wake_start=dtime(8, 0), wake_end=dtime(21, 0))
            for n, user in enumerate(users)])
        db.session.commit()


def run_job(app, job_id: str):
    from core import clock, scheduler

    clock.set_time(AT)
    try:
        job = next(j for j in scheduler.JOBS if j.id == job_id)
        started = time.perf_counter()
        result = scheduler.run_job(app, job)
        return time.perf_counter() - started, result
    finally:
        clock.set_time(None)


def outbox(app) -> list[tuple[str, str]]:
    """The planned texts (number and body), for the baseline to send too."""
    from sqlalchemy import select

    from core.extensions import db
    from core.models import Participant
    from core.sms import SmsMessage

    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(Participant.phone, SmsMessage.body)
            .join(Participant, Participant.id == SmsMessage.participant_id)
            .where(SmsMessage.direction == "out").order_by(SmsMessage.id))]


def bare(stand_in: str, texts: list[tuple[str, str]]) -> float:
    """The same texts with the bare twilio client, one after the other."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    client = Client(ACCOUNT, "bench-token", http_client=TwilioHttpClient(timeout=10))
    client.api.base_url = stand_in
    started = time.perf_counter()
    for phone, body in texts:
        client.messages.create(to=phone, from_=FROM, body=body,
                               status_callback="https://kinship.example.org/sms/status")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    process, stand_in = start_stand_in()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["KINSHIP_INSTANCE_PATH"] = tmp
            url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
            from core.config import normalise_database_url

            app = make_app(normalise_database_url(url), stand_in)
            seed(app, args.count)
            plan_seconds, planned = run_job(app, "sms.plan")
            texts = outbox(app)
            # the baseline runs before and after the gateway and is averaged, so a load
            # change on the machine during the run weighs on both sides alike
            start = created(stand_in)
            bare_before = bare(stand_in, texts)
            before = created(stand_in)
            dispatch_seconds, report = run_job(app, "sms.dispatch")
            after_gateway = created(stand_in)
            bare_after = bare(stand_in, texts)
            after_bare = created(stand_in)
            bare_seconds = (bare_before + bare_after) / 2
    finally:
        process.terminate()
        process.wait(timeout=10)
    sent = after_gateway["creates"] - before["creates"]
    bare_sent = min(before["creates"] - start["creates"],
                    after_bare["creates"] - after_gateway["creates"])
    if planned.get("prompts") != args.count or sent != args.count or bare_sent != args.count:
        raise SystemExit(f"counts differ: planned {planned}, gateway sent {sent}, "
                         f"bare sent {bare_sent}, dispatch report {report}")
    if after_bare["most"] != 3:  # each text: once by the gateway, twice by the baseline
        raise SystemExit("some text was created more or less than once per run")
    ratio = dispatch_seconds / bare_seconds
    database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {database}")
    print(f"texts: {args.count} (the stand-in counted each once from the gateway and once "
          "per baseline run)")
    print(f"plan (sms.plan):            {plan_seconds:8.2f} s  "
          f"({plan_seconds / args.count * 1000:.2f} ms per prompt)")
    print(f"dispatch (sms.dispatch):    {dispatch_seconds:8.2f} s  "
          f"({dispatch_seconds / args.count * 1000:.2f} ms per text)")
    print(f"bare twilio client:         {bare_seconds:8.2f} s  "
          f"({bare_seconds / args.count * 1000:.2f} ms per text; runs {bare_before:.2f} s "
          f"before and {bare_after:.2f} s after the gateway)")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"plan + dispatch vs bare:    {(plan_seconds + dispatch_seconds) / bare_seconds:8.2f}x")
    print(f"RESULT sms_dispatch ratio={ratio:.2f} goal=1.3")


if __name__ == "__main__":
    main()
