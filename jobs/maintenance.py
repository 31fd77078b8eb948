"""Housekeeping jobs."""

from __future__ import annotations

import logging

from flask import Flask

from jobs.runner import job_unit
from verify_service.api import idempotency
from verify_service.calls import meetings
from verify_service.freelancer import services as freelancer
from verify_service.webhooks import inbound

log = logging.getLogger("jobs")


def purge_idempotency_keys(app: Flask) -> int:
    """Forget Idempotency-Keys past their lifetime (batched, so a backlog never holds a long lock)."""
    with job_unit(app, "purge_idempotency_keys") as (session, registry):
        deleted = idempotency.purge_expired(session, now=registry.now())
    if deleted:
        log.info("purged %d expired idempotency keys", deleted)
    return deleted


def purge_webhook_receipts(app: Flask) -> int:
    """Forget inbound webhook-ids older than the retention window (far past any sender's retries)."""
    with job_unit(app, "purge_webhook_receipts") as (session, registry):
        deleted = inbound.purge_receipts(session, now=registry.now())
    if deleted:
        log.info("purged %d old inbound webhook receipts", deleted)
    return deleted


def prune_meet_creations(app: Flask) -> int:
    """Forget space creations older than an hour (the budget only looks at the last minute)."""
    with job_unit(app, "prune_meet_creations") as (session, registry):
        return meetings.prune_creations(session, now=registry.now())


def purge_freelancer_links(app: Flask) -> int:
    """Delete launch links and freelancer sessions that can no longer be used."""
    with job_unit(app, "purge_freelancer_links") as (session, registry):
        return freelancer.purge_expired(session, now=registry.now())
