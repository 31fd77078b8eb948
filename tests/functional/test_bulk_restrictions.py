"""GET /api/v1/restrictions: every blocked account by account id, each entry equal to its own document.

The figures are in tests/bench/bench_bulk_restrictions.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Api, FakeClock, assert_problem
from tests.support.plans import scans_in_order
from verify_service.accounts import services
from verify_service.accounts.bulk import _page_statement
from verify_service.accounts.domain import Capability, HoldKind
from verify_service.closure import close_account
from verify_service.db import unit_of_work
from verify_service.registry import Registry

LEAD = "lead@example.com"


def manual(registry: Registry, clock: FakeClock, account_id: str, *blocks: str) -> str:
    with unit_of_work(registry.sessions) as session:
        hold, _ = services.place_hold(session, account_id, kind=HoldKind.MANUAL, reason="Chargeback under review",
                                      actor=LEAD, now=clock(), blocks=list(blocks))
        return hold.id


def failed(registry: Registry, clock: FakeClock, account_id: str) -> None:
    with unit_of_work(registry.sessions) as session:
        services.place_hold(session, account_id, kind=HoldKind.VERIFICATION_FAILED, reason="Verification failed",
                            actor="system", now=clock())


def lift(registry: Registry, clock: FakeClock, hold_id: str) -> None:
    with unit_of_work(registry.sessions) as session:
        services.lift_hold(session, hold_id, reason="cleared", actor=LEAD, now=clock())


def seed(api: Api, registry: Registry, clock: FakeClock) -> dict[str, list[str]]:
    """A mixed set of accounts; returns what each blocked one should list (the others are absent)."""
    for n in range(1, 13):
        assert api.put_account(f"acc-{n:02d}").status_code == 201
    # acc-01: never asked. acc-02: asked without a hold. acc-03: the pending hold.
    api.request_verification("acc-02", {"reason": "new_account"})
    api.request_verification("acc-03", {"reason": "risk_signal", "place_hold": True})
    # acc-04: a manual hold placed and lifted (nothing left). acc-05: two manual holds, one lifted.
    lift(registry, clock, manual(registry, clock, "acc-04", "appear_in_search"))
    manual(registry, clock, "acc-05", "change_profile_photo", "withdraw_earnings")
    clock.advance(minutes=1)
    lift(registry, clock, manual(registry, clock, "acc-05", "appear_in_search"))
    # acc-06: failed, and a manual hold on top. acc-07: pending and manual, in the other order of time.
    failed(registry, clock, "acc-06")
    manual(registry, clock, "acc-06", "withdraw_earnings")
    manual(registry, clock, "acc-07", "appear_in_search", "submit_proposals")
    clock.advance(minutes=1)
    api.request_verification("acc-07", {"reason": "manual", "place_hold": True})
    # acc-08: held, then closed (closing keeps the holds; the document goes on listing them).
    api.request_verification("acc-08", {"reason": "new_account", "place_hold": True})
    failed(registry, clock, "acc-08")
    with unit_of_work(registry.sessions) as session:
        assert close_account(session, "acc-08", actor="account-service", now=clock()).closed
    # acc-09 … acc-12: one manual hold of each of four capabilities.
    for n, capability in zip(range(9, 13), ("accept_direct_hires", "appear_in_search", "submit_proposals",
                                            "withdraw_earnings"), strict=True):
        manual(registry, clock, f"acc-{n:02d}", capability)
    return {
        "acc-03": ["submit_proposals", "change_profile_photo"],
        "acc-05": ["withdraw_earnings", "change_profile_photo"],
        "acc-06": ["submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search"],
        "acc-07": ["submit_proposals", "appear_in_search", "change_profile_photo"],
        "acc-08": ["submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search",
                   "change_profile_photo"],
        "acc-09": ["accept_direct_hires"], "acc-10": ["appear_in_search"], "acc-11": ["submit_proposals"],
        "acc-12": ["withdraw_earnings"],
    }


def bulk(api: Api, **query: Any) -> Any:
    return api.client.get("/api/v1/restrictions", query_string=query, headers=api.auth)


def stream(api: Api, **query: Any) -> list[dict[str, Any]]:
    """Every entry, following next_cursor while has_more."""
    entries: list[dict[str, Any]] = []
    while True:
        response = bulk(api, **query)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert len(body["data"]) <= query.get("limit", 500)
        entries += body["data"]
        if not body["has_more"]:
            return entries
        assert body["next_cursor"] == body["data"][-1]["account_id"]
        query["after"] = body["next_cursor"]


def test_only_blocked_accounts_by_id_each_equal_to_its_own_document(api: Api, registry: Registry,
                                                                    clock: FakeClock) -> None:
    expected = seed(api, registry, clock)
    entries = stream(api)
    assert [e["account_id"] for e in entries] == sorted(expected)
    for entry in entries:
        document = api.restrictions(entry["account_id"]).get_json()
        assert entry == {"account_id": document["account_id"], "version": document["version"],
                         "blocked": document["blocked"]}
        assert entry["blocked"] == expected[entry["account_id"]]


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_small_pages_return_every_account_exactly_once(api: Api, registry: Registry, clock: FakeClock,
                                                       limit: int) -> None:
    expected = seed(api, registry, clock)
    assert [e["account_id"] for e in stream(api, limit=limit)] == sorted(expected)


def test_a_page_says_where_the_next_starts_and_the_last_page_says_no_more(api: Api, registry: Registry,
                                                                          clock: FakeClock) -> None:
    seed(api, registry, clock)
    first = bulk(api, limit=3).get_json()
    assert [e["account_id"] for e in first["data"]] == ["acc-03", "acc-05", "acc-06"]
    assert first["next_cursor"] == "acc-06" and first["has_more"] is True
    last = bulk(api, after="acc-10", limit=2).get_json()
    assert [e["account_id"] for e in last["data"]] == ["acc-11", "acc-12"] and last["has_more"] is False
    assert last["next_cursor"] == "acc-12"
    # Past the end: an empty page keeps the cursor it was given.
    assert bulk(api, after="acc-12").get_json() == {"data": [], "next_cursor": "acc-12", "has_more": False}
    assert bulk(api).get_json()["has_more"] is False  # nine accounts, a page of 500


def test_the_blocked_filter_keeps_the_accounts_that_block_it_with_their_whole_list(
        api: Api, registry: Registry, clock: FakeClock) -> None:
    expected = seed(api, registry, clock)
    for capability in Capability:
        entries = stream(api, blocked=capability.value, limit=2)
        assert [e["account_id"] for e in entries] == [a for a in sorted(expected) if capability.value in expected[a]]
        assert all(e["blocked"] == expected[e["account_id"]] for e in entries)
    assert [e["account_id"] for e in stream(api, blocked="appear_in_search")] == [
        "acc-06", "acc-07", "acc-08", "acc-10"]


def test_a_change_moves_the_entry_to_the_new_version(api: Api, registry: Registry, clock: FakeClock) -> None:
    api.put_account("acc-1")
    hold_id = manual(registry, clock, "acc-1", "appear_in_search")
    assert bulk(api).get_json()["data"] == [{"account_id": "acc-1", "version": 1, "blocked": ["appear_in_search"]}]
    manual(registry, clock, "acc-1", "submit_proposals")
    assert bulk(api).get_json()["data"] == [
        {"account_id": "acc-1", "version": 2, "blocked": ["submit_proposals", "appear_in_search"]}]
    assert bulk(api, blocked="submit_proposals").get_json()["data"][0]["version"] == 2
    lift(registry, clock, hold_id)
    assert bulk(api, blocked="appear_in_search").get_json()["data"] == []
    assert bulk(api).get_json()["data"] == [{"account_id": "acc-1", "version": 3, "blocked": ["submit_proposals"]}]


@pytest.mark.parametrize(("query", "field"), [
    ({"blocked": "work_on_contracts"}, "blocked"),
    ({"blocked": ""}, "blocked"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"after": "_audit"}, "after"),
])
def test_bad_input_is_a_problem_naming_the_field(api: Api, query: dict[str, Any], field: str) -> None:
    body = assert_problem(bulk(api, **query), 422, "validation_failed")
    assert field in [error["field"] for error in body["errors"]]


def test_the_api_key_is_required(api: Api) -> None:
    assert_problem(api.client.get("/api/v1/restrictions"), 401, "unauthorized")
    assert_problem(api.client.get("/api/v1/restrictions", headers={"Authorization": "Bearer wrong"}),
                   401, "unauthorized")


PAGE_INDEXES = ((None, "ix_holds_account_active"), (Capability.APPEAR_IN_SEARCH, "ix_holds_active_appear_in_search"))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_page_is_an_index_scan_in_account_order_not_a_sort(registry: Registry) -> None:
    with registry.engine.connect() as connection:
        # A planner on an empty table would read it whole whatever the indexes: make it choose as at scale.
        # (tests/bench/bench_bulk_restrictions.py checks the plan at a million accounts.)
        connection.exec_driver_sql("SET enable_seqscan = off")
        for blocked, index in PAGE_INDEXES:
            plan = "\n".join(connection.exec_driver_sql(f"EXPLAIN {_literal(connection, blocked)}").scalars())
            assert scans_in_order(plan, index), plan


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_on_sqlite_too_the_page_is_searched_in_an_index(registry: Registry) -> None:
    # SQLite weighs the two partial indexes by its own statistics; either reads the ids in order.
    with registry.engine.connect() as connection:
        for blocked, index in PAGE_INDEXES:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {_literal(connection, blocked)}").all()
            page = next(node for node, _parent, _, detail in plan if detail == "MATERIALIZE page")
            inside = [detail for _node, parent, _, detail in plan if parent == page]
            assert inside in ([f"SEARCH holds USING INDEX {index} (account_id>?)"],
                              ["SEARCH holds USING INDEX ix_holds_account_active (account_id>?)"]), plan


def _literal(connection: sa.Connection, blocked: Capability | None) -> str:
    statement = _page_statement(blocked, "acc-1", 500)
    return str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))


def test_the_operation_is_in_the_openapi_document(api: Api) -> None:
    document = api.client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/restrictions"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"blocked", "after", "limit"}
    assert parameters["limit"]["schema"]["maximum"] == 1000
    assert set(operation["responses"]) >= {"200", "401", "422"}

