"""Writing to the outbox: :func:`queue` and :func:`cancel`, and their bulk forms
:func:`queue_many` and :func:`cancel_many` for jobs that touch thousands of rows;
:func:`queue_staff` for the few texts to staff phones (risk alerts to clinicians).

All run in the caller's transaction (they flush, never commit). Nothing leaves the
server here: the ``sms.dispatch`` job sends committed rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from core.sms import statuses
from core.sms.models import OUT, SmsMessage


def may_text(participant: Participant | None) -> bool:
    """Whether the participant may be texted now: a phone, SMS consent, no STOP, enabled."""
    return bool(participant is not None and participant.phone and participant.sms_consent
                and participant.sms_opted_out_at is None and participant.user.is_enabled)


def queue(*, participant: Participant, body: str, purpose: str, dedupe_key: str | None = None,
          send_after: datetime | None = None) -> SmsMessage | None:
    """Add an outbound row; None (and nothing written) when the participant may not be
    texted. The same ``dedupe_key`` twice returns the first row."""
    if not may_text(participant):
        return None
    return _add(participant, body, purpose, dedupe_key, send_after)


def queue_reply(*, participant: Participant, body: str, purpose: str,
                in_reply_to: SmsMessage | None = None) -> SmsMessage | None:
    """A reply to a text the participant just sent (HELP, START, a handler's answer).
    They texted us, so only a missing phone or a STOP stops it; no consent check, as
    Twilio and carriers expect HELP to be answered."""
    if not participant.phone or participant.sms_opted_out_at is not None:
        return None
    row = _add(participant, body, purpose, None, None)
    if in_reply_to is not None:
        row.in_reply_to_id = in_reply_to.id
    return row


#: what a text to a staff phone may be for (the dispatcher sends these without a
#: participant: no consent, STOP or daily-limit check of a participant applies)
STAFF_PURPOSES = frozenset({"staff_alert"})
#: a staff text is one SMS segment: a short pointer to the app, never content
STAFF_BODY_MAX = 160
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def queue_staff(*, phone: str, body: str, dedupe_key: str, purpose: str = "staff_alert",
                send_after: datetime | None = None) -> SmsMessage:
    """Add an outbound text to a staff member's phone (E.164): a row without a
    participant, carrying the number, sent by ``sms.dispatch`` like every other text.
    The same ``dedupe_key`` twice returns the first row. ValueError for a purpose other
    than :data:`STAFF_PURPOSES`, a number not in E.164, an empty or over-long body."""
    if purpose not in STAFF_PURPOSES:
        raise ValueError(f"not a staff text purpose: {purpose!r}")
    if not _E164.fullmatch(phone or ""):
        raise ValueError("a staff text needs a number in E.164 form")
    if not body.strip() or len(body) > STAFF_BODY_MAX:
        raise ValueError(f"a staff text needs a body of 1 to {STAFF_BODY_MAX} characters")
    if not dedupe_key:
        raise ValueError("a staff text needs a dedupe key")
    existing = db.session.scalar(select(SmsMessage).where(SmsMessage.dedupe_key == dedupe_key))
    if existing is not None:
        return existing
    now = utcnow()
    row = SmsMessage(direction=OUT, participant_id=None, phone=phone, purpose=purpose,
                     body=body, status=statuses.PENDING, dedupe_key=dedupe_key,
                     send_after=send_after or now, created_at=now)
    try:
        with db.session.begin_nested():  # a concurrent writer of the same key: theirs
            db.session.add(row)
    except IntegrityError:
        return db.session.scalars(
            select(SmsMessage).where(SmsMessage.dedupe_key == dedupe_key)).one()
    return row


def _add(participant: Participant, body: str, purpose: str, dedupe_key: str | None,
         send_after: datetime | None) -> SmsMessage:
    if not body.strip():
        raise ValueError("an SMS needs a body")
    if dedupe_key is not None:
        existing = db.session.scalar(select(SmsMessage).where(SmsMessage.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    now = utcnow()
    row = SmsMessage(direction=OUT, participant_id=participant.id, purpose=purpose, body=body,
                     status=statuses.PENDING, dedupe_key=dedupe_key,
                     send_after=send_after or now, created_at=now)
    try:
        # a savepoint: a concurrent writer of the same key leaves the caller's
        # transaction usable, and we hand back that writer's row
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        if dedupe_key is None:
            raise
        return db.session.scalars(
            select(SmsMessage).where(SmsMessage.dedupe_key == dedupe_key)).one()
    return row


def cancel(message: SmsMessage, reason: str = "cancelled") -> bool:
    """Cancel a still-pending outbound row; False once a dispatcher has claimed it."""
    if message.direction != OUT:
        return False
    done = db.session.execute(
        update(SmsMessage)
        .where(SmsMessage.id == message.id, SmsMessage.status == statuses.PENDING)
        .values(status=statuses.CANCELLED, reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(message)
    return done == 1


def cancel_pending_for(participant: Participant, reason: str) -> int:
    """Cancel every still-pending outbound row of a participant (STOP, 21610)."""
    return db.session.execute(
        update(SmsMessage)
        .where(SmsMessage.participant_id == participant.id, SmsMessage.direction == OUT,
               SmsMessage.status == statuses.PENDING)
        .values(status=statuses.CANCELLED, reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount


# --------------------------------------------------------------------------- in bulk

#: ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits
CHUNK = 1000


@dataclass(frozen=True)
class Outgoing:
    """One text for :func:`queue_many`."""

    participant_id: int
    body: str
    purpose: str
    #: required here: it is what makes a repeated or concurrent bulk queue write once
    dedupe_key: str
    send_after: datetime | None = None


def _chunks(values: Sequence) -> Iterable[Sequence]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def textable(participant_ids: Iterable[int]) -> set[int]:
    """Those of ``participant_ids`` who may be texted now (:func:`may_text`, read from the
    database in a few queries)."""
    ids = sorted(set(participant_ids))
    allowed: set[int] = set()
    for chunk in _chunks(ids):
        allowed.update(db.session.scalars(
            select(Participant.id).join(User, User.id == Participant.user_id)
            .where(Participant.id.in_(chunk), Participant.phone.is_not(None),
                   Participant.phone != "", Participant.sms_consent.is_(True),
                   Participant.sms_opted_out_at.is_(None), User.is_enabled.is_(True))))
    return allowed


def _insert_skipping_known_keys():
    """INSERT ... ON CONFLICT (dedupe_key) DO NOTHING, on PostgreSQL (which waits for a
    concurrent writer of the same key, then skips) and SQLite alike."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(SmsMessage.__table__).on_conflict_do_nothing(index_elements=["dedupe_key"])


def queue_many(texts: Sequence[Outgoing]) -> dict[str, int]:
    """Add many outbound rows in a few statements, with the checks of :func:`queue`: a
    participant who may not be texted gets nothing written, an empty body is refused
    (ValueError, before anything is written). A dedupe key already in the outbox (an
    earlier run, a concurrent writer, or the same key twice in ``texts``) writes no
    second row; like :func:`queue`, that first row is handed back.

    Returns dedupe key -> outbox row id for every text now in the outbox (refused texts
    are left out)."""
    for text in texts:
        if not text.body.strip():
            raise ValueError("an SMS needs a body")
        if not text.dedupe_key:
            raise ValueError("queue_many needs a dedupe key for every text")
    allowed = textable(text.participant_id for text in texts)
    now = utcnow()
    rows = [{"direction": OUT, "participant_id": text.participant_id, "purpose": text.purpose,
             "body": text.body, "status": statuses.PENDING, "dedupe_key": text.dedupe_key,
             "send_after": text.send_after or now, "created_at": now, "resends": 0}
            for text in texts if text.participant_id in allowed]
    if not rows:
        return {}
    db.session.execute(_insert_skipping_known_keys(), rows)
    keys = list(dict.fromkeys(row["dedupe_key"] for row in rows))
    ids: dict[str, int] = {}
    for chunk in _chunks(keys):
        ids.update(db.session.execute(select(SmsMessage.dedupe_key, SmsMessage.id)
                                      .where(SmsMessage.dedupe_key.in_(chunk))).all())
    return ids


def cancel_many(message_ids: Iterable[int], reason: str = "cancelled") -> int:
    """:func:`cancel` for many rows: cancel those still pending (outbound only); return
    how many were. Rows already loaded in the session are expired, so they read the new
    status."""
    ids = sorted(set(message_ids))
    done = 0
    for chunk in _chunks(ids):
        done += db.session.execute(
            update(SmsMessage)
            .where(SmsMessage.id.in_(chunk), SmsMessage.direction == OUT,
                   SmsMessage.status == statuses.PENDING)
            .values(status=statuses.CANCELLED, reason=reason)
            .execution_options(synchronize_session=False)
        ).rowcount
    wanted = set(ids)
    for loaded in list(db.session.identity_map.values()):
        if isinstance(loaded, SmsMessage) and loaded.id in wanted:
            db.session.expire(loaded)
    return done
