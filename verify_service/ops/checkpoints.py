"""Checkpoints: the audit chain's head, signed and sent out of the database.

The hash chain shows a changed entry only to someone who trusts the hashes it
is checked against. Someone with write access to the database can rewrite an
entry, recompute every hash after it and the head, and the chain verifies
again. A checkpoint anchors the chain outside the database: ``{seq, hash, at}``
of the head, with an HMAC-SHA256 under ``VERIFY_AUDIT_CHECKPOINT_KEY`` (a key
the database never holds, so nobody can forge one from it). Each is logged
(INFO, one JSON line) and sent as an ``audit.checkpoint`` event on the reserved
system account :data:`AUDIT_ACCOUNT_ID`, so copies live with the logs and with
the account service. :func:`verify_checkpoints` then checks that the entry at
each checkpoint's ``seq`` still has the checkpointed hash; an entry rewritten
before it cannot.

A checkpoint is not itself audited: that entry would move the head, so every
run would find a new head to checkpoint.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.audit.models import AuditEntry, AuditHead
from verify_service.webhooks.models import OutboxEvent
from verify_service.webhooks.outbox import enqueue_event
from verify_service.accounts.services import lock_system_account

EVENT_TYPE = "audit.checkpoint"
# The system account whose gapless seq orders the checkpoint events (see webhooks.outbox).
AUDIT_ACCOUNT_ID = "_audit"
# What an HMAC signs, beyond the fields: no other signature of this key can pass for a checkpoint's.
_DOMAIN = b"verify-service audit checkpoint v1\n"
_LOG_MARKER = "audit checkpoint "


class MalformedCheckpoint(ValueError):
    """A line that is not a checkpoint (nor a log line or event carrying one); says what is wrong."""


class ChainRewritten(RuntimeError):
    """The entry the last checkpoint signed no longer has that hash: the chain was rewritten since."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str          # when it was signed, RFC 3339 UTC
    signature: str   # hex HMAC-SHA256 over the other three

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """One line of JSON: what the log line and the export file carry."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))


def _mac(seq: int, head_hash: str, at: str, key: bytes) -> str:
    fields = json.dumps({"seq": seq, "hash": head_hash, "at": at}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, _DOMAIN + fields.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(seq: int, head_hash: str, *, at: dt.datetime, key: bytes) -> Checkpoint:
    """A checkpoint of the entry ``seq`` whose hash is ``head_hash``, signed at ``at``."""
    stamp = at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return Checkpoint(seq, head_hash, stamp, _mac(seq, head_hash, stamp, key))


def _same(a: str, b: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters, and an export may hold anything.
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def signature_holds(checkpoint: Checkpoint, key: bytes) -> bool:
    return _same(checkpoint.signature, _mac(checkpoint.seq, checkpoint.hash, checkpoint.at, key))


def _last_checkpoint(db: Session) -> tuple[int, str] | None:
    """The (seq, hash) the last ``audit.checkpoint`` event signed, if any."""
    data = db.scalar(sa.select(OutboxEvent.data).where(OutboxEvent.account_id == AUDIT_ACCOUNT_ID,
                                                            OutboxEvent.type == EVENT_TYPE)
                          .order_by(OutboxEvent.seq.desc()).limit(1))
    return (int(data["checkpoint"]["seq"]), str(data["checkpoint"]["hash"])) if data else None


def write_checkpoint(db: Session, *, key: bytes, now: dt.datetime, force: bool = False) -> Checkpoint | None:
    """Sign the chain's head and enqueue it as an ``audit.checkpoint`` event, in the caller's transaction.

    Returns None (and writes nothing) when the chain is empty, or, unless ``force``, when the head is the
    one checkpointed last. The caller logs the checkpoint once the transaction has committed.

    Raises:
        ChainRewritten: the entry the last checkpoint signed has another hash now. Nothing is signed: a
            rewritten chain must not get a checkpoint of its own.
    """
    # The system account's lock also serialises two writers, so one head is never checkpointed twice.
    account = lock_system_account(db, AUDIT_ACCOUNT_ID, now=now)
    head = db.execute(sa.select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1)).one()
    last = _last_checkpoint(db)
    if last is not None:
        # A cheap tripwire on each run (the full check is verify_checkpoints, against copies kept elsewhere).
        stored = db.scalar(sa.select(AuditEntry.hash).where(AuditEntry.seq == last[0]))
        if stored is None or not _same(stored, last[1]):
            raise ChainRewritten(f"audit entry {last[0]} no longer has the hash its checkpoint signed: the chain "
                                 "was rewritten; run `verify-service audit verify --checkpoints` on the exported "
                                 "checkpoints")
    if head.last_seq == 0 or (not force and last == (head.last_seq, head.last_hash)):
        return None
    checkpoint = sign(head.last_seq, head.last_hash, at=now, key=key)
    enqueue_event(db, account, EVENT_TYPE, {"checkpoint": checkpoint.as_dict()}, now=now)
    account.updated_at = now
    db.flush()
    return checkpoint


def log_line(checkpoint: Checkpoint) -> str:
    """The message a checkpoint is logged with (:func:`parse_line` reads it back)."""
    return _LOG_MARKER + checkpoint.to_json()


# ---------------------------------------------------------------- reading them back

def _from_mapping(value: Mapping[str, Any]) -> Checkpoint:
    # What an export may hold: the checkpoint itself, a JSON log record (its ``checkpoint`` field), an
    # event as delivered ({"type", "data": {"checkpoint"}}) or its data.
    data = value.get("data")
    for nested in (value.get("checkpoint"), data.get("checkpoint") if isinstance(data, Mapping) else None):
        if isinstance(nested, Mapping):
            value = nested
            break
    seq, head_hash, at, signature = (value.get(name) for name in ("seq", "hash", "at", "signature"))
    if not (isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1 and isinstance(head_hash, str)
            and isinstance(at, str) and isinstance(signature, str)):
        raise MalformedCheckpoint("not a checkpoint: it needs seq (a whole number from 1), hash, at and signature")
    return Checkpoint(seq, head_hash, at, signature)


def parse_line(line: str) -> Checkpoint | None:
    """The checkpoint a line of an export carries; None for a blank line.

    Accepts a checkpoint's JSON, a JSON log record or text log line of one, and an ``audit.checkpoint``
    event body or its ``data``.

    Raises:
        MalformedCheckpoint: the line carries no checkpoint.
    """
    text = line.strip()
    if not text:
        return None
    if _LOG_MARKER in text and not text.startswith("{"):
        text = text.split(_LOG_MARKER, 1)[1]  # a text log line: the JSON follows the marker
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise MalformedCheckpoint(f"not JSON: {exc}") from exc
    if not isinstance(value, Mapping):
        raise MalformedCheckpoint("not a JSON object")
    return _from_mapping(value)


@dataclasses.dataclass(frozen=True)
class CheckpointReport:
    checked: int                       # checkpoints whose entry still has the checkpointed hash
    forged: tuple[int, ...] = ()       # line numbers of checkpoints whose signature does not hold
    broken_at: int | None = None       # the first checkpointed entry that no longer matches
    intact_up_to: int = 0              # the last checkpointed entry before it that still matches
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return not self.forged and self.broken_at is None


def verify_checkpoints(db: Session, checkpoints: Iterable[tuple[int, Checkpoint]], *,
                       key: bytes) -> CheckpointReport:
    """Check each ``(line number, checkpoint)``: its signature, and that entry ``seq`` still has its hash.

    A checkpoint with a bad signature is refused (forged, or signed with another key) and the report
    fails. Otherwise the report names the first checkpointed entry that no longer matches: every entry
    from the one after the last checkpoint that still matches up to it is suspect, since rewriting an
    entry and recomputing the chain changes the hash of every entry after it.
    """
    genuine: list[Checkpoint] = []
    forged: list[int] = []
    for line_number, checkpoint in checkpoints:
        if signature_holds(checkpoint, key):
            genuine.append(checkpoint)
        else:
            forged.append(line_number)
    if forged:
        return CheckpointReport(0, tuple(forged), problem=(
            f"the checkpoint on line{'s' if len(forged) > 1 else ''} {', '.join(map(str, forged))} has a bad "
            "signature (forged, or signed with another VERIFY_AUDIT_CHECKPOINT_KEY): refused"))
    by_seq = sorted(genuine, key=lambda c: c.seq)  # every one is checked: two may sign one seq
    hashes = dict(db.execute(sa.select(AuditEntry.seq, AuditEntry.hash)
                                  .where(AuditEntry.seq.in_([c.seq for c in by_seq]))).all()) if by_seq else {}
    intact = 0
    for checked, checkpoint in enumerate(by_seq):
        stored = hashes.get(checkpoint.seq)
        if stored is None or not _same(stored, checkpoint.hash):
            what = "is missing" if stored is None else "no longer has the hash"
            return CheckpointReport(checked, broken_at=checkpoint.seq, intact_up_to=intact, problem=(
                f"entry {checkpoint.seq} {what} checkpointed at {checkpoint.at}: the chain was rewritten "
                f"in entries {intact + 1}–{checkpoint.seq}" + (f" (entry {intact}, checkpointed, still matches)"
                                                               if intact else "")))
        intact = checkpoint.seq
    return CheckpointReport(len(by_seq), intact_up_to=intact)
