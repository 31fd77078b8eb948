"""The shape every job shares: one unit of work, logged with its duration."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from flask import Flask
from sqlalchemy.orm import Session

from verify_service.db import unit_of_work
from verify_service.registry import KEY, Registry

log = logging.getLogger("jobs")


@contextlib.contextmanager
def job_unit(app: Flask, name: str) -> Iterator[tuple[Session, Registry]]:
    """Open the job's one transaction; commit at the end, roll back and log on error."""
    registry: Registry = app.extensions[KEY]
    started = time.monotonic()
    try:
        with unit_of_work(registry.sessions) as session:
            yield session, registry
    except Exception:
        log.exception("job %s failed after %.3fs", name, time.monotonic() - started)
        raise
    log.info("job %s done in %.3fs", name, time.monotonic() - started)
