"""Account write services: profile snapshots, verification requests, holds (the read model: ``restrictions.py``).

Every change to what ``GET …/restrictions`` returns happens with the account
row locked and, in the same transaction: bumps ``restrictions_version`` once,
writes the audit entry, and writes the outbox event(s), each with the next
per-account ``seq``. The effective restriction set is the union of the
active holds' capabilities.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.domain import (
    KIND_BLOCKS,
    SYSTEM_ACCOUNT_PREFIX,
    Capability,
    HoldKind,
    RequestReason,
    VerificationStatus,
    ensure_open,
    is_system_account,
    ordered,
)
from verify_service.accounts.errors import AccountNotFound, HoldAlreadyLifted, HoldNotFound
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.accounts.restrictions import (
    Restrictions,
    active_holds,
    build_restrictions,
    hold_dict,
    isoformat,
    open_request,
)
from verify_service.audit.services import record
from verify_service.db import for_update, upsert_insert
from verify_service.errors import InvalidInput
from verify_service.webhooks.outbox import enqueue_event


@dataclasses.dataclass(frozen=True)
class Profile:
    """The profile snapshot the account service sends (all personal data)."""

    display_name: str
    email: str
    country: str
    photo_url: str | None = None
    timezone: str | None = None
    locale: str | None = None


# ---------------------------------------------------------------- locking

def get_account(db: Session, account_id: str) -> Account:
    """Raises: AccountNotFound (also for a system account: it carries the service's own events only)."""
    account = None if is_system_account(account_id) else db.get(Account, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    return account


def lock_account(db: Session, account_id: str) -> Account:
    """Load ``account_id`` with its row locked for the rest of the transaction.

    Raises:
        AccountNotFound: no such account, or a system account (nothing but its own events may change it).
    """
    if is_system_account(account_id):
        raise AccountNotFound(account_id)
    stmt = for_update(db, sa.select(Account).where(Account.id == account_id))
    account = db.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    if account is None:
        raise AccountNotFound(account_id)
    return account


def lock_system_account(db: Session, account_id: str, *, now: dt.datetime) -> Account:
    """The system account ``account_id`` (created on first use), its row locked for the transaction.

    Lock it before appending to the audit log, as every account writer does (account, then head).

    Raises:
        ValueError: ``account_id`` is not a system account id.
    """
    if not is_system_account(account_id):
        raise ValueError(f"{account_id!r} is not a system account id (it must start with {SYSTEM_ACCOUNT_PREFIX!r})")
    # ON CONFLICT DO NOTHING: two first uses at once both succeed; the second then waits on the row lock.
    db.execute(upsert_insert(db, Account).values(
        id=account_id, created_at=now, updated_at=now, verification_status=VerificationStatus.NOT_REQUIRED,
        restrictions_version=0, last_event_seq=0).on_conflict_do_nothing(index_elements=["id"]))
    stmt = for_update(db, sa.select(Account).where(Account.id == account_id))
    return db.execute(stmt.execution_options(populate_existing=True)).scalar_one()


# ---------------------------------------------------------------- publishing changes

def publish_change(db: Session, account: Account, events: list[tuple[str, dict[str, Any]]], *,
                   now: dt.datetime) -> Restrictions:
    """Publish one change of a locked account: bump the version once and write its events, each with the new snapshot.

    The caller holds the account's row lock and has already made the change (here or in another feature).
    """
    account.restrictions_version += 1
    account.updated_at = now
    db.flush()
    snapshot = build_restrictions(account, active_holds(db, account.id), open_request(db, account.id))
    for event_type, data in events:
        payload = {**data, "restrictions_version": snapshot.version}
        if event_type.startswith("account.hold."):
            payload["restrictions"] = {"version": snapshot.version, "blocked": snapshot.blocked,
                                       "holds": snapshot.holds}
        if event_type.startswith("verification."):
            payload["verification"] = snapshot.verification
        enqueue_event(db, account, event_type, payload, now=now)
    db.flush()
    return snapshot


def _validated_blocks(kind: HoldKind, blocks: Iterable[Capability | str] | None) -> list[str]:
    if kind is HoldKind.MANUAL:
        try:
            chosen = {Capability(b) for b in (blocks or ())}
        except ValueError as exc:
            raise InvalidInput.for_field("blocks", str(exc)) from exc
        if not chosen:
            raise InvalidInput.for_field("blocks", "a manual hold must block at least one capability")
        return [c.value for c in ordered(chosen)]
    fixed = KIND_BLOCKS[kind]
    if blocks is not None and {Capability(b) for b in blocks} != fixed:
        raise InvalidInput.for_field("blocks", f"a {kind.value} hold always blocks "
                                     + ", ".join(c.value for c in ordered(fixed)))
    return [c.value for c in ordered(fixed)]


def _add_hold(db: Session, account: Account, *, kind: HoldKind, blocks: list[str], reason: str, actor: str,
              now: dt.datetime, verification_request_id: str | None = None) -> Hold | None:
    """Insert a hold on a locked account; ``None`` when an automatic hold of that kind is already active."""
    if kind is not HoldKind.MANUAL:
        existing = db.scalar(sa.select(Hold.id).where(
            Hold.account_id == account.id, Hold.kind == kind, Hold.lifted_at.is_(None)))
        if existing is not None:
            return None
    hold = Hold(account_id=account.id, kind=kind, blocks=blocks, reason=reason, placed_at=now, placed_by=actor,
                verification_request_id=verification_request_id)
    db.add(hold)
    db.flush()
    record(db, actor=actor, action="hold.placed", account_id=account.id, subject_type="hold",
           subject_id=hold.id, details={"kind": kind.value, "blocks": blocks}, now=now)
    return hold


def add_automatic_hold(db: Session, account: Account, *, kind: HoldKind, reason: str, actor: str,
                       now: dt.datetime, verification_request_id: str | None = None) -> Hold | None:
    """For other features' services: add an automatic hold to a locked account, without publishing.

    Returns ``None`` when a hold of that kind is already active. The caller
    publishes the change (:func:`publish_change`) with its other events.
    """
    if kind is HoldKind.MANUAL:
        raise ValueError("a manual hold names its own capabilities: use place_hold")
    return _add_hold(db, account, kind=kind, blocks=_validated_blocks(kind, None), reason=reason,
                     actor=actor, now=now, verification_request_id=verification_request_id)


# ---------------------------------------------------------------- services

def upsert_account(db: Session, account_id: str, profile: Profile, *, actor: str, now: dt.datetime,
                   source_time: dt.datetime | None = None) -> tuple[Account, bool]:
    """Create the account or replace its profile snapshot. Returns ``(account, created)``.

    ``source_time`` is when the sender took the snapshot (webhooks): a snapshot
    older than the one applied last is ignored, so a late retry cannot roll
    the profile back.

    Raises:
        AccountClosed: the account was closed (its personal data was erased).
    """
    result = db.execute(
        upsert_insert(db, Account).values(id=account_id, created_at=now, updated_at=now,
                      verification_status=VerificationStatus.NOT_REQUIRED,
                      restrictions_version=0, last_event_seq=0)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(Account.id)
    )
    created = result.first() is not None
    account = lock_account(db, account_id)
    ensure_open(account)
    if source_time is not None:
        if account.profile_source_at is not None and source_time < account.profile_source_at:
            return account, created
        account.profile_source_at = source_time
    changed = [name for name, value in dataclasses.asdict(profile).items() if getattr(account, name) != value]
    for name in changed:
        setattr(account, name, getattr(profile, name))
    if changed or created:
        account.updated_at = now
        record(db, actor=actor, action="account.created" if created else "account.updated",
               account_id=account_id, subject_type="account", subject_id=account_id,
               details={"fields": sorted(changed)}, now=now)
    db.flush()
    return account, created


def request_verification(db: Session, account_id: str, *, reason: RequestReason,
                         deadline: dt.datetime | None, place_hold: bool, actor: str,
                         now: dt.datetime) -> tuple[VerificationRequest, bool, Restrictions]:
    """Ask the freelancer to verify. Returns ``(request, created, restrictions)``.

    With an open request already in place, that request is kept: a hold asked
    for now is placed, and an earlier deadline replaces a later one.

    Raises:
        AccountNotFound, AccountClosed, InvalidInput (deadline not in the future).
    """
    if deadline is not None and deadline <= now:
        raise InvalidInput.for_field("deadline", "must be in the future")
    account = lock_account(db, account_id)
    ensure_open(account)
    request = open_request(db, account_id)
    events: list[tuple[str, dict[str, Any]]] = []
    created = request is None
    changed = created
    if request is None:
        request = VerificationRequest(account_id=account_id, reason=reason, deadline=deadline,
                                      place_hold=place_hold, requested_by=actor, requested_at=now)
        db.add(request)
        account.verification_status = VerificationStatus.REQUIRED
        account.verification_changed_at = now
        db.flush()
        events.append(("verification.required", {}))  # carries the verification snapshot
        record(db, actor=actor, action="verification.requested", account_id=account_id,
               subject_type="verification_request", subject_id=request.id,
               details={"reason": reason.value, "place_hold": place_hold, "deadline": isoformat(deadline)}, now=now)
    else:
        if deadline is not None and (request.deadline is None or deadline < request.deadline):
            request.deadline = deadline
            changed = True
        if place_hold and not request.place_hold:
            request.place_hold = True
            changed = True
        if changed:
            # Every version bump reaches the consumer: re-announce the updated request.
            events.append(("verification.required", {}))  # carries the verification snapshot
            record(db, actor=actor, action="verification.request_updated", account_id=account_id,
                   subject_type="verification_request", subject_id=request.id,
                   details={"place_hold": request.place_hold, "deadline": isoformat(request.deadline)}, now=now)
    if place_hold:
        hold = _add_hold(db, account, kind=HoldKind.VERIFICATION_PENDING,
                         blocks=_validated_blocks(HoldKind.VERIFICATION_PENDING, None),
                         reason=f"Identity verification requested ({request.reason.value})", actor=actor,
                         now=now, verification_request_id=request.id)
        if hold is not None:
            changed = True
            events.append(("account.hold.placed", {"hold": hold_dict(hold)}))
    if changed:
        snapshot = publish_change(db, account, events, now=now)
    else:
        snapshot = build_restrictions(account, active_holds(db, account_id), request)
    return request, created, snapshot


def place_hold(db: Session, account_id: str, *, kind: HoldKind, reason: str, actor: str, now: dt.datetime,
               blocks: Iterable[Capability | str] | None = None,
               verification_request_id: str | None = None) -> tuple[Hold, bool]:
    """Place a hold. Returns ``(hold, placed)``.

    An automatic kind (``verification_pending``/``verification_failed``) is
    placed at most once at a time: asking again returns the active hold with
    ``placed=False`` and changes nothing. Manual holds always add a hold.

    Raises:
        AccountNotFound, AccountClosed, InvalidInput (bad capability set or empty reason).
    """
    chosen = _validated_blocks(kind, blocks)
    if not reason.strip():
        raise InvalidInput.for_field("reason", "a hold needs a reason")
    account = lock_account(db, account_id)
    ensure_open(account)
    hold = _add_hold(db, account, kind=kind, blocks=chosen, reason=reason.strip(), actor=actor, now=now,
                     verification_request_id=verification_request_id)
    if hold is None:
        existing = db.scalars(sa.select(Hold).where(
            Hold.account_id == account_id, Hold.kind == kind, Hold.lifted_at.is_(None))).one()
        return existing, False
    publish_change(db, account, [("account.hold.placed", {"hold": hold_dict(hold)})], now=now)
    return hold, True


def lift_hold(db: Session, hold_id: str, *, reason: str, actor: str, now: dt.datetime) -> Hold:
    """Lift an active hold.

    Raises:
        HoldNotFound, HoldAlreadyLifted, InvalidInput (empty reason).
    """
    if not reason.strip():
        raise InvalidInput.for_field("reason", "lifting a hold needs a reason")
    account_id = db.scalar(sa.select(Hold.account_id).where(Hold.id == hold_id))
    if account_id is None:
        raise HoldNotFound(f"no hold with id {hold_id!r}")
    # Lock order is always account, then anything else: re-read the hold under the lock.
    account = lock_account(db, account_id)
    hold = db.execute(sa.select(Hold).where(Hold.id == hold_id)
                           .execution_options(populate_existing=True)).scalar_one()
    if hold.lifted_at is not None:
        raise HoldAlreadyLifted(f"hold {hold_id} was lifted at {isoformat(hold.lifted_at)}")
    hold.lifted_at = now
    hold.lifted_by = actor
    hold.lift_reason = reason.strip()
    db.flush()
    record(db, actor=actor, action="hold.lifted", account_id=account_id, subject_type="hold",
           subject_id=hold.id, details={"kind": hold.kind.value}, now=now)
    publish_change(db, account, [("account.hold.lifted", {"hold": hold_dict(hold)})], now=now)
    return hold
