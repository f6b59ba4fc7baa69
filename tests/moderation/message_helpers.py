"""Shared set-up for the message, note and suggestion tests: the people, signed-in
clients, and reading what a page shows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape

from sqlalchemy import select

# The pages register with moderation's blueprint when imported (moderation/__init__.py
# imports them in the app; importing them here first keeps these tests independent of it).
import moderation.message_views  # noqa: F401
import moderation.note_views  # noqa: F401
import moderation.suggest_views  # noqa: F401
from core.audit import AuditEntry
from core.extensions import db
from core.roles import Role
from tests.conftest import AuthActions
from tests.factories import make_participant, make_staff, make_study

PEER = "peer@example.org"
OTHER_PEER = "other@example.org"
CLINICIAN = "clinician@example.org"
RESEARCHER = "researcher@example.org"
ADMIN = "admin@example.org"
MINE = "T-0001"
THEIRS = "T-0002"


@dataclass(frozen=True)
class Cast:
    """Ids only: no instances cross requests."""

    peer: int
    other_peer: int
    clinician: int
    participant: int
    participant_user: int
    other_participant: int


def make_cast(app, *, arm: str | None = "guided") -> Cast:
    """Peer "Kit" holds T-0001 (Quiet Harbour); peer "Lee" holds T-0002 (Still Meadow);
    a clinician, a researcher and an admin exist too."""
    with app.app_context():
        study = make_study()
        peer = make_staff(Role.PEER_MODERATOR, PEER, name="Kit")
        other = make_staff(Role.PEER_MODERATOR, OTHER_PEER, name="Lee")
        clinician = make_staff(Role.CLINICIAN, CLINICIAN, name="Dr Patel")
        make_staff(Role.RESEARCHER, RESEARCHER)
        make_staff(Role.ADMIN, ADMIN)
        mine = make_participant(study, MINE, moderator=peer, arm=arm)
        theirs = make_participant(study, THEIRS, name="Still Meadow", moderator=other, arm=arm)
        return Cast(peer.id, other.id, clinician.id, mine.id, mine.user_id, theirs.id)


def signed_in(app, identifier: str):
    """A fresh test client signed in as ``identifier`` (e-mail or study code)."""
    client = app.test_client()
    response = AuthActions(client, app).login(identifier)
    assert response.status_code == 302, identifier
    return client


def text_of(response) -> str:
    """The page's visible text, tags dropped, whitespace collapsed."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def audits(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(AuditEntry.seq)))


#: the moment the message, note and suggestion tests run at
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

