"""What the calls feature adds to the app: its gauges, and the answer to a request that needed Meet when Meet cannot be used."""

from __future__ import annotations

import logging

from flask import Flask, Response, request

from integrations.google_meet import MeetConfigurationError
from verify_service.errors import Problem, render_problem
from verify_service.observability.metrics import add_gauges
from verify_service.registry import KEY as REGISTRY_KEY
from verify_service.registry import registry

log = logging.getLogger("verify_service.errors")  # where the other request errors are logged


def meet_unavailable_response(error: MeetConfigurationError) -> Response:
    """503 when a request needs Meet and the Meet backend cannot be used as configured (nothing was changed).

    Noted for /readyz at once. The views that change something call Meet only after the change, so
    reaching this means the change was not made: the page says so.
    """
    registry().note_meet_error(error)
    log.error("Meet is misconfigured on %s %s: %s", request.method, request.path, error)
    return render_problem(Problem(503, "meet_unavailable", "Video calls are not available right now",
                           "Our video call service is not set up correctly at the moment, so nothing was changed. "
                           "Please try again later; the team has been alerted.",
                           headers={"Retry-After": "60"}))


def register(app: Flask) -> None:
    from verify_service.calls.metrics import meet_gauges, session_gauges

    app.register_error_handler(MeetConfigurationError, meet_unavailable_response)
    add_gauges(app, "sessions", session_gauges)
    add_gauges(app, "meet", meet_gauges(app.extensions[REGISTRY_KEY].settings.meet_project_creates_per_minute))
