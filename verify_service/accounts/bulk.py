"""Restrictions in bulk: every account with a block, keyset-paged by account id (``GET /api/v1/restrictions``).

Made for rebuilding a derived set, such as a search index's hidden accounts
(README, "Restrictions in bulk"). An entry is the account's id, its
``restrictions_version`` and its ``blocked`` list, exactly as its own document
(``restrictions.py``) has them at that version: each page is read with one
statement, so a page never pairs a version with holds from another moment.

What "blocked" means is the document's: the union of the active holds. A closed
account keeps its holds (closing never lifts one, ``closure/``), so its document
and the bulk list both go on listing it. System accounts carry no holds.

The cursor is the last account id of the page (plain, not opaque: the list is
ordered by that id and nothing else, so the id is all a cursor needs). Pages are
each consistent; the list as a whole is not a snapshot, and an account that
changes behind the cursor is seen by the webhooks, not by this scan.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import sqlalchemy as sa

from verify_service.accounts.domain import Capability
from verify_service.accounts.models import Account, Hold
from verify_service.accounts.restrictions import united_blocks

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class BlockedPage:
    """One page of the bulk list: its entries, the cursor of the next page, and whether one follows."""

    data: list[dict[str, Any]]
    next_cursor: str | None
    has_more: bool

    def as_dict(self) -> dict[str, Any]:
        return {"data": self.data, "next_cursor": self.next_cursor, "has_more": self.has_more}


def _blocking(capability: Capability) -> sa.ColumnElement[bool]:
    # ``blocks`` is a JSON array of capability names, as the services wrote it. Capability names hold
    # no character JSON escapes or LIKE treats specially, so the quoted name occurs in the text exactly
    # when the array holds it: the same test on SQLite and PostgreSQL, with no JSON functions.
    return sa.cast(Hold.blocks, sa.Text).like(f'%"{capability.value}"%')


def _page_statement(blocked: Capability | None, after: str | None, limit: int) -> sa.Select[Any]:
    """The page's accounts (one more than ``limit``: it tells whether a page follows), with their active holds.

    The ids come from the partial index on active holds (``ix_holds_account_active``), read in
    order from ``after`` on, so a page costs its own size, never a sort of every blocked account.
    """
    ids = sa.select(Hold.account_id).where(Hold.lifted_at.is_(None))
    if after is not None:
        ids = ids.where(Hold.account_id > after)
    if blocked is not None:
        ids = ids.where(_blocking(blocked))
    page = ids.distinct().order_by(Hold.account_id).limit(limit + 1).subquery("page")
    return (sa.select(Account.id, Account.restrictions_version, Hold.blocks)
            .join(page, page.c.account_id == Account.id)
            .join(Hold, sa.and_(Hold.account_id == Account.id, Hold.lifted_at.is_(None)))
            .order_by(Account.id))


def read_blocked_page(connection: sa.Connection, *, blocked: Capability | None = None, after: str | None = None,
                      limit: int = DEFAULT_LIMIT) -> BlockedPage:
    """Up to ``limit`` blocked accounts after ``after`` (all of them, or those blocking ``blocked``), by id.

    One statement: on PostgreSQL one snapshot, so every entry's version and blocked list are those
    of its document at that version. ``limit`` is 1 to MAX_LIMIT (the schema holds callers to it).
    """
    rows = connection.execute(_page_statement(blocked, after, limit)).all()
    data = [{"account_id": account_id, "version": group[0][1], "blocked": united_blocks(row[2] for row in group)}
            for account_id, group in ((key, list(grouped)) for key, grouped in itertools.groupby(rows, _first))]
    has_more = len(data) > limit
    del data[limit:]
    return BlockedPage(data=data, next_cursor=data[-1]["account_id"] if data else after, has_more=has_more)


def _first(row: sa.Row[Any]) -> str:
    return str(row[0])
