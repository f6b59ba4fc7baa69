"""Issue 5 tried as a new user would, on the demo study (`make run`'s seed), through the
pages: a demo participant writes a post with risk language; it is held and they see the
crisis resources; the demo clinician sees the alert, acknowledges and resolves it; the
demo peer moderator hides a reported post and completes a check-in, which the
participant then reads under Messages."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.extensions import db
from forum.models import Post
from moderation.care_models import CheckInTask
from moderation.models import RiskAlert
from outcomes import demo
from tests.conftest import AuthActions
from tests.moderation.test_queue_views import version_of
from tests.pages import table_rows

PARTICIPANT, NAME = demo.DEMO_PARTICIPANT
PEER, CLINICIAN = "peer@demo.kinship.test", "clinician@demo.kinship.test"
RISKY = "I can't see the point any more, I want to end my life."


def signed_in(app, who: str):
    client = app.test_client()
    AuthActions(client, app).login(who, demo.DEMO_PASSWORD)
    return client


def text_of(response) -> str:
    return response.get_data(as_text=True)


def test_the_demo_moderation_walkthrough(app):
    with app.app_context():
        assert demo.seed()  # the demo exactly as `make run` seeds it
        db.session.commit()

    # the participant writes a post with risk language: held, crisis resources at once
    participant = signed_in(app, PARTICIPANT)
    response = participant.post("/forum/new", data={"kind": "post", "body": RISKY})
    assert response.headers["Location"].endswith("/help")
    crisis = text_of(participant.get("/help"))
    assert "A clinician from the study team may read it and get in touch." in crisis
    assert "waiting for a moderator" in text_of(participant.get("/forum/")).lower()
    with app.app_context():
        post = db.session.scalar(select(Post).where(Post.body == RISKY))
        assert post.is_held
        alert_id = db.session.scalar(select(RiskAlert.id))

    # the on-call clinician sees, acknowledges and resolves the alert
    clinician = signed_in(app, CLINICIAN)
    assert f"/moderation/alerts/{alert_id}" in text_of(clinician.get("/moderation/alerts"))
    assert clinician.post(f"/moderation/alerts/{alert_id}/acknowledge").status_code == 302
    resolved = clinician.post(f"/moderation/alerts/{alert_id}/resolve", data={
        "actions": ["contacted_participant", "safety_plan_reviewed"], "adverse_event": "no",
        "note": "Called; safety plan reviewed together."})
    assert resolved.status_code == 302
    with app.app_context():
        alert = db.session.get(RiskAlert, alert_id)
        assert alert.status == "resolved" and alert.resolved_by.email == CLINICIAN

    # another participant reports a post of the demo forum; the peer hides it
    with app.app_context():
        mine = post.author_id
        target = db.session.scalar(select(Post).where(Post.is_held.is_(False),
                                                      Post.hidden_at.is_(None),
                                                      Post.author_id != mine)
                                   .order_by(Post.id.desc()))
        target_id, target_body = target.id, target.body
    assert participant.post(f"/forum/posts/{target_id}/report",
                            data={"reason": "unkind", "note": ""}).status_code == 302
    peer = signed_in(app, PEER)
    queue = text_of(peer.get("/moderation/queue"))
    link = re.search(r'href="(/moderation/queue/\d+)"', queue).group(1)
    item = text_of(peer.get(link))
    hidden = peer.post(f"{link}/hide", data={"hide-version": version_of(item, "hide"),
                                             "hide-reason": "unkind"}, follow_redirects=True)
    assert "Hidden from participants" in text_of(hidden)
    thread = participant.get(f"/forum/posts/{target_id}")
    assert thread.status_code == 404 or target_body not in text_of(thread)

    # the peer completes one of the check-ins the daily rules opened for the demo
    checkins = peer.get("/moderation/checkins")
    assert checkins.status_code == 200 and table_rows(checkins.data)
    with app.app_context():
        task = db.session.scalar(select(CheckInTask).where(
            CheckInTask.status == "open", CheckInTask.moderator.has(email=PEER))
            .order_by(CheckInTask.id))
        task_id, person = task.id, task.participant
        person_id, person_code = person.id, person.study_code
    body = "Hello, just checking in. How has this week been for you?"
    done = peer.post(f"/moderation/checkins/{task_id}/complete", data={
        "version": "1", "channel": "in_app", "body": body, "outcome": "no_answer"})
    assert done.status_code == 302
    with app.app_context():
        assert db.session.get(CheckInTask, task_id).status == "done"
    assert body in text_of(peer.get(f"/moderation/participants/{person_id}/messages"))
    if person_code == PARTICIPANT:
        reader = participant
    else:
        with app.app_context():
            from core.models import Participant
            from core.passwords import hash_password
            db.session.get(Participant, person_id).user.password_hash = hash_password(
                demo.DEMO_PASSWORD)
            db.session.commit()
        reader = signed_in(app, person_code)
    assert body in text_of(reader.get("/messages"))
