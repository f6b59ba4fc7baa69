"""Append-only, hash-chained audit log.

``record`` flushes and never commits: the entry lands in the caller's
transaction, so an action and its audit entry commit or roll back together.
Each entry's hash covers its fields and the previous entry's hash; appenders
are serialised by updating the single ``audit_head`` row first (a row lock on
PostgreSQL, the write lock on SQLite), so the chain cannot fork.

**Anchors.** The hashes carry no secret, so someone who can write to the database could
rewrite entries and hash the whole chain again, or empty it together with ``audit_head``,
and ``verify_chain`` alone would find it intact. An *anchor* (``anchor()``: the newest
entry's number and hash, ``SEQ:HASH``) kept outside the database catches both: the
scheduler logs one every hour (``core.jobs.audit_anchor``), operators can print one
(``flask audit anchor``), and ``flask audit verify --anchor SEQ:HASH`` checks that the
entry is still there with that hash (``check_anchor``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.extensions import db

GENESIS = "0" * 64


class AuditHead(db.Model):
    """One row: the sequence number and hash of the newest audit entry."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


class AuditEntry(db.Model):
    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: position in the chain, 1, 2, 3... without gaps
    seq: Mapped[int] = mapped_column(unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[int | None]
    #: small structured facts; never free text, phone numbers or message bodies
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def entry_hash(entry: AuditEntry) -> str:
    payload = json.dumps(
        {
            "seq": entry.seq,
            "at": entry.at.isoformat(timespec="microseconds"),
            "actor_id": entry.actor_id,
            "action": entry.action,
            "target_type": entry.target_type,
            "target_id": entry.target_id,
            "detail": entry.detail,
            "prev_hash": entry.prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def record(
    action: str,
    *,
    actor: Any = None,
    target: Any = None,
    **detail: Any,
) -> AuditEntry:
    """Append an entry. ``actor`` and ``target`` are model instances or None."""
    session = db.session
    head_id = _ensure_head()
    session.execute(update(AuditHead).where(AuditHead.id == head_id).values(seq=AuditHead.seq + 1))
    seq, prev_hash = session.execute(
        select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == head_id)
    ).one()
    entry = AuditEntry(
        seq=seq,
        at=utcnow(),
        actor_id=getattr(actor, "id", None),
        action=action,
        target_type=_target_type(target),
        target_id=getattr(target, "id", None),
        detail=json.loads(json.dumps(detail, default=str)),
        prev_hash=prev_hash,
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    session.execute(update(AuditHead).where(AuditHead.id == head_id).values(last_hash=entry.hash))
    session.flush()
    return entry


def _ensure_head() -> int:
    """Create the head row on the first append. Two first appenders may race here, so
    the insert skips a row that another transaction has just made (and, on PostgreSQL,
    waits for that transaction) instead of failing on the primary key."""
    head = db.session.execute(select(AuditHead.id).where(AuditHead.id == 1)).scalar()
    if head is None:
        dialect = db.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        db.session.execute(insert(AuditHead).values(id=1, seq=0, last_hash=GENESIS)
                           .on_conflict_do_nothing(index_elements=["id"]))
    return 1


def _target_type(target: Any) -> str | None:
    if target is None:
        return None
    return getattr(target, "__tablename__", type(target).__name__.lower())


@dataclass
class ChainReport:
    checked: int
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify_chain(batch: int = 1000) -> ChainReport:
    """Recompute every hash in order; report the first entry that does not fit."""
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    last_id = 0
    while True:
        rows = db.session.scalars(
            select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch)
        ).all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                return ChainReport(checked, entry.seq, f"expected entry {expected_seq} here: "
                                   "an entry was deleted or inserted")
            if entry.prev_hash != prev_hash:
                return ChainReport(checked, entry.seq, "does not link to the entry before it")
            if entry_hash(entry) != entry.hash:
                return ChainReport(checked, entry.seq,
                                   "its content was changed after it was written")
            prev_hash = entry.hash
            expected_seq += 1
            checked += 1
            last_id = entry.id
        db.session.expunge_all()
    head = db.session.get(AuditHead, 1)
    if head is not None and (head.seq != checked or head.last_hash != prev_hash):
        return ChainReport(checked, checked + 1, "the newest entries are missing (chain was cut)")
    return ChainReport(checked)


def anchor() -> str:
    """The newest entry's number and hash as ``SEQ:HASH`` (``0:000...`` for an empty
    log), to keep outside the database."""
    head = db.session.get(AuditHead, 1)
    return f"{head.seq}:{head.last_hash}" if head is not None else f"0:{GENESIS}"


class BadAnchor(ValueError):
    pass


ANCHOR = re.compile(r"([0-9]+):([0-9a-f]{64})", re.ASCII)


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as ``(seq, hash)``; the hash in either case. Raises ``BadAnchor``."""
    found = ANCHOR.fullmatch(text.strip().lower())
    if found is None:
        raise BadAnchor(f"{text!r} is not an anchor: expected the entry number, a colon and "
                        "its 64-character hash, as `flask audit anchor` prints it")
    return int(found[1]), found[2]


def check_anchor(seq: int, digest: str) -> str | None:
    """None when the log still holds entry ``seq`` with the hash ``digest`` (an anchor
    from ``parse_anchor``), else what is wrong."""
    if seq == 0:
        return None
    found = db.session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == seq))
    if found is None:
        newest = db.session.scalar(select(func.max(AuditEntry.seq))) or 0
        return (f"entry {seq} was in the log when it was anchored and is gone (the log now "
                f"ends at entry {newest}): entries were removed")
    if found != digest:
        return (f"entry {seq} no longer has its anchored hash: the log up to it was "
                "rewritten")
    return None
