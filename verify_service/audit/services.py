"""Writing and verifying the audit chain.

Each entry's hash is SHA-256 over a canonical JSON form of its fields and
the previous entry's hash. Changing, removing or reordering any entry breaks
every link after it; :func:`verify_chain` reports the first broken one.

Whoever can write to the database can also recompute every hash after a change,
and the chain then verifies again: :mod:`verify_service.ops.checkpoints`
anchors it outside the database with signed copies of its head.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.audit.models import GENESIS_HASH, AuditEntry, AuditHead
from verify_service.db import for_update


def entry_hash(*, seq: int, occurred_at: dt.datetime, actor: str, action: str, account_id: str | None,
               subject_type: str | None, subject_id: str | None, details: dict[str, Any],
               prev_hash: str) -> str:
    canonical = json.dumps(
        {
            "seq": seq,
            "occurred_at": occurred_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": actor,
            "action": action,
            "account_id": account_id,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "details": details,
            "prev_hash": prev_hash,
        },
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record(db: Session, *, actor: str, action: str, now: dt.datetime, account_id: str | None = None,
           subject_type: str | None = None, subject_id: str | None = None,
           details: dict[str, Any] | None = None) -> AuditEntry:
    """Append an entry in the caller's transaction.

    ``details`` must hold no personal data (ids, kinds, field names — not values).
    Callers that also lock an account must lock it *before* calling this, so
    every writer takes the locks in the same order (account, then head).
    """
    details = details or {}
    head = db.execute(for_update(db, sa.select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    seq = head.last_seq + 1
    digest = entry_hash(seq=seq, occurred_at=now, actor=actor, action=action, account_id=account_id,
                        subject_type=subject_type, subject_id=subject_id, details=details,
                        prev_hash=head.last_hash)
    entry = AuditEntry(seq=seq, occurred_at=now, actor=actor, action=action, account_id=account_id,
                       subject_type=subject_type, subject_id=subject_id, details=details,
                       prev_hash=head.last_hash, hash=digest)
    db.add(entry)
    head.last_seq = seq
    head.last_hash = digest
    db.flush()
    return entry


@dataclasses.dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(db: Session, *, batch_size: int = 1000) -> ChainReport:
    """Recompute the chain from the first entry and report the first broken link."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    stmt = sa.select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch_size)
    for entry in db.scalars(stmt):
        if entry.seq != expected_seq:
            return ChainReport(checked, expected_seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != prev_hash:
            return ChainReport(checked, entry.seq,
                               f"entry {entry.seq} does not link to entry {entry.seq - 1} (previous hash differs)")
        recomputed = entry_hash(seq=entry.seq, occurred_at=entry.occurred_at, actor=entry.actor,
                                action=entry.action, account_id=entry.account_id,
                                subject_type=entry.subject_type, subject_id=entry.subject_id,
                                details=entry.details, prev_hash=entry.prev_hash)
        if recomputed != entry.hash:
            return ChainReport(checked, entry.seq, f"entry {entry.seq} was altered (its hash does not match its content)")
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
    head = db.get(AuditHead, 1)
    if head is None:
        return ChainReport(checked, checked + 1, "the chain head row is missing, so removed entries cannot be ruled out")
    if head.last_seq != checked or head.last_hash != prev_hash:
        return ChainReport(checked, checked + 1,
                           f"the chain ends at entry {checked} but its head records entry {head.last_seq}: "
                           "entries were removed from the end")
    return ChainReport(checked)
