"""The daily materialisation of weekly reviewer shifts (verify_service/leads/shifts.py)."""

from __future__ import annotations

import logging

from flask import Flask

from jobs.runner import job_unit
from verify_service.leads import shifts

log = logging.getLogger("jobs")


def materialise_shifts(app: Flask) -> shifts.MaterialiseReport:
    """Keep the concrete shifts of every weekly shift filled for the next 14 days (idempotent)."""
    with job_unit(app, "materialise_shifts") as (db, registry):
        report = shifts.materialise(db, now=registry.now())
    if report.added or report.removed:
        log.info("job materialise_shifts added %d and removed %d shifts", report.added, report.removed)
    return report
