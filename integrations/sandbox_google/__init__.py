"""A local emulator of the Google Meet REST v2 and Calendar v3 subset the service uses.

With ``VERIFY_MEET_BACKEND=sandbox`` the app serves it itself (see
:func:`register_sandbox`) and the real :class:`~integrations.google_meet.GoogleMeetGateway`
talks to it over HTTP through ``VERIFY_MEET_API_ENDPOINT`` /
``VERIFY_CALENDAR_API_ENDPOINT``, with anonymous credentials:

* ``/sandbox/google/meet/v2/…`` — spaces (create, get, patch,
  ``:endActiveConference``), members, conference records, participants,
  participant sessions;
* ``/sandbox/google/calendar/v3/calendars/{calendarId}/events…`` — insert,
  get, patch, delete;
* ``/sandbox/meet/{meetingCode}`` — the sandbox meeting room a ``meetingUri``
  opens: people join and leave there, which makes the conference records the
  attendance job reads. No real Google Meet is involved, and every page says so.

State lives in memory (``app.extensions["sandbox_google"]``), so it is gone
when the process restarts. Responses are checked against the discovery
documents ``google-api-python-client`` ships (tests/integration/test_sandbox_fidelity.py).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable

from flask import Flask

from integrations.sandbox_google.blueprint import KEY, bp
from integrations.sandbox_google.calendar import Notification
from integrations.sandbox_google.errors import CalendarApiError, MeetApiError, SandboxApiError
from integrations.sandbox_google.store import SandboxGoogle

__all__ = ["KEY", "CalendarApiError", "MeetApiError", "Notification", "SandboxApiError", "SandboxGoogle",
           "register_sandbox", "sandbox_of"]


def register_sandbox(app: Flask, clock: Callable[[], dt.datetime] | None = None) -> SandboxGoogle:
    """Serve the emulator from ``app``, with its state on ``app.extensions["sandbox_google"]``.

    ``clock`` is the app's (``Registry.now``): tests that move time move the conference records'
    times too. Without one the emulator keeps the wall clock.
    """
    for module in ("api", "room"):  # importing them adds their routes to the blueprint
        importlib.import_module(f"integrations.sandbox_google.{module}")

    sandbox = SandboxGoogle(clock or (lambda: dt.datetime.now(dt.timezone.utc)))
    app.extensions[KEY] = sandbox
    app.register_blueprint(bp)
    return sandbox


def sandbox_of(app: Flask) -> SandboxGoogle:
    """The emulator state ``app`` serves. Raises: KeyError when the app does not serve the sandbox."""
    sandbox: SandboxGoogle = app.extensions[KEY]
    return sandbox
