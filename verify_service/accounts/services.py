"""Account services: profile snapshots, verification requests, holds, restrictions.

Every change to what ``GET …/restrictions`` returns happens with the account
row locked and, in the same transaction: bumps ``restrictions_version`` once,
writes the audit entry, and writes the outbox event(s), each with the next
per-account ``seq``. The effective restriction set is the union of the
active holds' capabilities.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.domain import (
    CAPABILITY_ORDER,
    KIND_BLOCKS,
    Capability,
    HoldKind,
    RequestReason,
    RequestStatus,
    VerificationStatus,
    ordered,
)
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.audit.services import record
from verify_service.db import for_update, upsert_insert
from verify_service.errors import Conflict, InvalidInput, NotFound
from verify_service.webhooks.outbox import enqueue_event, is_system_account


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "No such account"

    def __init__(self, account_id: str) -> None:
        super().__init__(f"no account with id {account_id!r}: it must be created first "
                         "(PUT /api/v1/accounts/{id}, or an account.upserted webhook)")


class AccountClosed(Conflict):
    code = "account_closed"
    title = "The account is closed"


class HoldNotFound(NotFound):
    code = "hold_not_found"
    title = "No such hold"


class HoldAlreadyLifted(Conflict):
    code = "hold_already_lifted"
    title = "The hold was already lifted"


@dataclasses.dataclass(frozen=True)
class Profile:
    """The profile snapshot the account service sends (all personal data)."""

    display_name: str
    email: str
    country: str
    photo_url: str | None = None
    timezone: str | None = None
    locale: str | None = None


@dataclasses.dataclass(frozen=True)
class Restrictions:
    """The document ``GET /api/v1/accounts/{id}/restrictions`` returns."""

    account_id: str
    version: int
    blocked: list[str]
    holds: list[dict[str, Any]]
    verification: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        # Shallow: the lists and dicts inside belong to this snapshot alone (build_restrictions makes
        # them), so dataclasses.asdict's deep copy would only cost time on the hot path.
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def isoformat(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- reading

def get_account(session: Session, account_id: str) -> Account:
    """Raises: AccountNotFound (also for a system account: it carries the service's own events only)."""
    account = None if is_system_account(account_id) else session.get(Account, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    return account


def lock_account(session: Session, account_id: str) -> Account:
    """Load ``account_id`` with its row locked for the rest of the transaction.

    Raises:
        AccountNotFound: no such account, or a system account (nothing but its own events may change it).
    """
    if is_system_account(account_id):
        raise AccountNotFound(account_id)
    stmt = for_update(session, sa.select(Account).where(Account.id == account_id))
    account = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    if account is None:
        raise AccountNotFound(account_id)
    return account


def active_holds(session: Session, account_id: str) -> Sequence[Hold]:
    return session.scalars(
        sa.select(Hold).where(Hold.account_id == account_id, Hold.lifted_at.is_(None)).order_by(Hold.placed_at, Hold.id)
    ).all()


def open_request(session: Session, account_id: str) -> VerificationRequest | None:
    return session.scalar(sa.select(VerificationRequest).where(
        VerificationRequest.account_id == account_id, VerificationRequest.status == RequestStatus.OPEN))


def hold_dict(hold: Hold) -> dict[str, Any]:
    data = _hold_document(hold.id, hold.kind, hold.blocks, hold.reason, hold.placed_at, hold.placed_by)
    if hold.lifted_at is not None:
        data.update(lifted_at=isoformat(hold.lifted_at), lifted_by=hold.lifted_by, lift_reason=hold.lift_reason)
    return data


def request_dict(request: VerificationRequest) -> dict[str, Any]:
    return _request_document(request.id, request.reason, request.deadline, request.place_hold, request.status,
                             request.requested_at)


def build_restrictions(account: Account, holds: Sequence[Hold], request: VerificationRequest | None) -> Restrictions:
    return _restrictions(account.id, account.restrictions_version, account.verification_status,
                         account.verification_changed_at, request_dict(request) if request is not None else None,
                         [hold_dict(h) for h in holds if h.active])


# The document's parts, from plain values: the ORM objects above and the hot path's rows below both use them.

def _hold_document(hold_id: str, kind: HoldKind, blocks: list[str], reason: str, placed_at: dt.datetime,
                   placed_by: str) -> dict[str, Any]:
    return {"id": hold_id, "kind": kind.value, "blocks": list(blocks), "reason": reason,
            "placed_at": isoformat(placed_at), "placed_by": placed_by}


def _request_document(request_id: str, reason: RequestReason, deadline: dt.datetime | None, place_hold: bool,
                      status: RequestStatus, requested_at: dt.datetime) -> dict[str, Any]:
    return {"id": request_id, "reason": reason.value, "deadline": isoformat(deadline), "place_hold": place_hold,
            "status": status.value, "requested_at": isoformat(requested_at)}


def _restrictions(account_id: str, version: int, status: VerificationStatus, changed_at: dt.datetime | None,
                  request: dict[str, Any] | None, holds: list[dict[str, Any]]) -> Restrictions:
    """``holds`` are the active holds' documents; what they block, united, is listed in canonical order."""
    blocked = {capability for hold in holds for capability in hold["blocks"]}
    return Restrictions(
        account_id=account_id,
        version=version,
        blocked=[c.value for c in CAPABILITY_ORDER if c.value in blocked],
        holds=holds,
        verification={"status": status.value, "changed_at": isoformat(changed_at), "request": request},
    )


# The hot path (GET …/restrictions) reads with one Core statement, built once: the account, its
# open request and its active holds (a row per active hold, at least one row). Each column group
# is in the order of the document function its values go to.
_ACCOUNT_COLUMNS = (Account.id, Account.restrictions_version, Account.verification_status,
                    Account.verification_changed_at)
_REQUEST_COLUMNS = (VerificationRequest.id, VerificationRequest.reason, VerificationRequest.deadline,
                    VerificationRequest.place_hold, VerificationRequest.status, VerificationRequest.requested_at)
_HOLD_COLUMNS = (Hold.id, Hold.kind, Hold.blocks, Hold.reason, Hold.placed_at, Hold.placed_by)
_REQUEST_AT = len(_ACCOUNT_COLUMNS)
_HOLD_AT = _REQUEST_AT + len(_REQUEST_COLUMNS)
_RESTRICTIONS = (
    sa.select(*_ACCOUNT_COLUMNS, *_REQUEST_COLUMNS, *_HOLD_COLUMNS)
    .outerjoin(VerificationRequest, sa.and_(VerificationRequest.account_id == Account.id,
                                            VerificationRequest.status == RequestStatus.OPEN))
    .outerjoin(Hold, sa.and_(Hold.account_id == Account.id, Hold.lifted_at.is_(None)))
    .where(Account.id == sa.bindparam("account_id"))
    .order_by(Hold.placed_at, Hold.id)
)
_VERSION = sa.select(Account.restrictions_version).where(Account.id == sa.bindparam("account_id"))


def restrictions_for(session: Session, account_id: str) -> Restrictions:
    """The account's current restrictions, as ``session`` sees them (its pending changes flushed first).

    Raises:
        AccountNotFound: no such account.
    """
    session.flush()
    return read_restrictions(session.connection(), account_id)


def read_restrictions(connection: sa.Connection, account_id: str) -> Restrictions:
    """The account's current restrictions, read with one indexed statement (consistent on its own).

    A Core read (no ORM objects: half the work). Raises: AccountNotFound.
    """
    rows = connection.execute(_RESTRICTIONS, {"account_id": account_id}).all()
    if not rows:
        raise AccountNotFound(account_id)
    first = rows[0]
    account_id, version, status, changed_at = first[:_REQUEST_AT]
    request = _request_document(*first[_REQUEST_AT:_HOLD_AT]) if first[_REQUEST_AT] is not None else None
    holds = [_hold_document(*row[_HOLD_AT:]) for row in rows if row[_HOLD_AT] is not None]
    return _restrictions(account_id, version, status, changed_at, request, holds)


def read_restrictions_version(connection: sa.Connection, account_id: str) -> int:
    """Just the version (for conditional GETs), one primary-key read. Raises: AccountNotFound."""
    version = connection.execute(_VERSION, {"account_id": account_id}).scalar()
    if version is None:
        raise AccountNotFound(account_id)
    return version


# ---------------------------------------------------------------- publishing changes

def _publish(session: Session, account: Account, events: list[tuple[str, dict[str, Any]]], *,
             now: dt.datetime) -> Restrictions:
    """Bump the version once for this change and write its events, each with the new snapshot."""
    account.restrictions_version += 1
    account.updated_at = now
    session.flush()
    snapshot = build_restrictions(account, active_holds(session, account.id), open_request(session, account.id))
    for event_type, data in events:
        payload = {**data, "restrictions_version": snapshot.version}
        if event_type.startswith("account.hold."):
            payload["restrictions"] = {"version": snapshot.version, "blocked": snapshot.blocked,
                                       "holds": snapshot.holds}
        if event_type.startswith("verification."):
            payload["verification"] = snapshot.verification
        enqueue_event(session, account, event_type, payload, now=now)
    session.flush()
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


def _add_hold(session: Session, account: Account, *, kind: HoldKind, blocks: list[str], reason: str, actor: str,
              now: dt.datetime, verification_request_id: str | None = None) -> Hold | None:
    """Insert a hold on a locked account; ``None`` when an automatic hold of that kind is already active."""
    if kind is not HoldKind.MANUAL:
        existing = session.scalar(sa.select(Hold.id).where(
            Hold.account_id == account.id, Hold.kind == kind, Hold.lifted_at.is_(None)))
        if existing is not None:
            return None
    hold = Hold(account_id=account.id, kind=kind, blocks=blocks, reason=reason, placed_at=now, placed_by=actor,
                verification_request_id=verification_request_id)
    session.add(hold)
    session.flush()
    record(session, actor=actor, action="hold.placed", account_id=account.id, subject_type="hold",
           subject_id=hold.id, details={"kind": kind.value, "blocks": blocks}, now=now)
    return hold


def publish_change(session: Session, account: Account, events: list[tuple[str, dict[str, Any]]], *,
                   now: dt.datetime) -> Restrictions:
    """For other features' services: publish one change of a locked account (see :func:`_publish`).

    The caller holds the account's row lock and has already made the change.
    """
    return _publish(session, account, events, now=now)


def add_automatic_hold(session: Session, account: Account, *, kind: HoldKind, reason: str, actor: str,
                       now: dt.datetime, verification_request_id: str | None = None) -> Hold | None:
    """For other features' services: add an automatic hold to a locked account, without publishing.

    Returns ``None`` when a hold of that kind is already active. The caller
    publishes the change (:func:`publish_change`) with its other events.
    """
    if kind is HoldKind.MANUAL:
        raise ValueError("a manual hold names its own capabilities: use place_hold")
    return _add_hold(session, account, kind=kind, blocks=_validated_blocks(kind, None), reason=reason,
                     actor=actor, now=now, verification_request_id=verification_request_id)


# ---------------------------------------------------------------- services

def upsert_account(session: Session, account_id: str, profile: Profile, *, actor: str, now: dt.datetime,
                   source_time: dt.datetime | None = None) -> tuple[Account, bool]:
    """Create the account or replace its profile snapshot. Returns ``(account, created)``.

    ``source_time`` is when the sender took the snapshot (webhooks): a snapshot
    older than the one applied last is ignored, so a late retry cannot roll
    the profile back.

    Raises:
        AccountClosed: the account was closed (its personal data was erased).
    """
    result = session.execute(
        upsert_insert(session, Account).values(id=account_id, created_at=now, updated_at=now,
                      verification_status=VerificationStatus.NOT_REQUIRED,
                      restrictions_version=0, last_event_seq=0)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(Account.id)
    )
    created = result.first() is not None
    account = lock_account(session, account_id)
    if account.closed_at is not None:
        raise AccountClosed(f"account {account_id!r} was closed; its profile can no longer be changed")
    if source_time is not None:
        if account.profile_source_at is not None and source_time < account.profile_source_at:
            return account, created
        account.profile_source_at = source_time
    changed = [name for name, value in dataclasses.asdict(profile).items() if getattr(account, name) != value]
    for name in changed:
        setattr(account, name, getattr(profile, name))
    if changed or created:
        account.updated_at = now
        record(session, actor=actor, action="account.created" if created else "account.updated",
               account_id=account_id, subject_type="account", subject_id=account_id,
               details={"fields": sorted(changed)}, now=now)
    session.flush()
    return account, created


def request_verification(session: Session, account_id: str, *, reason: RequestReason,
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
    account = lock_account(session, account_id)
    if account.closed_at is not None:
        raise AccountClosed(f"account {account_id!r} is closed")
    request = open_request(session, account_id)
    events: list[tuple[str, dict[str, Any]]] = []
    created = request is None
    changed = created
    if request is None:
        request = VerificationRequest(account_id=account_id, reason=reason, deadline=deadline,
                                      place_hold=place_hold, requested_by=actor, requested_at=now)
        session.add(request)
        account.verification_status = VerificationStatus.REQUIRED
        account.verification_changed_at = now
        session.flush()
        events.append(("verification.required", {}))  # carries the verification snapshot
        record(session, actor=actor, action="verification.requested", account_id=account_id,
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
            record(session, actor=actor, action="verification.request_updated", account_id=account_id,
                   subject_type="verification_request", subject_id=request.id,
                   details={"place_hold": request.place_hold, "deadline": isoformat(request.deadline)}, now=now)
    if place_hold:
        hold = _add_hold(session, account, kind=HoldKind.VERIFICATION_PENDING,
                         blocks=_validated_blocks(HoldKind.VERIFICATION_PENDING, None),
                         reason=f"Identity verification requested ({request.reason.value})", actor=actor,
                         now=now, verification_request_id=request.id)
        if hold is not None:
            changed = True
            events.append(("account.hold.placed", {"hold": hold_dict(hold)}))
    if changed:
        snapshot = _publish(session, account, events, now=now)
    else:
        snapshot = build_restrictions(account, active_holds(session, account_id), request)
    return request, created, snapshot


def place_hold(session: Session, account_id: str, *, kind: HoldKind, reason: str, actor: str, now: dt.datetime,
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
    account = lock_account(session, account_id)
    if account.closed_at is not None:
        raise AccountClosed(f"account {account_id!r} is closed")
    hold = _add_hold(session, account, kind=kind, blocks=chosen, reason=reason.strip(), actor=actor, now=now,
                     verification_request_id=verification_request_id)
    if hold is None:
        existing = session.scalars(sa.select(Hold).where(
            Hold.account_id == account_id, Hold.kind == kind, Hold.lifted_at.is_(None))).one()
        return existing, False
    _publish(session, account, [("account.hold.placed", {"hold": hold_dict(hold)})], now=now)
    return hold, True


def lift_hold(session: Session, hold_id: str, *, reason: str, actor: str, now: dt.datetime) -> Hold:
    """Lift an active hold.

    Raises:
        HoldNotFound, HoldAlreadyLifted, InvalidInput (empty reason).
    """
    if not reason.strip():
        raise InvalidInput.for_field("reason", "lifting a hold needs a reason")
    account_id = session.scalar(sa.select(Hold.account_id).where(Hold.id == hold_id))
    if account_id is None:
        raise HoldNotFound(f"no hold with id {hold_id!r}")
    # Lock order is always account, then anything else: re-read the hold under the lock.
    account = lock_account(session, account_id)
    hold = session.execute(sa.select(Hold).where(Hold.id == hold_id)
                           .execution_options(populate_existing=True)).scalar_one()
    if hold.lifted_at is not None:
        raise HoldAlreadyLifted(f"hold {hold_id} was lifted at {isoformat(hold.lifted_at)}")
    hold.lifted_at = now
    hold.lifted_by = actor
    hold.lift_reason = reason.strip()
    session.flush()
    record(session, actor=actor, action="hold.lifted", account_id=account_id, subject_type="hold",
           subject_id=hold.id, details={"kind": hold.kind.value}, now=now)
    _publish(session, account, [("account.hold.lifted", {"hold": hold_dict(hold)})], now=now)
    return hold
