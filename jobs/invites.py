"""The calendar-invite job: booking changes Google has not taken yet, retried until it does."""

from __future__ import annotations

import logging

from flask import Flask

from integrations.google_meet import MeetConfigurationError
from verify_service.calls import invites
from verify_service.registry import KEY, Registry

log = logging.getLogger("jobs")


def repair_invites(app: Flask) -> int:
    """Push the due calendar moves and deletions (calls Google between its transactions); returns how many took.

    Raises:
        MeetConfigurationError: the Meet backend is not available (noted for /readyz; the changes wait).
    """
    registry: Registry = app.extensions[KEY]
    try:
        gateway = registry.meet_gateway()
    except MeetConfigurationError as exc:
        registry.note_meet(str(exc))
        log.error("Meet is misconfigured; calendar changes wait: %s", exc)
        raise
    counts = invites.repair_invites(registry.sessions, gateway, settings=registry.settings, now=registry.now())
    if counts:
        log.info("job repair_invites: %s", ", ".join(f"{n} {result.value}" for result, n in sorted(counts.items())))
    return counts.get(invites.Pushed.DONE, 0)
