"""Benchmark: the full researcher export bundle of a synthetic study, against reading the
same rows with ``pandas.read_sql``, in the same run.

    .venv/bin/python bench/export.py [--participants 10000] [--postgres-url postgresql://...]

The study: N randomised participants x 6 timepoints x the built-in UCLA-20, MSPSS and
LSNS-6 (every item answered and scored), 30 activity events and 20 SMS prompts (half
answered) each. It is written with bulk inserts into a fresh SQLite file and, when
``--postgres-url`` (or ``BENCH_POSTGRES_URL``) is given, into that PostgreSQL database
(its tables are dropped and made again: use a scratch database).

Figures per backend: the time of ``outcomes.exports.bundle.build(study, "csv")`` (every
table, the codebook, README and checksums), the time of ``pandas.read_sql`` of the rows the
tables are made from, each the best of ``--repeat`` runs taken in turns (default 3: the
machine may be shared), and their ratio (goal 2.0). Peak memory (max RSS of this process,
seeding included) is printed at the end (goal under 1.5 GB), and after each phase
(seeding, export, baseline reads) so that a high peak can be placed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

R = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NOW = R + timedelta(days=200)
INSTRUMENTS = ("ucla20", "mspss", "lsns6")
TIMEPOINTS = 6
EVENTS = 30
PROMPTS = 20
CHUNK = 500

#: the rows the export tables are made from, as the baseline reads them
BASELINE_SQL = {
    "participants": "SELECT * FROM participant",
    "status": "SELECT * FROM participant_status_change",
    "answers": ("SELECT r.participant_id, r.instrument, r.instrument_version, r.submitted_at, "
                "t.key, t.position, a.item, a.value, a.answered_at FROM assessment_response r "
                "JOIN assessment_item_answer a ON a.response_id = r.id "
                "JOIN assessment_timepoint t ON t.id = r.timepoint_id"),
    "scores": "SELECT * FROM assessment_response",
    "events": "SELECT participant_id, kind, at FROM activity_event",
    "prompts": ("SELECT p.*, m.status FROM sms_prompt p "
                "LEFT JOIN sms_message m ON m.id = p.message_id"),
    "replies": "SELECT * FROM sms_prompt_reply",
    "moderation": "SELECT * FROM moderation_item",
    "alerts": "SELECT * FROM risk_alert",
}


def make_app(url: str):
    from core import create_app
    from core.extensions import db

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
                      "SECRET_KEY": "bench-secret-key-that-is-long-enough-123",
                      "SERVER_NAME": "kinship.test", "KINSHIP_DEMO": False})
    with app.app_context():
        db.drop_all()
        db.create_all()
    return app


def seed(count: int) -> int:
    """The synthetic study (bulk inserts, in chunks); returns its id."""
    from core.extensions import db
    from outcomes import instruments
    from outcomes.assessments.models import Timepoint
    from outcomes.models import Arm, Study
    from outcomes.prompts.models import SmsProtocolVersion

    study = Study(slug="bench", name="Bench study", code_prefix="B")
    db.session.add(study)
    db.session.flush()
    arms = [Arm(study_id=study.id, code=code, name=code, features={"modules": True})
            for code in ("guided", "self")]
    db.session.add_all(arms)
    timepoints = [Timepoint(study_id=study.id, key=f"t{n}", label=f"T{n}", position=n,
                            instruments=list(INSTRUMENTS), is_baseline=n == 0,
                            is_post_treatment=n == 2) for n in range(TIMEPOINTS)]
    db.session.add_all(timepoints)
    protocol = SmsProtocolVersion(study_id=study.id, version=1, source="", data={})
    db.session.add(protocol)
    db.session.commit()
    defs = {i: instruments.get(i) for i in INSTRUMENTS}
    ids = {"arms": [a.id for a in arms], "tps": [t.id for t in timepoints],
           "protocol": protocol.id, "study": study.id}
    for start in range(0, count, CHUNK):
        _seed_chunk(ids, defs, start, min(count, start + CHUNK))
        db.session.commit()
    return study.id


def _seed_chunk(ids: dict, defs: dict, first: int, last: int) -> None:
    from sqlalchemy import insert

    from core.events import ActivityEvent
    from core.extensions import db
    from core.models import Participant, User
    from core.roles import Role
    from outcomes.assessments.models import AssessmentResponse, ItemAnswer
    from outcomes.prompts.models import PlannedPrompt, PromptReply

    people = range(first + 1, last + 1)
    db.session.execute(insert(User), [{"id": n, "role": Role.PARTICIPANT} for n in people])
    db.session.execute(insert(Participant), [
        {"id": n, "user_id": n, "study_id": ids["study"], "study_code": f"B-{n:06d}",
         "arm_id": ids["arms"][n % 2], "status": "active", "site": "North",
         "randomised_at": R + timedelta(hours=n % 500)} for n in people])
    responses, answers = [], []
    for n in people:
        for t, tp in enumerate(ids["tps"]):
            for k, (name, instrument) in enumerate(defs.items()):
                rid = ((n * TIMEPOINTS) + t) * len(defs) + k
                at = R + timedelta(days=7 * t + 1)
                responses.append({"id": rid, "participant_id": n, "timepoint_id": tp,
                                  "instrument": name, "instrument_version": instrument.version,
                                  "submitted_at": at, "total": float(n % 30),
                                  "extra_totals": {}, "subscales": {}, "labels": {}})
                answers += [{"response_id": rid, "item": item.number,
                             "value": instrument.values[(n + item.number) % len(
                                 instrument.values)], "answered_at": at}
                            for item in instrument.items]
    db.session.execute(insert(AssessmentResponse), responses)
    db.session.execute(insert(ItemAnswer), answers)
    db.session.execute(insert(ActivityEvent), [
        {"participant_id": n, "kind": "login", "at": R + timedelta(hours=5 * e), "detail": {}}
        for n in people for e in range(EVENTS)])
    prompts = [{"id": n * PROMPTS + d, "participant_id": n, "protocol_version_id": ids["protocol"],
                "prompt_key": "mood", "slot": (R + timedelta(days=d)).date(),
                "planned_at": R + timedelta(days=d), "expires_at": R + timedelta(days=d, hours=3),
                "answered_at": R + timedelta(days=d, minutes=5) if d % 2 else None}
               for n in people for d in range(PROMPTS)]
    db.session.execute(insert(PlannedPrompt), prompts)
    db.session.execute(insert(PromptReply), [
        {"prompt_id": p["id"], "participant_id": p["participant_id"], "prompt_key": "mood",
         "status": "answered", "value": 5, "score": 5.0, "received_at": p["answered_at"],
         "latency_seconds": 300} for p in prompts if p["answered_at"]])


def measure(url: str, count: int, repeat: int) -> tuple[float, float, dict[str, int]]:
    """The best (smallest) of ``repeat`` timings of the export and of the baseline, taken
    in turns, so that a burst of load on a shared machine does not decide the ratio."""
    from core import clock
    from core.extensions import db
    from outcomes.exports import bundle
    from outcomes.models import Study

    app = make_app(url)
    clock.set_time(NOW)
    with app.app_context():
        started = time.perf_counter()
        study_id = seed(count)
        print(f"  seeded {count} participants in {time.perf_counter() - started:.1f} s "
              f"(max RSS so far {peak_mb():.0f} MB)")
        study = db.session.get(Study, study_id)
        bundle.build(study, "csv")  # the pseudonym secret and the instrument caches
        db.session.commit()
        exports, baselines = [], []
        for attempt in range(repeat):
            started = time.perf_counter()
            result = bundle.build(study, "csv")
            exports.append(time.perf_counter() - started)
            rows = result.rows
            del result  # the files: the baseline's memory should be its own
            db.session.commit()
            if attempt == 0:
                print(f"  max RSS after the export: {peak_mb():.0f} MB")
            baselines.append(_baseline(db.engine, verbose=attempt == 0))
            if attempt == 0:
                print(f"  max RSS after the baseline reads: {peak_mb():.0f} MB")
        db.session.remove()
        db.engine.dispose()
    print("  export runs: " + ", ".join(f"{s:.2f}" for s in exports) + " s; baseline runs: "
          + ", ".join(f"{s:.2f}" for s in baselines) + " s")
    return min(exports), min(baselines), rows


def _baseline(engine, *, verbose: bool) -> float:
    import pandas as pd

    started = time.perf_counter()
    baseline_rows = 0
    with engine.connect() as conn:
        for name, sql in BASELINE_SQL.items():
            begun = time.perf_counter()
            baseline_rows += len(pd.read_sql(sql, conn))
            if verbose:
                print(f"    read_sql {name}: {time.perf_counter() - begun:.2f} s")
    if verbose:
        print(f"  baseline rows read: {baseline_rows}")
    return time.perf_counter() - started


def peak_mb() -> float:
    """Max RSS of this process so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL"))
    parser.add_argument("--repeat", type=int, default=3,
                        help="timings of each side; the best of them is compared")
    args = parser.parse_args()
    from core.config import normalise_database_url

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        backends = {"sqlite": f"sqlite:///{folder}/bench.sqlite3"}
        if args.postgres_url:
            backends["postgres"] = normalise_database_url(args.postgres_url)
        for name, url in backends.items():
            print(f"{name}:")
            export_s, baseline_s, rows = measure(url, args.participants, max(1, args.repeat))
            print(f"  rows: {rows}")
            print(f"  export bundle (csv), best: {export_s:.2f} s; pandas.read_sql of the same "
                  f"rows, best: {baseline_s:.2f} s")
            results[name] = export_s / baseline_s
    print(f"peak memory (max RSS, seeding included): {peak_mb():.0f} MB (goal < 1536 MB)")
    for name in ("sqlite", "postgres"):
        if name in results:
            print(f"RESULT export_{name} ratio={results[name]:.2f} goal=2.0")
        else:
            print(f"RESULT export_{name} skipped (no --postgres-url)")


if __name__ == "__main__":
    main()
