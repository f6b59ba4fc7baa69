"""Sending the outbox (``sms.dispatch``) and finding out what happened to texts whose
send had no clear answer (``sms.reconcile``).

Transaction contract: unlike other jobs, these commit as they go. A batch's claim is
committed before any HTTP call (so no transaction, and on SQLite no write lock, is held
while Twilio answers), and the batch's results are committed together once its sends
are done. Batches overlap: the next batch is claimed while the current one is sent, so
a process killed half-way leaves at most two batches in ``sending``, which
reconciliation settles by looking the texts up, never by resending blindly. The
scheduler's own commit afterwards finds nothing left to do.

Exactly once: a row is claimed by a conditional UPDATE (``status='pending'`` ->
``sending``; on PostgreSQL the candidates are first locked ``FOR UPDATE SKIP LOCKED``),
so two dispatchers never claim the same row, and a row is sent only by the dispatcher
whose claim it carries. A 5xx or a timeout leaves the row ``unknown``: it is never sent
again unless reconciliation proves Twilio never created it (then once at most).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import bindparam, case, func, or_, select, text, update

from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from core.scheduler import holder_name
from core.sms import statuses
from core.sms.gateway import ACCEPTED, REJECTED, RETRY, Gateway, SendResult, get_gateway
from core.sms.models import OUT, SmsMessage
from core.sms.optout import opt_out

log = logging.getLogger("kinship.sms.dispatch")

#: purposes that answer a text the participant just sent (no consent re-check)
REPLY_PURPOSES = frozenset({"help", "reply", "start"})
#: texts to staff (no participant: the row carries the number; no consent or daily limit)
STAFF_PURPOSES = frozenset({"staff_alert"})
#: statuses that count against the daily cost guard
COUNTED = frozenset({statuses.SENDING, statuses.UNKNOWN, statuses.QUEUED, statuses.SENT,
                     statuses.DELIVERED, statuses.UNDELIVERED})
#: how long a row waits after a 429 or a connection failure that outlasted the retries
RETRY_AFTER = timedelta(minutes=1)
STATUS_PATH = "/sms/twilio/status/{id}"


class RateLimiter:
    """At most ``rate`` sends per second across one dispatcher (0: no limit)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self._next: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


@dataclass(frozen=True)
class Claimed:
    """What sending a claimed row needs, read before its claim commits (no reloads)."""

    id: int
    owner: str
    participant_id: int | None
    phone: str
    body: str
    callback: str


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    retry: int = 0
    cancelled: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_dict(self) -> dict[str, object]:
        return {"claimed": self.claimed, "sent": self.sent, "failed": self.failed,
                "unknown": self.unknown, "retry": self.retry, "cancelled": dict(self.cancelled)}


def dispatch(*, gateway: Gateway | None = None, limiter: RateLimiter | None = None,
             batch_size: int | None = None, max_seconds: float | None = None
             ) -> dict[str, object]:
    """Send every due pending row (in batches, until none is due or the time is up)."""
    config = current_app.config
    gateway = gateway or get_gateway()
    limiter = limiter or RateLimiter(float(config["SMS_SEND_RATE_PER_SECOND"]))
    batch_size = batch_size or int(config["SMS_DISPATCH_BATCH"])
    deadline = time.monotonic() + (max_seconds or float(config["SMS_DISPATCH_MAX_SECONDS"]))
    owner = f"{holder_name()}:{uuid.uuid4().hex[:8]}"[:64]
    postgres = db.session.get_bind().dialect.name == "postgresql"
    threads = max(1, int(config["SMS_DISPATCH_THREADS"]))
    report = DispatchReport()
    db.session.commit()  # start from a clean transaction: claims must commit on their own
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sms-send") as pool:
        # a pipeline: while one batch's texts are on the pool, this thread claims and
        # prepares the next one and queues it behind, then records the first batch's
        # results; the pool never waits for the database, the database never for Twilio
        sending: dict[Future[SendResult], Claimed] = {}
        while time.monotonic() < deadline:
            ids = claim(owner, utcnow(), batch_size, postgres=postgres)
            report.claimed += len(ids)
            following: dict[Future[SendResult], Claimed] = {}
            for row in prepare(owner, ids, report) if ids else []:
                limiter.wait()
                following[pool.submit(_send, gateway, row)] = row
            _record_batch(sending, report, postgres=postgres)
            sending = following
            if not ids:
                break
        _record_batch(sending, report, postgres=postgres)
    return report.as_dict()


