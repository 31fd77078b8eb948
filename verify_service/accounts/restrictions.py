"""The restrictions read model: what ``GET /api/v1/accounts/{id}/restrictions`` returns, and how it is read.

The document is built from the account row, its active holds and its open
verification request. The API's hot path reads it in one statement on a pooled
connection (:func:`read_restrictions`); services inside a unit of work use
:func:`restrictions_for`. The write services (``accounts/services.py``) build the
same document for the events they publish, so an event and a read never disagree.
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
    HoldKind,
    RequestReason,
    RequestStatus,
    VerificationStatus,
)
from verify_service.accounts.errors import AccountNotFound
from verify_service.accounts.models import Account, Hold, VerificationRequest


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


def active_holds(db: Session, account_id: str) -> Sequence[Hold]:
    return db.scalars(
        sa.select(Hold).where(Hold.account_id == account_id, Hold.lifted_at.is_(None)).order_by(Hold.placed_at, Hold.id)
    ).all()


def open_request(db: Session, account_id: str) -> VerificationRequest | None:
    return db.scalar(sa.select(VerificationRequest).where(
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


def united_blocks(blocks: Iterable[Iterable[str]]) -> list[str]:
    """What holds blocking each of ``blocks`` block together, in canonical order (the document's ``blocked``).

    The bulk list (``accounts/bulk.py``) uses it too, so its entries and the document never disagree.
    """
    united = {capability for hold_blocks in blocks for capability in hold_blocks}
    return [c.value for c in CAPABILITY_ORDER if c.value in united]


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
    return Restrictions(
        account_id=account_id,
        version=version,
        blocked=united_blocks(hold["blocks"] for hold in holds),
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


def restrictions_for(db: Session, account_id: str) -> Restrictions:
    """The account's current restrictions, as ``session`` sees them (its pending changes flushed first).

    Raises:
        AccountNotFound: no such account.
    """
    db.flush()
    return read_restrictions(db.connection(), account_id)


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
