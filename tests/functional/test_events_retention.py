"""The purge_events job: delivered events past VERIFY_EVENT_RETENTION_DAYS go; what is still owed stays."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Flask

from jobs import SCHEDULES, maintenance
from tests.conftest import Api, FakeClock, assert_problem
from tests.functional.test_events_api import _checkpoint, _follow, _make_events
from verify_service.events import retention
from verify_service.ops.checkpoints import _last_checkpoint
from verify_service.registry import Registry
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent


def _rows(registry: Registry) -> list[OutboxEvent]:
    with registry.sessions() as db:
        return list(db.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id)).all())


def _set_status(registry: Registry, status: DeliveryStatus, *ids: int) -> None:
    with registry.sessions() as db, db.begin():
        db.execute(sa.update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(status=status))


def test_the_job_is_scheduled_hourly() -> None:
    assert (maintenance.purge_events, "interval", {"hours": 1}) in SCHEDULES


def test_purge_keeps_undelivered_events_and_the_last_checkpoint_and_old_cursors_expire(
        app: Flask, api: Api, registry: Registry, clock: FakeClock) -> None:
    _make_events(api, accounts=2)
    _checkpoint(registry)
    _checkpoint(registry)
    old = _rows(registry)
    checkpoints = [e.id for e in old if e.type == "audit.checkpoint"]
    events = [e for e in old if e.type != "audit.checkpoint"]
    assert len(checkpoints) == 2 and len(events) >= 5
    at_the_end = _follow(api, 1, expect=len(events))[1]  # a consumer that had caught up, then went away
    pending, dead = events[0].id, events[1].id
    _set_status(registry, DeliveryStatus.DELIVERED, *[e.id for e in old])
    _set_status(registry, DeliveryStatus.PENDING, pending)
    _set_status(registry, DeliveryStatus.DEAD, dead)
    old_cursor = api.client.get("/api/v1/events", query_string={"limit": 1}, headers=api.auth).get_json()
    assert old_cursor["has_more"] is True

    clock.advance(days=30, minutes=30)  # past the 30 days, but within the purge's hour of grace
    assert maintenance.purge_events(app) == 0
    clock.advance(minutes=31)
    deleted = maintenance.purge_events(app)

    kept = {e.id for e in _rows(registry)}
    assert kept == {pending, dead, checkpoints[-1]}, (kept, [e.id for e in old])
    assert deleted == len(old) - 3
    with registry.sessions() as db:
        assert _last_checkpoint(db) is not None   # checkpoints.py still finds the latest checkpoint
    assert_problem(api.client.get("/api/v1/events", query_string={"after": old_cursor["next_cursor"]},
                                  headers=api.auth), 410, "cursor_expired")
    assert_problem(api.client.get("/api/v1/events", query_string={"after": at_the_end}, headers=api.auth),
                   410, "cursor_expired")
    # From the start again: what the outbox still holds.
    assert [e["id"] for e in _follow(api, 10, expect=2)[0]] == [e.event_id for e in events[:2]]


def test_purge_never_deletes_the_newest_row_so_sqlite_never_reuses_its_id(
        app: Flask, api: Api, registry: Registry, clock: FakeClock) -> None:
    _make_events(api, accounts=1)
    rows = _rows(registry)
    _set_status(registry, DeliveryStatus.DELIVERED, *[e.id for e in rows])
    clock.advance(days=40)
    assert maintenance.purge_events(app) == len(rows) - 1
    assert [e.id for e in _rows(registry)] == [rows[-1].id]


def test_purge_goes_in_batches(app: Flask, api: Api, registry: Registry, clock: FakeClock) -> None:
    _make_events(api, accounts=3)
    rows = _rows(registry)
    _set_status(registry, DeliveryStatus.DELIVERED, *[e.id for e in rows])
    clock.advance(days=40)
    deleted = retention.purge_events(registry.sessions, now=clock(), retention=dt.timedelta(days=30),
                                     batch=2)
    assert deleted == len(rows) - 1
