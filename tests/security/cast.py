"""The people and objects the security suite probes with: participants A and B on
different peer moderators' caseloads, a clinician, a researcher and an admin, and one of
each kind of private object that belongs to B, every one carrying a unique marker text.

Call :func:`make_cast` inside an app context; it commits. Helpers that snapshot the
database (row counts, and B's rows column by column) live here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, inspect, select

from core.clock import utcnow
from core.extensions import db
from core.notifications import Notification
from core.roles import Role
from core.sms import SmsMessage
from forum.models import Comment, Post
from moderation.care_models import CheckInTask, ModeratorMessage, StaffNote
from moderation.models import QueueItem, RiskAlert
from modules.models import ActionPlan, ContentSuggestion, JournalEntry
from outcomes.assessments.models import AssessmentResponse, ItemAnswer, Timepoint
from tests.conftest import AuthActions
from tests.factories import make_participant, make_staff, make_study
from tests.modules.content_rows import make_module, step_of

IDENTIFIERS = {
    "participant": "T-0001",
    "participant_b": "T-0002",
    "peer_moderator": "peer_moderator@example.org",
    "peer_b": "peer_b@example.org",
    "clinician": "clinician@example.org",
    "researcher": "researcher@example.org",
    "admin": "admin@example.org",
}

#: marker texts of B's private objects, by what they are
MARKERS = {
    "journal": "Bmarker journal reflection 7f3a",
    "message": "Bmarker moderator message 91c2",
    "note": "Bmarker staff note 44d0",
    "clinician_note": "Bmarker clinician-only note 2b8e",
    "held_post": "Bmarker held forum post 0d17",
    "held_comment": "Bmarker held comment 6a55",
    "sms_answer": "Bmarker sms answer 3e9f",
    "notification": "Bmarker notification 5c71",
}
#: what people on a caseload other than B's (and researchers) must never see
PRIVATE = ("journal", "message", "note", "clinician_note", "sms_answer", "notification")


@dataclass
class Cast:
    a_id: int
    b_id: int
    b_user_id: int
    #: URL values that point at B's objects
    b_values: dict[str, Any] = field(default_factory=dict)
    #: (model, id) of every object of B's, for the before/after comparison
    b_rows: list[tuple[type, int]] = field(default_factory=list)


def make_cast() -> Cast:
    study = make_study()
    make_staff(Role.ADMIN)
    make_staff(Role.RESEARCHER)
    clinician = make_staff(Role.CLINICIAN)
    peer_a = make_staff(Role.PEER_MODERATOR)
    peer_b = make_staff(Role.PEER_MODERATOR, IDENTIFIERS["peer_b"])
    a = make_participant(study, "T-0001", name="Quiet Harbour", moderator=peer_a, arm="guided")
    b = make_participant(study, "T-0002", name="Still Meadow", moderator=peer_b, arm="guided")
    for person in (a, b):
        person.user.created_at = utcnow() - timedelta(days=30)
    b.phone, b.sms_consent = "+447700900456", True
    rows = _private_rows(b, peer_b, clinician) + _forum_rows(b) + _module_rows(b, peer_b)
    rows += _questionnaire_rows(b)
    db.session.commit()
    cast = Cast(a.id, b.id, b.user_id, b_rows=[(type(row), row.id) for row in rows])
    ids = {type(row): row.id for row in rows}
    cast.b_values = {
        "participant_id": b.id, "user_id": b.user_id, "post_id": ids[Post],
        "comment_id": ids[Comment], "notification_id": ids[Notification],
        "plan_id": ids[ActionPlan], "suggestion_id": ids[ContentSuggestion],
        "response_id": ids[AssessmentResponse], "item_id": ids[QueueItem],
        "alert_id": ids[RiskAlert], "task_id": ids[CheckInTask],
        "message_id": ids[SmsMessage], "number": 1,
    }
    return cast


def _private_rows(b, peer_b, clinician) -> list[Any]:
    now = utcnow()
    journal = JournalEntry(participant_id=b.id, body=MARKERS["journal"], screening="held")
    message = ModeratorMessage(participant_id=b.id, sender_id=peer_b.id, direction="to_participant",
                               body=MARKERS["message"], created_at=now)
    note = StaffNote(participant_id=b.id, author_id=peer_b.id, body=MARKERS["note"])
    secret = StaffNote(participant_id=b.id, author_id=clinician.id, clinician_only=True,
                       body=MARKERS["clinician_note"])
    sms = SmsMessage(direction="in", participant_id=b.id, purpose="reply",
                     body=MARKERS["sms_answer"], status="received", created_at=now)
    notice = Notification(user_id=b.user_id, kind="reply", text=MARKERS["notification"],
                          url="/forum/")
    db.session.add_all([journal, message, note, secret, sms, notice])
    db.session.flush()
    item = QueueItem(channel="reflection", content_type="journal_entry", content_id=journal.id,
                     author_id=b.user_id, participant_id=b.id, action="hold",
                     category="self_harm", severity=3, is_risk=True, clinician_only=True)
    db.session.add(item)
    db.session.flush()
    alert = RiskAlert(item_id=item.id, channel="reflection", content_type="journal_entry",
                      content_id=journal.id, author_id=b.user_id, participant_id=b.id,
                      category="self_harm", opened_at=now, deadline_at=now + timedelta(hours=1))
    task = CheckInTask(participant_id=b.id, moderator_id=peer_b.id, reason="inactive",
                       status="open", due_at=now, created_at=now, open_key=f"{b.id}:inactive")
    db.session.add_all([alert, task])
    db.session.flush()
    return [journal, message, note, secret, sms, notice, item, alert, task]


def _forum_rows(b) -> list[Any]:
    post = Post(author_id=b.user_id, body=MARKERS["held_post"],
                body_html=f"<p>{MARKERS['held_post']}</p>", is_held=True)
    db.session.add(post)
    db.session.flush()
    comment = Comment(post_id=post.id, author_id=b.user_id, body=MARKERS["held_comment"],
                      body_html=f"<p>{MARKERS['held_comment']}</p>", is_held=True)
    db.session.add(comment)
    db.session.flush()
    return [post, comment]


def _module_rows(b, peer_b) -> list[Any]:
    module = make_module("security-probe")
    plan = ActionPlan(participant_id=b.id, step_id=step_of(module, "action").id,
                      check_due_at=utcnow() - timedelta(days=1))
    suggestion = ContentSuggestion(participant_id=b.id, module_id=module.id,
                                   suggested_by_id=peer_b.id)
    db.session.add_all([plan, suggestion])
    db.session.flush()
    return [plan, suggestion]


def _questionnaire_rows(b) -> list[Any]:
    timepoint = Timepoint(study_id=b.study_id, key="baseline", label="Baseline",
                          instruments=["ucla3"], is_baseline=True)
    db.session.add(timepoint)
    db.session.flush()
    response = AssessmentResponse(participant_id=b.id, timepoint_id=timepoint.id,
                                  instrument="ucla3")
    db.session.add(response)
    db.session.flush()
    db.session.add(ItemAnswer(response_id=response.id, item=1, value=3))
    db.session.flush()
    return [response]


def sign_in(app, who: str):
    """A test client signed in as ``who`` (a key of IDENTIFIERS)."""
    client = app.test_client()
    response = AuthActions(client, app).login(IDENTIFIERS[who])
    assert response.status_code == 302, f"{who} could not sign in"
    assert not response.headers["Location"].endswith(("/login", "/login/code")), who
    return client


#: tables a request may write to without changing anything of anyone's: sign-in, audit
#: and activity logs, and ``site_setting`` (the export pseudonym key is made on first use)
LOG_TABLES = {"user_session", "login_attempt", "audit_entry", "audit_head", "activity_event",
              "site_setting"}


def row_counts(skip: set[str] = LOG_TABLES) -> dict[str, int]:
    """Row counts of every table but ``skip``."""
    return {table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables if table.name not in skip}


def rows_state(rows: list[tuple[type, int]]) -> dict[str, dict[str, Any]]:
    """Every column of each of the given rows."""
    db.session.expire_all()
    state = {}
    for model, row_id in rows:
        row = db.session.get(model, row_id)
        state[f"{model.__name__}:{row_id}"] = (
            None if row is None else {c.key: getattr(row, c.key)
                                      for c in inspect(model).column_attrs})
    return state
