"""The events API through the Flask test client, on both database backends."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Api, FakeClock, assert_problem
from verify_service.db import unit_of_work
from verify_service.ops.checkpoints import write_checkpoint
from verify_service.registry import Registry
from verify_service.webhooks.models import OutboxEvent

EVENTS = "/api/v1/events"


def _events(api: Api, **query: Any) -> Any:
    return api.client.get(EVENTS, query_string={k: v for k, v in query.items() if v is not None}, headers=api.auth)


def _page(api: Api, **query: Any) -> dict[str, Any]:
    response = _events(api, **query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _follow(api: Api, limit: int, after: str | None = None, *, expect: int | None = None,
            **filters: Any) -> tuple[list[dict[str, Any]], str]:
    """Every event from ``after`` on, page by page; returns them and the last cursor.

    With ``expect``, keeps polling from the last cursor until that many came, as a consumer does: on
    PostgreSQL an event shows once every older writing transaction of the server has ended, and other
    databases on the test server may have one open for a moment.
    """
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while True:
        page = _page(api, after=after, limit=limit, **filters)
        assert len(page["data"]) <= limit
        seen += page["data"]
        after = page["next_cursor"]
        if page["has_more"]:
            continue
        if expect is None or len(seen) >= expect or time.monotonic() > deadline:
            return seen, after
        time.sleep(0.05)


def _outbox(registry: Registry, **where: Any) -> list[OutboxEvent]:
    with registry.sessions() as db:
        stmt = sa.select(OutboxEvent).filter_by(**where).where(OutboxEvent.type != "audit.checkpoint")
        return list(db.scalars(stmt.order_by(OutboxEvent.id)).all())


def _make_events(api: Api, accounts: int = 3) -> None:
    for i in range(accounts):
        assert api.put_account(f"acc-{i}").status_code == 201
        assert api.request_verification(f"acc-{i}", {"reason": "new_account", "place_hold": True}).status_code == 201
    api.request_verification("acc-0", {"reason": "new_account", "deadline": "2026-12-24T00:00:00Z"})


def _checkpoint(registry: Registry) -> None:
    with unit_of_work(registry.sessions) as db:
        write_checkpoint(db, key=registry.settings.audit_checkpoint_key.encode(), now=registry.now(), force=True)


def test_paging_with_small_limits_returns_every_event_once_in_order(api: Api, registry: Registry) -> None:
    _make_events(api)
    _checkpoint(registry)
    outbox = _outbox(registry)
    assert len(outbox) >= 7
    for limit in (1, 2, 3, 500):
        seen, _ = _follow(api, limit, expect=len(outbox))
        assert [e["id"] for e in seen] == [e.event_id for e in outbox]
    first = outbox[0]
    assert seen[0] == {"id": first.event_id, "type": first.type, "timestamp": "2026-11-22T09:00:00Z",
                       "data": first.data}
    assert first.data["account_id"] == "acc-0" and first.data["seq"] == 1
    assert all(e["type"] != "audit.checkpoint" for e in seen)  # the audit anchor is not an account event


def test_the_body_is_the_webhook_body_the_relay_signs(api: Api, registry: Registry) -> None:
    from integrations.account_service import OutboundMessage

    _make_events(api, accounts=1)
    event = _outbox(registry)[0]
    sent = json.loads(OutboundMessage(event.event_id, event.type, event.created_at, event.data, 1).body())
    shown = _follow(api, 100, expect=1)[0][0]
    assert shown.pop("id") == event.event_id
    assert shown == sent


def test_type_filter_and_its_cursor(api: Api, registry: Registry) -> None:
    _make_events(api)
    expected = [e.event_id for e in _outbox(registry, type="account.hold.placed")]
    assert len(expected) == 3
    seen, cursor = _follow(api, 2, type="account.hold.placed", expect=3)
    assert [e["id"] for e in seen] == expected
    # The cursor belongs to its filters.
    problem = assert_problem(_events(api, after=cursor), 400, "invalid_cursor")
    assert problem["errors"][0]["field"] == "after"


def test_account_listing_is_in_seq_order_and_takes_a_seq_cursor(api: Api, registry: Registry) -> None:
    _make_events(api)
    mine = _outbox(registry, account_id="acc-0")
    seen, cursor = _follow(api, 1, account_id="acc-0")
    assert [e["data"]["seq"] for e in seen] == list(range(1, len(mine) + 1))
    assert {e["id"] for e in seen} == {e.event_id for e in mine}
    assert _page(api, account_id="acc-0", after=cursor)["data"] == []
    assert_problem(_events(api, account_id="acc-1", after=cursor), 400, "invalid_cursor")
    assert_problem(_events(api, after=cursor), 400, "invalid_cursor")
    only = _page(api, account_id="acc-0", type="verification.required")["data"]
    assert [e["id"] for e in only] == [e.event_id for e in mine if e.type == "verification.required"]
    assert len(only) == 2  # the request, then its deadline


def test_get_one_event_and_404(api: Api, registry: Registry) -> None:
    _make_events(api, accounts=1)
    _checkpoint(registry)
    event = _outbox(registry)[0]
    response = api.client.get(f"{EVENTS}/{event.event_id}", headers=api.auth)
    assert response.status_code == 200
    assert response.get_json()["id"] == event.event_id and response.get_json()["data"] == event.data
    assert_problem(api.client.get(f"{EVENTS}/evt_{'0' * 32}", headers=api.auth), 404, "not_found")
    with registry.sessions() as db:
        checkpoint = db.scalar(sa.select(OutboxEvent.event_id).where(OutboxEvent.type == "audit.checkpoint"))
    assert_problem(api.client.get(f"{EVENTS}/{checkpoint}", headers=api.auth), 404, "not_found")
    assert_problem(api.client.get(f"{EVENTS}/nope", headers=api.auth), 422, "validation_failed")


def _cursor(fields: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("after", [
    "bm90LWpzb24", "x", "A" * 400, "eyJ2Ijo", _cursor({"v": 2, "k": "feed", "p": [0, 0], "t": 0, "ty": None, "ac": None}),
    _cursor({"v": 1, "k": "feed", "p": [0], "t": 0, "ty": None, "ac": None}),
    _cursor({"v": 1, "k": "feed", "p": [-1, 0], "t": 0, "ty": None, "ac": None}),
    _cursor({"v": 1, "k": "feed", "p": [2**63, 0], "t": 0, "ty": None, "ac": None}),
    _cursor({"v": 1, "k": "seq", "p": [1], "t": 0, "ty": None, "ac": None}),
    _cursor({"v": 1, "k": "feed", "p": ["1", 0], "t": 0, "ty": None, "ac": None}),
    _cursor({"v": 1, "k": "feed", "p": [1, 0], "t": 10**20, "ty": None, "ac": None}),
    _cursor([1, 2]),
])
def test_a_bad_cursor_is_a_400_problem_naming_after(api: Api, after: str) -> None:
    problem = assert_problem(_events(api, after=after), 400, "invalid_cursor")
    assert problem["errors"] == [{"field": "after", "message": problem["errors"][0]["message"]}]


@pytest.mark.parametrize(("query", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "ten"}, "limit"),
    ({"type": "audit.checkpoint"}, "type"), ({"type": "verification.unknown"}, "type"),
    ({"account_id": "_audit"}, "account_id"), ({"after": "not base64!"}, "after"),
])
def test_bad_query_parameters_are_422_problems_naming_the_field(api: Api, query: dict[str, Any], field: str) -> None:
    problem = assert_problem(_events(api, **query), 422, "validation_failed")
    assert any(field in error["field"] for error in problem["errors"]), problem


def test_the_api_key_is_required(api: Api) -> None:
    assert_problem(api.client.get(EVENTS), 401, "unauthorized")
    assert_problem(api.client.get(f"{EVENTS}/evt_{'0' * 32}"), 401, "unauthorized")
    assert_problem(api.client.get(EVENTS, headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")


def test_an_empty_page_gives_a_cursor_that_later_returns_new_events(api: Api, registry: Registry) -> None:
    empty = _page(api)
    assert empty["data"] == [] and empty["has_more"] is False and empty["next_cursor"]
    _make_events(api, accounts=1)
    seen, cursor = _follow(api, 100, after=empty["next_cursor"], expect=len(_outbox(registry)))
    assert [e["id"] for e in seen] == [e.event_id for e in _outbox(registry)]
    # At the end, the same position again: polling never repeats an event.
    again = _page(api, after=cursor)
    assert again["data"] == [] and again["has_more"] is False
    api.put_account("acc-9")
    api.request_verification("acc-9")
    assert [e["data"]["account_id"] for e in _follow(api, 100, after=again["next_cursor"], expect=1)[0]] == ["acc-9"]


def test_an_old_cursor_answers_410_and_a_polling_one_stays_fresh(api: Api, clock: FakeClock) -> None:
    _make_events(api, accounts=1)
    polling = _follow(api, 100, expect=2)[1]
    first = _page(api, limit=1)
    assert first["has_more"] is True
    clock.advance(days=20)
    polling = _page(api, after=polling)["next_cursor"]  # an idle feed's cursor is dated by the read
    clock.advance(days=11)
    assert_problem(_events(api, after=first["next_cursor"]), 410, "cursor_expired")
    assert _page(api, after=polling)["data"] == []
    # Without a cursor the feed starts again.
    assert len(_follow(api, 100, expect=1)[0]) > 0


def test_has_more_is_exact(api: Api, registry: Registry) -> None:
    _make_events(api, accounts=1)
    total = len(_outbox(registry))
    _follow(api, 100, expect=total)
    assert _page(api, limit=total)["has_more"] is False
    assert _page(api, limit=total - 1)["has_more"] is True


def test_timestamps_are_utc_rfc3339(api: Api, clock: FakeClock) -> None:
    clock.current = dt.datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=dt.timezone.utc)
    _make_events(api, accounts=1)
    assert _follow(api, 100, expect=1)[0][0]["timestamp"] == "2026-11-22T09:00:00.123456Z"
