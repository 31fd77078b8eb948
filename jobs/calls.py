"""Call-session jobs."""

from __future__ import annotations

import logging

from flask import Flask

from jobs.runner import job_unit
from verify_service.calls import services
from verify_service.calls.services import ConferenceEnding

log = logging.getLogger("jobs")


def end_requested_conferences(app: Flask) -> ConferenceEnding:
    """End the Meet conferences of canceled sessions (e.g. the account closed); failures wait for the next run.

    Raises:
        MeetConfigurationError: the configured Meet backend is not available
            (logged by the runner; nothing is changed).
    """
    with job_unit(app, "end_requested_conferences") as (session, registry):
        result = services.end_requested_conferences(session, registry.meet_gateway(), now=registry.now())
    if result.ended or result.failed:
        log.info("ended %d Meet conferences; %d failed and will be retried", result.ended, result.failed)
    return result
