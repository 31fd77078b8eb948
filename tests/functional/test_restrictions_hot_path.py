"""GET …/restrictions, the marketplace's hot path: the whole document from one statement, no transaction on PostgreSQL.

The figures are in tests/bench/bench_restrictions.py; these tests keep the
shape that makes them (one round trip per read) and the document it reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from tests.conftest import Api, FakeClock, assert_problem
from verify_service.accounts import services
from verify_service.accounts.domain import HoldKind
from verify_service.api.schemas import ConditionalHeaders, IdempotencyHeaders
from verify_service.db import unit_of_work
from verify_service.registry import Registry


@pytest.fixture
def statements(registry: Registry) -> Iterator[list[tuple[str, bool]]]:
    """Every statement the app sends, with whether its connection was in autocommit mode."""
    seen: list[tuple[str, bool]] = []

    def record(conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append((statement, bool(getattr(conn.connection.dbapi_connection, "autocommit", False))))

    sa.event.listen(registry.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(registry.engine, "before_cursor_execute", record)


def held_twice(api: Api, registry: Registry, clock: FakeClock) -> None:
    """acc-1: an open request with the pending hold, then a lead's manual hold a minute later."""
    assert api.put_account("acc-1").status_code == 201
    assert api.request_verification("acc-1", {"reason": "risk_signal", "place_hold": True}).status_code == 201
    clock.advance(minutes=1)
    with unit_of_work(registry.sessions) as session:
        services.place_hold(session, "acc-1", kind=HoldKind.MANUAL, reason="Chargeback under review",
                            actor="lead@example.com", now=clock(), blocks=["withdraw_earnings", "submit_proposals"])


def test_the_document_lists_active_holds_in_order_with_their_union(api: Api, registry: Registry,
                                                                   clock: FakeClock) -> None:
    held_twice(api, registry, clock)
    body = api.restrictions("acc-1").get_json()
    assert body["version"] == 2
    assert body["blocked"] == ["submit_proposals", "withdraw_earnings", "change_profile_photo"]
    assert [(h["kind"], h["blocks"]) for h in body["holds"]] == [
        ("verification_pending", ["submit_proposals", "change_profile_photo"]),
        ("manual", ["submit_proposals", "withdraw_earnings"])]
    assert body["holds"][1] == {"id": body["holds"][1]["id"], "kind": "manual", "reason": "Chargeback under review",
                                "blocks": ["submit_proposals", "withdraw_earnings"],
                                "placed_at": "2026-11-22T09:01:00Z", "placed_by": "lead@example.com"}
    assert body["verification"]["status"] == "required"
    assert body["verification"]["request"]["reason"] == "risk_signal"
    assert body["verification"]["request"]["status"] == "open"

    # Lifted holds leave the document and the union; the version moves on.
    with unit_of_work(registry.sessions) as session:
        services.lift_hold(session, body["holds"][0]["id"], reason="cleared", actor="lead@example.com", now=clock())
    after = api.restrictions("acc-1").get_json()
    assert after["version"] == 3
    assert after["blocked"] == ["submit_proposals", "withdraw_earnings"]
    assert [h["kind"] for h in after["holds"]] == ["manual"]


def test_an_account_without_holds_or_request(api: Api) -> None:
    api.put_account("acc-2")
    body = api.restrictions("acc-2").get_json()
    assert body == {"account_id": "acc-2", "version": 0, "blocked": [], "holds": [],
                    "verification": {"status": "not_required", "changed_at": None, "request": None}}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_each_read_is_one_statement_outside_a_transaction(api: Api, registry: Registry, clock: FakeClock,
                                                         statements: list[tuple[str, bool]]) -> None:
    held_twice(api, registry, clock)

    def sent(etag: str | None = None) -> tuple[int, list[tuple[str, bool]]]:
        statements.clear()
        status = api.restrictions("acc-1", etag).status_code
        return status, [(s.split()[0], autocommit) for s, autocommit in statements if s.strip() != ";"]

    # The pool's pre-ping (";") aside: no BEGIN, no ROLLBACK, one SELECT per read.
    assert sent() == (200, [("SELECT", True)])
    assert sent('"2"') == (304, [("SELECT", True)])
    assert sent('"1"') == (200, [("SELECT", True), ("SELECT", True)])  # stale: the version, then the document
    # The connection goes back to the pool as it came: writes still run in a transaction.
    statements.clear()
    assert api.put_account("acc-1", name="Ana Maria").status_code == 200
    assert statements and not any(autocommit for _, autocommit in statements)


def test_an_over_long_if_none_match_is_still_refused(api: Api) -> None:
    api.put_account("acc-1")
    body = assert_problem(api.restrictions("acc-1", '"' + "9" * 1000 + '"'), 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["If-None-Match"]


@pytest.mark.parametrize("model", [ConditionalHeaders, IdempotencyHeaders])
def test_header_models_keep_their_schema_and_hand_out_copies(model: type[BaseModel]) -> None:
    fresh = BaseModel.model_json_schema.__func__  # type: ignore[attr-defined]  (pydantic's own, uncached)
    assert model.model_json_schema() == fresh(model)
    options = {"by_alias": True, "ref_template": "#/components/schemas/{model}", "mode": "validation"}
    assert model.model_json_schema(**options) == fresh(model, **options)
    model.model_json_schema()["properties"].clear()  # a caller that changes its copy changes nobody else's
    assert model.model_json_schema() == fresh(model)
