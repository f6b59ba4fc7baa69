"""Twilio's webhooks arrive twice and out of order. Property-based: for any shuffled
sequence of status callbacks (with repeats) a text's status never moves backwards and
ends at the furthest status delivered (the first final status wins); for any interleaving
of repeated inbound deliveries each text is stored exactly once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.models import Participant
from core.sms import SmsMessage
from core.sms.statuses import RANK, from_twilio
from tests.core.sms.conftest import PHONE, inbound_params, signed_post, texting_participant

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
#: Twilio's callbacks for one text, with the error code a failure carries
CALLBACKS = [("queued", None), ("sending", None), ("sent", None), ("delivered", None),
             ("undelivered", "30003"), ("failed", "30005")]
FIXTURES = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
_sids = itertools.count(1)


def sent_text(app) -> tuple[int, str]:
    """A text Twilio has accepted (status queued, with its MessageSid)."""
    with app.app_context():
        participant = db.session.scalar(select(Participant)) or texting_participant()
        sid = f"SM{next(_sids):032d}"
        row = SmsMessage(direction="out", participant_id=participant.id, purpose="prompt",
                         body="How lonely did you feel today?", phone=PHONE, status="queued",
                         twilio_sid=sid, send_after=T0, claimed_at=T0, sent_at=T0)
        db.session.add(row)
        db.session.commit()
        return row.id, sid


def status_of(app, message_id: int) -> tuple[str, int | None]:
    with app.app_context():
        row = db.session.get(SmsMessage, message_id)
        return row.status, row.error_code


def expected_end(sequence: list[tuple[str, str | None]]) -> tuple[str, int | None]:
    """The furthest status delivered; among final ones (equal rank) the first to arrive."""
    status, code = "queued", None
    for name, error in sequence:
        ours = from_twilio(name)
        if ours is not None and RANK[ours] > RANK[status]:
            status, code = ours, int(error) if error else code
    return status, code


@FIXTURES
@given(sequence=st.lists(st.sampled_from(CALLBACKS), min_size=1, max_size=8))
def test_status_never_moves_backwards_whatever_the_order(app, sequence):
    clock.set_time(T0)
    message_id, sid = sent_text(app)
    client = app.test_client()
    rank = RANK["queued"]
    for name, code in sequence:
        params = {"MessageSid": sid, "MessageStatus": name, "AccountSid": "AC" + "a" * 32,
                  "To": PHONE, "From": "+15005550006"}
        if code:
            params["ErrorCode"] = code
        assert signed_post(client, app, f"/sms/twilio/status/{message_id}",
                           params).status_code == 204
        status, _ = status_of(app, message_id)
        assert RANK[status] >= rank, f"moved back to {status} after {name}"
        rank = RANK[status]
    assert status_of(app, message_id) == expected_end(sequence)


@FIXTURES
@given(order=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=10))
def test_each_inbound_text_is_stored_once_however_often_it_arrives(app, order):
    with app.app_context():
        if db.session.scalar(select(Participant)) is None:
            texting_participant()
        before = db.session.scalar(select(func.count(SmsMessage.id))
                                   .where(SmsMessage.direction == "in"))
    run = next(_sids)
    client = app.test_client()
    for n in order:
        sid = f"SM{run:016d}{n:016d}"
        response = signed_post(client, app, "/sms/twilio/inbound",
                               inbound_params(f"Reply {n}", sid=sid))
        assert response.status_code == 200
    with app.app_context():
        stored = db.session.scalars(select(SmsMessage.twilio_sid)
                                    .where(SmsMessage.direction == "in")).all()
    assert len(stored) - before == len(set(order))
    assert len(stored) == len(set(stored))