def _record_batch(sending: dict[Future[SendResult], Claimed], report: DispatchReport, *,
                  postgres: bool) -> None:
    """Wait for a batch's sends and write their results in one short transaction (on
    SQLite no write lock is held while Twilio answers). A crash before this leaves the
    batch "sending", which reconciliation settles without resending."""
    if not sending:
        return
    results = [(sending[future], future.result()) for future in as_completed(sending)]
    if postgres:
        # the claims were committed durably; losing these results in a database crash
        # only leaves rows "sending", settled by reconciliation
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    record_all(results, report)
    db.session.commit()


def _send(gateway: Gateway, row: Claimed) -> SendResult:
    return gateway.send(to=row.phone, body=row.body, status_callback=row.callback)


def claim(owner: str, now: datetime, limit: int, *, postgres: bool) -> list[int]:
    """Claim up to ``limit`` due rows for ``owner`` and commit; return their ids."""
    due = (select(SmsMessage.id)
           .where(SmsMessage.status == statuses.PENDING, SmsMessage.direction == OUT,
                  SmsMessage.send_after <= now)
           .order_by(SmsMessage.send_after, SmsMessage.id).limit(limit))
    if postgres:
        due = due.with_for_update(skip_locked=True)
    ids = list(db.session.scalars(due))
    if ids:
        db.session.execute(
            update(SmsMessage)
            .where(SmsMessage.id.in_(ids), SmsMessage.status == statuses.PENDING)
            .values(status=statuses.SENDING, claimed_by=owner, claimed_at=now)
            .execution_options(synchronize_session=False))
    db.session.commit()
    return ids


@dataclass(frozen=True)
class Candidate:
    """A claimed row with the participant facts that decide whether it may go out."""

    id: int
    participant_id: int | None
    purpose: str
    body: str
    phone: str | None
    sms_consent: bool
    opted_out: bool
    enabled: bool
    timezone: str


def _candidates(owner: str, ids: list[int]) -> list[Candidate]:
    rows = db.session.execute(
        select(SmsMessage.id, SmsMessage.participant_id, SmsMessage.purpose, SmsMessage.body,
               func.coalesce(Participant.phone, SmsMessage.phone), Participant.sms_consent,
               Participant.sms_opted_out_at.is_not(None), User.is_enabled, Participant.timezone)
        .outerjoin(Participant, Participant.id == SmsMessage.participant_id)
        .outerjoin(User, User.id == Participant.user_id)
        .where(SmsMessage.id.in_(ids), SmsMessage.claimed_by == owner,
               SmsMessage.status == statuses.SENDING)
        .order_by(SmsMessage.send_after, SmsMessage.id))
    return [Candidate(*row) for row in rows]


def prepare(owner: str, ids: list[int], report: DispatchReport) -> list[Claimed]:
    """Cancel claimed rows that may no longer go out (STOP since queued, daily limit);
    note each remaining row's number; commit. Return the rows to send."""
    candidates = _candidates(owner, ids)
    counts = sent_today(candidates)
    limit = int(current_app.config["SMS_MAX_PER_PARTICIPANT_PER_DAY"])
    ready: list[Claimed] = []
    cancelled: dict[str, list[int]] = defaultdict(list)
    for row in candidates:
        reason = _refusal(row, counts, limit)
        if reason is not None:
            cancelled[reason].append(row.id)
            report.cancelled[reason] += 1
            log.info("sms %s cancelled: %s", row.id, reason)
            continue
        counts[row.participant_id] += 1
        ready.append(Claimed(row.id, owner, row.participant_id, row.phone or "", row.body,
                             status_callback_url(row.id)))
    for reason, message_ids in cancelled.items():
        db.session.execute(update(SmsMessage).where(SmsMessage.id.in_(message_ids))
                           .values(status=statuses.CANCELLED, reason=reason)
                           .execution_options(synchronize_session=False))
    if ready:  # the number texted, as it was at send time (reconciliation lists by it)
        db.session.execute(PHONE_UPDATE, [{"m_id": row.id, "m_phone": row.phone}
                                          for row in ready])
    db.session.commit()
    return ready


def _refusal(row: Candidate, counts: dict[int | None, int], limit: int) -> str | None:
    if row.participant_id is None:
        return None if row.purpose in STAFF_PURPOSES and row.phone else "no_phone"
    if not row.phone:
        return "no_phone"
    if row.opted_out:
        return "opted_out"
    if not row.enabled:
        return "disabled"
    if row.purpose not in REPLY_PURPOSES and not row.sms_consent:
        return "no_consent"
    if limit and counts[row.participant_id] >= limit:
        return "daily_limit"
    return None


def local_day_start(timezone: str, now: datetime) -> datetime:
    try:
        zone = ZoneInfo(timezone)
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)


