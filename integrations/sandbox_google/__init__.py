"""A local emulator of the Google Meet REST v2, Calendar v3 and Workspace Events v1 subset the service uses.

With ``VERIFY_MEET_BACKEND=sandbox`` the app serves it itself (see
:func:`register_sandbox`) and the real :class:`~integrations.google_meet.GoogleMeetGateway`
and :class:`~integrations.meet_events_adapter.GoogleMeetEventsGateway` talk to it over HTTP
through ``VERIFY_MEET_API_ENDPOINT`` / ``VERIFY_CALENDAR_API_ENDPOINT`` /
``VERIFY_MEET_EVENTS_API_ENDPOINT``, with sandbox credentials that name the host user:

* ``/sandbox/google/meet/v2/…`` — spaces (create, get, patch,
  ``:endActiveConference``), members, conference records, participants,
  participant sessions;
* ``/sandbox/google/calendar/v3/calendars/{calendarId}/events…`` — insert,
  get, patch, delete;
* ``/sandbox/google/workspaceevents/v1/…`` — subscriptions (create, get, list,
  patch, ``:reactivate``, delete) and operations; ``/sandbox/google/oauth2/v3/userinfo``
  (a host's id) and ``/sandbox/google/oauth2/v1/certs`` (what its push tokens verify with);
* ``/sandbox/meet/{meetingCode}`` — the sandbox meeting room a ``meetingUri``
  opens: people join and leave there, which makes the conference records the
  attendance job reads, and the events the sandbox pushes to the service
  (:mod:`.push`) when events are on. No real Google Meet is involved, and every page says so.

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
from integrations.sandbox_google.push import PushConfig, certs, sign_push_token
from integrations.sandbox_google.store import SandboxGoogle
from verify_service.settings import MEET_EVENTS_PATH, SANDBOX_HOST_USERS, Settings, with_sandbox_defaults

__all__ = ["KEY", "CalendarApiError", "MeetApiError", "Notification", "SandboxApiError", "SandboxGoogle",
           "certs", "push_config", "register_sandbox", "sandbox_of", "sign_push_token"]


def push_config(settings: Settings) -> PushConfig | None:
    """Where the sandbox pushes Meet events for ``settings``, or ``None`` when events are off."""
    if not settings.meet_events:
        return None
    settings = with_sandbox_defaults(settings)
    return PushConfig(topic=settings.meet_events_topic, url=settings.base_url + MEET_EVENTS_PATH,
                      audience=settings.meet_events_audience, account=settings.meet_events_push_account)


def register_sandbox(app: Flask, clock: Callable[[], dt.datetime] | None = None,
                     settings: Settings | None = None) -> SandboxGoogle:
    """Serve the emulator from ``app``, with its state on ``app.extensions["sandbox_google"]``.

    ``clock`` is the app's (``Registry.now``): tests that move time move the conference records'
    times too. Without one the emulator keeps the wall clock. ``settings`` (the app's) name the
    host users and where the Meet events are pushed; without them nothing is pushed.
    """
    for module in ("api", "events_api", "room"):  # importing them adds their routes to the blueprint
        importlib.import_module(f"integrations.sandbox_google.{module}")

    hosts = with_sandbox_defaults(settings).meet_host_users if settings else SANDBOX_HOST_USERS
    sandbox = SandboxGoogle(clock or (lambda: dt.datetime.now(dt.timezone.utc)), hosts=hosts,
                            push_config=push_config(settings) if settings else None)
    app.extensions[KEY] = sandbox
    app.register_blueprint(bp)
    return sandbox


def sandbox_of(app: Flask) -> SandboxGoogle:
    """The emulator state ``app`` serves. Raises: KeyError when the app does not serve the sandbox."""
    sandbox: SandboxGoogle = app.extensions[KEY]
    return sandbox
