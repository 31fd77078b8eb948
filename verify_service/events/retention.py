"""Retention of the events feed: delivered events older than ``VERIFY_EVENT_RETENTION_DAYS`` are deleted.

Never deleted: an event not yet delivered (pending or dead-lettered: the webhook still owes it), the
latest ``audit.checkpoint`` (``ops/checkpoints.py`` checks the chain against it), and the event with
the largest id (on SQLite the next rowid is the largest plus one: deleting it would hand its id out
again, behind the cursors that have passed it).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from verify_service.db import unit_of_work, workflow
from verify_service.events.feed import GRACE
from verify_service.ops.checkpoints import AUDIT_ACCOUNT_ID, EVENT_TYPE as CHECKPOINT_TYPE
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent


@workflow
def purge_events(sessions: sessionmaker[Session], *, now: dt.datetime, retention: dt.timedelta,
                 batch: int = 5000, max_batches: int = 200) -> int:
    """Run :func:`purge_batch` until nothing is left (or ``max_batches``), one transaction per batch.

    Events are kept :data:`~verify_service.events.feed.GRACE` longer than ``retention``: a cursor
    expires (410) before the events after it can go. Returns how many were deleted.
    """
    cutoff = now - retention - GRACE
    total = 0
    for _ in range(max_batches):
        with unit_of_work(sessions) as db:
            deleted = purge_batch(db, cutoff=cutoff, batch=batch)
        total += deleted
        if deleted < batch:
            break
    return total


def purge_batch(db: Session, *, cutoff: dt.datetime, batch: int) -> int:
    """Delete up to ``batch`` delivered events created before ``cutoff``; returns how many.

    On PostgreSQL the rows are claimed with ``FOR UPDATE SKIP LOCKED``: a row the relay or a second
    scheduler holds is left for a later run. The count is the DELETE's own.
    """
    latest_checkpoint = (sa.select(OutboxEvent.id)
                         .where(OutboxEvent.account_id == AUDIT_ACCOUNT_ID, OutboxEvent.type == CHECKPOINT_TYPE)
                         .order_by(OutboxEvent.seq.desc()).limit(1).scalar_subquery())
    largest = sa.select(sa.func.max(OutboxEvent.id)).scalar_subquery()
    stmt = (sa.select(OutboxEvent.id)
            .where(OutboxEvent.status == DeliveryStatus.DELIVERED, OutboxEvent.created_at < cutoff,
                   OutboxEvent.id != largest, OutboxEvent.id != sa.func.coalesce(latest_checkpoint, 0))
            .order_by(OutboxEvent.id).limit(batch))
    if db.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids = db.scalars(stmt).all()
    if not ids:
        return 0
    return db.execute(sa.delete(OutboxEvent).where(OutboxEvent.id.in_(ids))
                      .execution_options(synchronize_session=False)).rowcount or 0
