"""The events feed: the outbox read in the order the service made its events visible.

Why a cursor never skips an event (docs/architecture.md, 'The events feed'):

* PostgreSQL. Every outbox row holds the id of the transaction that wrote it (``txid``). The feed
  reads only rows whose ``txid`` is below the reading statement's snapshot ``xmin``: every
  transaction below it has ended, and every transaction still running, or yet to start, has or
  will get an id at or above it. Ordered by ``(txid, id)``, nothing can therefore appear later
  behind a position the feed has already returned. The price: an event waits until every older
  writing transaction of the cluster has ended (milliseconds for this service's transactions).
* SQLite has one writer at a time: a transaction holds the write lock from its first write (a
  write unit of work from its ``BEGIN IMMEDIATE``, see ``db.py``) until it ends, and the rowid is
  taken under that lock, so the id order is the commit order. ``txid`` is 0 there. The retention
  purge never deletes the row with the largest id, so SQLite never hands out an id twice.
* With ``account_id`` the order is the account's ``seq``: it is taken under the account's row
  lock, so seq *n+1* is written only after seq *n* committed, and ``seq > n`` never skips.

The cursor is url-safe base64 of a small versioned JSON object: which order it is a position in,
the position, the filters it was made for, and a time that ages it (see :func:`_next_cursor`).
It is not signed: a changed cursor is only another position, which the caller could have asked
for anyway; anything that does not decode to a valid position is ``400 invalid_cursor``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from integrations.account_service import event_body
from verify_service.errors import DomainError, FieldError, NotFound
from verify_service.ops.checkpoints import EVENT_TYPE as CHECKPOINT_TYPE
from verify_service.settings import Settings
from verify_service.webhooks.models import OutboxEvent
from verify_service.webhooks.outbox import EVENT_TYPES

# The audit checkpoints anchor the audit chain; they are not events about accounts, so the feed leaves them out.
FEED_TYPES = tuple(sorted(EVENT_TYPES - {CHECKPOINT_TYPE}))
MAX_LIMIT = 500
# A position older than the retention window expires. The purge keeps events this much longer, and a
# cursor at the end of the feed is dated this much before the read: room for transactions that commit late.
GRACE = dt.timedelta(hours=1)
_BIGINT = 2**63 - 1
_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z

# The statement's snapshot xmin: every transaction with a smaller id has ended.
_VISIBLE_BELOW = sa.literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint", sa.BigInteger)
_COLUMNS = (OutboxEvent.id, OutboxEvent.txid, OutboxEvent.seq, OutboxEvent.event_id, OutboxEvent.type,
            OutboxEvent.created_at, OutboxEvent.data)


class InvalidCursor(DomainError):
    status = 400
    code = "invalid_cursor"
    title = "The cursor is not valid"


class CursorExpired(DomainError):
    status = 410
    code = "cursor_expired"
    title = "The cursor has expired"


def retention_period(settings: Settings) -> dt.timedelta:
    return dt.timedelta(days=settings.event_retention_days)


@dataclasses.dataclass(frozen=True)
class Filters:
    type: str | None = None
    account_id: str | None = None

    @property
    def kind(self) -> Literal["feed", "seq"]:
        """``seq`` (the account's own order) with ``account_id``, else ``feed`` (the visibility order)."""
        return "seq" if self.account_id is not None else "feed"


Position = Annotated[int, Field(ge=0, le=_BIGINT)]


class _CursorFields(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    v: Literal[1]
    k: Literal["feed", "seq"]
    p: tuple[Position, Position] | tuple[Position]
    t: Annotated[int, Field(ge=0, le=_LAST_SECOND)]  # the time that ages the position (seconds since the epoch)
    ty: str | None
    ac: str | None


@dataclasses.dataclass(frozen=True)
class Cursor:
    filters: Filters
    position: tuple[int, ...]   # (txid, id) in the feed order; (seq,) in an account's order
    at: int

    def encode(self) -> str:
        fields = {"v": 1, "k": self.filters.kind, "p": list(self.position), "t": self.at,
                  "ty": self.filters.type, "ac": self.filters.account_id}
        raw = json.dumps(fields, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises: InvalidCursor (not one this service made, or changed)."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            fields = _CursorFields.model_validate_json(raw)
        except (binascii.Error, ValueError, ValidationError) as exc:
            raise _invalid("it is not a cursor this service made") from exc
        if len(fields.p) != (2 if fields.k == "feed" else 1) or (fields.k == "seq") != (fields.ac is not None):
            raise _invalid("it is not a cursor this service made")
        return cls(Filters(fields.ty, fields.ac), tuple(fields.p), fields.t)


def _invalid(why: str) -> InvalidCursor:
    return InvalidCursor(f"after: {why}", errors=[FieldError("after", why)])


@dataclasses.dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    next_cursor: str
    has_more: bool

    def as_dict(self) -> dict[str, Any]:
        return {"data": self.data, "next_cursor": self.next_cursor, "has_more": self.has_more}


def read_page(connection: sa.Connection, filters: Filters, *, after: str | None, limit: int, now: dt.datetime,
              retention: dt.timedelta) -> Page:
    """One page of the feed after the cursor ``after`` (from the start when ``None``), in one statement.

    Raises:
        InvalidCursor: ``after`` is not a cursor, or was made for other filters.
        CursorExpired: ``after``'s position is older than ``retention``: events after it may be gone.
    """
    if after is None:
        cursor = Cursor(filters, (0, 0) if filters.kind == "feed" else (0,), _seconds(now - GRACE))
    else:
        cursor = Cursor.decode(after)
        if cursor.filters != filters:
            raise _invalid("it was made for other filters (type, account_id); use the same ones")
        if cursor.at < _seconds(now - retention):
            raise CursorExpired(f"the cursor's position is older than the {retention.days}-day retention: "
                                "events after it may have been deleted; start again without 'after'")
    rows = connection.execute(_page_query(connection, cursor, limit)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page([_event_json(row) for row in rows], _next_cursor(cursor, rows, has_more, now).encode(), has_more)


def _page_query(connection: sa.Connection, cursor: Cursor, limit: int) -> sa.Select[Any]:
    filters = cursor.filters
    stmt = sa.select(*_COLUMNS).where(OutboxEvent.type != CHECKPOINT_TYPE)
    if filters.type is not None:
        stmt = stmt.where(OutboxEvent.type == filters.type)
    if filters.kind == "seq":
        stmt = stmt.where(OutboxEvent.account_id == filters.account_id, OutboxEvent.seq > cursor.position[0])
        return stmt.order_by(OutboxEvent.seq).limit(limit + 1)
    stmt = stmt.where(sa.tuple_(OutboxEvent.txid, OutboxEvent.id) > sa.tuple_(*cursor.position))
    if connection.dialect.name == "postgresql":
        stmt = stmt.where(OutboxEvent.txid < _VISIBLE_BELOW)
    return stmt.order_by(OutboxEvent.txid, OutboxEvent.id).limit(limit + 1)


def _next_cursor(cursor: Cursor, rows: list[sa.Row[Any]], has_more: bool, now: dt.datetime) -> Cursor:
    """The position after ``rows``, dated by the last event returned.

    At the end of the feed it is dated no earlier than the read (less :data:`GRACE`): an event that
    becomes visible later was written after about then, so a consumer that keeps polling an idle
    feed keeps a fresh cursor.
    """
    position, at = cursor.position, cursor.at
    if rows:
        last = rows[-1]
        position = (last.seq,) if cursor.filters.kind == "seq" else (last.txid, last.id)
        at = _seconds(last.created_at)
    if not has_more:
        at = max(at, _seconds(now - GRACE))
    return Cursor(cursor.filters, position, at)


def _seconds(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def _event_json(row: sa.Row[Any]) -> dict[str, Any]:
    return {"id": row.event_id, **event_body(row.type, row.created_at, row.data)}


def read_event(connection: sa.Connection, event_id: str) -> dict[str, Any]:
    """The event whose webhook-id is ``event_id``.

    Raises:
        NotFound: no such event in the feed (never written, purged, or an audit checkpoint).
    """
    row = connection.execute(sa.select(*_COLUMNS).where(OutboxEvent.event_id == event_id,
                                                        OutboxEvent.type != CHECKPOINT_TYPE)).one_or_none()
    if row is None:
        raise NotFound(f"no event with id {event_id!r}")
    return _event_json(row)