def sent_today(rows: list[Candidate]) -> dict[int | None, int]:
    """Texts already on their way today (the participant's local day), per participant,
    not counting the rows being prepared."""
    now = utcnow()
    starts = {row.participant_id: local_day_start(row.timezone, now)
              for row in rows if row.participant_id is not None}
    counts: dict[int | None, int] = defaultdict(int)
    if not starts:
        return counts
    mine = {row.id for row in rows}
    found = db.session.execute(
        select(SmsMessage.id, SmsMessage.participant_id, SmsMessage.claimed_at)
        .where(SmsMessage.participant_id.in_(starts), SmsMessage.direction == OUT,
               SmsMessage.status.in_(COUNTED), SmsMessage.claimed_at >= min(starts.values())))
    for message_id, participant_id, claimed_at in found:
        if message_id not in mine and claimed_at >= starts[participant_id]:
            counts[participant_id] += 1
    return counts


def status_callback_url(message_id: int) -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + STATUS_PATH.format(id=message_id)


_table = SmsMessage.__table__
#: the numbers of a prepared batch (one executemany, without the ORM's per-row bookkeeping)
PHONE_UPDATE = (update(_table).where(_table.c.id == bindparam("m_id"))
                .values(phone=bindparam("m_phone")))
#: one statement for every accepted send of a batch (executemany)
ACCEPTED_UPDATE = (
    update(_table)
    .where(_table.c.id == bindparam("m_id"), _table.c.claimed_by == bindparam("m_owner"))
    .values(twilio_sid=bindparam("m_sid"), sent_at=bindparam("m_now"),
            delivered_at=func.coalesce(_table.c.delivered_at, bindparam("m_delivered")),
            # a status callback may have got here first: keep its (later) status
            status=case((or_(_table.c.status == statuses.SENDING,
                             _table.c.status == statuses.UNKNOWN), bindparam("m_status")),
                        else_=_table.c.status)))


def record_all(results: list[tuple[Claimed, SendResult]], report: DispatchReport) -> None:
    """Write the results of a batch (the caller commits)."""
    now = utcnow()
    accepted = []
    for row, result in results:
        if result.outcome != ACCEPTED:
            record(row, result, report)
            continue
        report.sent += 1
        target = statuses.from_twilio(result.status) or statuses.QUEUED
        accepted.append({"m_id": row.id, "m_owner": row.owner, "m_sid": result.sid,
                         "m_now": now, "m_status": target,
                         "m_delivered": now if target == statuses.DELIVERED else None})
    if accepted:
        db.session.execute(ACCEPTED_UPDATE, accepted)
    log.info("sms dispatch batch: %s accepted of %s", len(accepted), len(results))


def record(row: Claimed, result: SendResult, report: DispatchReport) -> None:
    """Write what came of sending a claimed row (the caller commits)."""
    now = utcnow()
    mine = (SmsMessage.id == row.id, SmsMessage.claimed_by == row.owner)
    if result.outcome == ACCEPTED:
        report.sent += 1
        target = statuses.from_twilio(result.status) or statuses.QUEUED
        extra = {"delivered_at": now} if target == statuses.DELIVERED else {}
        # a status callback may have got here first: keep its (later) status
        db.session.execute(update(SmsMessage).where(*mine).values(
            twilio_sid=result.sid, sent_at=now, **extra,
            status=case((SmsMessage.status.in_([statuses.SENDING, statuses.UNKNOWN]), target),
                        else_=SmsMessage.status))
            .execution_options(synchronize_session=False))
    elif result.outcome == REJECTED:
        report.failed += 1
        _rejected(row, result.error_code, mine)
    elif result.outcome == RETRY:
        report.retry += 1
        db.session.execute(update(SmsMessage).where(*mine, SmsMessage.status == statuses.SENDING)
                           .values(status=statuses.PENDING, claimed_by=None, claimed_at=None,
                                   send_after=now + RETRY_AFTER)
                           .execution_options(synchronize_session=False))
    else:
        report.unknown += 1
        db.session.execute(update(SmsMessage).where(*mine, SmsMessage.status == statuses.SENDING)
                           .values(status=statuses.UNKNOWN)
                           .execution_options(synchronize_session=False))
    log.info("sms %s: %s", row.id, result.outcome)


def _rejected(row: Claimed, code: int | None, mine: tuple) -> None:
    db.session.execute(update(SmsMessage).where(*mine, SmsMessage.status == statuses.SENDING)
                       .values(status=statuses.FAILED, error_code=code)
                       .execution_options(synchronize_session=False))
    if code == statuses.OPTED_OUT_CODE and row.participant_id is not None:
        opt_out(db.session.get(Participant, row.participant_id), source="twilio_21610")
