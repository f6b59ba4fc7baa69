"""The data of ``bench/web.py``: the demo study scaled to thousands of participants by
bulk inserts (``flask demo seed`` makes one person at a time, through the services, and
would take most of an hour for 5,000).

Each participant: randomised into one of the demo arms, on the caseload of one of 50
moderators (the demo peer supporter and clinician, and 48 more), consent recorded, about
24 activity events over 40 days, a mood on about half of the last 29 days, 14 daily SMS
prompts with replies to about 60 %, some module steps done; guided-arm participants wrote
one forum post each, with up to three comments. All in one transaction per 250 people,
committed by ``bulk_seed`` (the bench's own process, not a request).
"""

from __future__ import annotations

import os
import random
from datetime import timedelta

CLINICIAN = "clinician@demo.kinship.test"
MODERATORS = 50
CHUNK = 250
DAYS = 40


def bulk_seed(env: dict, total: int) -> dict:
    """Scale the demo study to ``total`` participants; return what the load needs."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from core import create_app
        from core.extensions import db

        app = create_app()
        with app.app_context():
            facts = _scale(total)
            db.session.commit()
        return facts
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _scale(total: int) -> dict:
    from sqlalchemy import func, insert, select

    from core.clock import utcnow
    from core.extensions import db
    from core.models import ConsentVersion, Participant, User
    from core.roles import Role
    from modules.models import Module, Step
    from outcomes.models import Arm

    demo = db.session.scalars(select(Participant).where(Participant.status == "active")).all()
    start = demo[0]
    clinician = db.session.scalar(select(User).where(User.email == CLINICIAN))
    peer = db.session.scalar(select(User).where(User.role == Role.PEER_MODERATOR))
    arms = db.session.scalars(select(Arm).order_by(Arm.id)).all()
    password = start.user.password_hash
    extra = db.session.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), [
        {"role": Role.PEER_MODERATOR, "email": f"bench-peer{n}@example.org",
         "display_name": f"Bench peer {n}", "display_key": f"bench peer {n}",
         "password_hash": password} for n in range(MODERATORS - 2)]).all()
    steps = db.session.execute(select(Step.id, Module.key, Step.key).join(Module)
                               .order_by(Module.position, Step.position)).all()
    ids = {"study": start.study_id, "arms": [a.id for a in arms], "password": password,
           "moderators": [peer.id, clinician.id, *extra], "steps": [s[0] for s in steps],
           "consent": db.session.scalar(select(func.max(ConsentVersion.id))), "now": utcnow()}
    existing = db.session.scalar(select(func.count(Participant.id)))
    codes: list[str] = []
    for first in range(existing, total, CHUNK):
        codes += _seed_chunk(ids, range(first, min(total, first + CHUNK)))
        db.session.commit()
    guided = [c for n, c in enumerate(codes) if n % 2 == 0]
    return {"participants": guided[:200], "step": f"/modules/{steps[1][1]}/{steps[1][2]}"}


def _seed_chunk(ids: dict, people: range) -> list[str]:
    """Users, participants and consent records for ``people``; then their activity."""
    from sqlalchemy import insert

    from core.extensions import db
    from core.models import ConsentRecord, Participant, User
    from core.roles import Role

    now = ids["now"]
    users = db.session.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), [
        {"role": Role.PARTICIPANT, "display_name": f"Bench {n}", "display_key": f"bench {n}",
         "password_hash": ids["password"], "created_at": now - timedelta(days=50)}
        for n in people]).all()
    codes = [f"BENCH-{n:05d}" for n in people]
    rows = [{"user_id": user, "study_id": ids["study"], "study_code": code,
             "arm_id": ids["arms"][n % 2], "status": "active", "site": "North clinic",
             "moderator_id": ids["moderators"][n % MODERATORS],
             "enrolled_at": now - timedelta(days=DAYS + 2),
             "randomised_at": now - timedelta(days=DAYS), "phone": f"+447{n:09d}",
             "sms_consent": True, "timezone": "Europe/London"}
            for n, user, code in zip(people, users, codes, strict=True)]
    participants = db.session.scalars(
        insert(Participant).returning(Participant.id, sort_by_parameter_order=True), rows).all()
    db.session.execute(insert(ConsentRecord), [
        {"user_id": user, "consent_version_id": ids["consent"], "sms_consent": True,
         "agreed_at": now - timedelta(days=DAYS + 1)} for user in users])
    people_ = list(zip(participants, users, [n % 2 == 0 for n in people], strict=True))
    _seed_activity(ids, people_)
    return codes


def _seed_activity(ids: dict, people: list[tuple[int, int, bool]]) -> None:
    from sqlalchemy import insert

    from core.events import ActivityEvent
    from core.extensions import db
    from modules.models import MoodEntry, StepProgress

    now, rng = ids["now"], random.Random(people[0][0])
    db.session.execute(insert(ActivityEvent), [
        {"participant_id": p, "kind": rng.choice(("login", "step_completed", "mood_logged")),
         "at": now - timedelta(days=d, hours=rng.randint(0, 12)), "detail": {}}
        for p, _, _ in people for d in range(DAYS) if rng.random() < 0.6])
    db.session.execute(insert(MoodEntry), [
        {"participant_id": p, "local_date": (now - timedelta(days=d)).date(),
         "score": rng.randint(1, 5), "created_at": now - timedelta(days=d),
         "updated_at": now - timedelta(days=d)}
        for p, _, _ in people for d in range(1, 30) if rng.random() < 0.5])
    db.session.execute(insert(StepProgress), [
        {"participant_id": p, "step_id": step, "completed_at": now - timedelta(days=k + 1)}
        for p, _, _ in people
        for k, step in enumerate(ids["steps"][: rng.randint(0, len(ids["steps"]) // 2)])])
    _seed_sms(ids, people, rng)
    _seed_forum(ids, people, rng)


def _seed_sms(ids: dict, people: list[tuple[int, int, bool]], rng: random.Random) -> None:
    from sqlalchemy import insert

    from core.extensions import db
    from core.sms import SmsMessage

    now, rows = ids["now"], []
    for p, _, _ in people:
        for d in range(1, 15):
            at = now - timedelta(days=d)
            rows.append({"direction": "out", "participant_id": p, "purpose": "prompt",
                         "body": "How lonely did you feel today, 0 to 10?",
                         "status": "delivered", "send_after": at, "created_at": at})
            if rng.random() < 0.6:
                rows.append({"direction": "in", "participant_id": p, "purpose": "inbound",
                             "body": str(rng.randint(0, 10)), "status": "received",
                             "twilio_sid": f"SMbench{p}x{d}", "send_after": at,
                             "created_at": at + timedelta(minutes=7)})
    db.session.execute(insert(SmsMessage), rows)


def _seed_forum(ids: dict, people: list[tuple[int, int, bool]], rng: random.Random) -> None:
    from sqlalchemy import insert

    from core.extensions import db
    from forum.models import Comment, Post

    now = ids["now"]
    authors = [user for _, user, guided in people if guided]
    posts = db.session.scalars(insert(Post).returning(Post.id, sort_by_parameter_order=True), [
        {"author_id": user, "kind": "post", "title": "",
         "body": "A walk in the park helped today.",
         "body_html": "<p>A walk in the park helped today.</p>",
         "created_at": now - timedelta(hours=rng.randint(1, DAYS * 24)), "is_held": False}
        for user in authors]).all()
    db.session.execute(insert(Comment), [
        {"post_id": post, "author_id": rng.choice(authors), "body": "Glad to hear it.",
         "body_html": "<p>Glad to hear it.</p>", "is_held": False,
         "created_at": now - timedelta(minutes=rng.randint(1, 600))}
        for post in posts for _ in range(rng.randint(0, 3))])
