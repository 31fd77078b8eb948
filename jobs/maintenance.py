"""Housekeeping jobs."""

from __future__ import annotations

import logging

from flask import Flask

from jobs.runner import job_unit
from verify_service.api import idempotency

log = logging.getLogger("jobs")


def purge_idempotency_keys(app: Flask) -> int:
    """Forget Idempotency-Keys past their lifetime (batched, so a backlog never holds a long lock)."""
    with job_unit(app, "purge_idempotency_keys") as (session, registry):
        deleted = idempotency.purge_expired(session, now=registry.now())
    if deleted:
        log.info("purged %d expired idempotency keys", deleted)
    return deleted
