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
import functools
import json
from typing import Any

import sqlalchemy as sa

from verify_service.accounts.domain import Capability
from verify_service.accounts.models import Account, Hold, active_blocking
from verify_service.accounts.restrictions import united_blocks

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
# Between the JSON texts of one account's holds: JSON has it only inside strings, and no capability name holds it.
HOLD_SEPARATOR = "|"


@dataclasses.dataclass(frozen=True)
class BlockedPage:
    """One page of the bulk list: its entries, the cursor of the next page, and whether one follows."""

    data: list[dict[str, Any]]
    next_cursor: str | None
    has_more: bool

    def as_dict(self) -> dict[str, Any]:
        return {"data": self.data, "next_cursor": self.next_cursor, "has_more": self.has_more}


def _page_statement(blocked: Capability | None, after: str | None, limit: int) -> sa.Select[Any]:
    """The page's accounts (one more than ``limit``: it tells whether a page follows), with their active holds.

    The ids come from a partial index on active holds, read in order from ``after`` on
    (``ix_holds_account_active``; with ``blocked``, ``ix_holds_active_<capability>``), so a page
    costs its own size, never a sort of every blocked account. The capability and the limit are
    written into the SQL, not bound: the planner must see them to pick that index and that plan.
    """
    ids = sa.select(Hold.account_id).where(Hold.lifted_at.is_(None))
    if after is not None:
        ids = ids.where(Hold.account_id > after)
    if blocked is not None:
        ids = ids.where(sa.text(active_blocking(blocked)))
    page = (ids.distinct().order_by(Hold.account_id)
            .limit(sa.bindparam("limit", limit + 1, literal_execute=True)).subquery("page"))
    # One row per account: its active holds' blocks, as JSON texts joined by HOLD_SEPARATOR (in no
    # particular order: the union does not depend on it).
    holds = sa.func.aggregate_strings(sa.cast(Hold.blocks, sa.Text), HOLD_SEPARATOR)
    return (sa.select(Account.id, Account.restrictions_version, holds)
            .join(page, page.c.account_id == Account.id)
            .join(Hold, sa.and_(Hold.account_id == Account.id, Hold.lifted_at.is_(None)))
            .group_by(Account.id, Account.restrictions_version)
            .order_by(Account.id))


def read_blocked_page(connection: sa.Connection, *, blocked: Capability | None = None, after: str | None = None,
                      limit: int = DEFAULT_LIMIT) -> BlockedPage:
    """Up to ``limit`` blocked accounts after ``after`` (all of them, or those blocking ``blocked``), by id.

    One statement: on PostgreSQL one snapshot, so every entry's version and blocked list are those
    of its document at that version. ``limit`` is 1 to MAX_LIMIT (the schema holds callers to it).
    """
    rows = connection.execute(_page_statement(blocked, after, limit)).all()
    data = [{"account_id": account_id, "version": version, "blocked": _blocked(holds)}
            for account_id, version, holds in rows]
    has_more = len(data) > limit
    del data[limit:]
    return BlockedPage(data=data, next_cursor=data[-1]["account_id"] if data else after, has_more=has_more)


@functools.lru_cache(maxsize=1024)
def _blocked(holds: str) -> list[str]:
    """The ``blocked`` list of an account whose active holds' ``blocks`` are these joined JSON texts.

    Accounts share a handful of hold sets, so the texts repeat from account to account: each is
    parsed and united once. The list is shared by the entries that have it; nothing changes it.
    """
    return united_blocks(json.loads(text) for text in holds.split(HOLD_SEPARATOR))
