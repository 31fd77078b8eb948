"""Adapters to the outside world, each behind a small interface with a sandbox twin.

* ``google_meet`` — the :class:`MeetGateway` protocol, its types and errors;
  ``google_meet_adapter`` is the real client (Meet REST v2 + Calendar v3) and
  ``google_credentials`` says whom it acts as; ``sandbox_google/`` is the
  in-process Meet and Calendar emulator with its meeting room, which the same
  client talks to over HTTP in sandbox mode. :func:`make_meet_gateway` picks
  the backend from the settings.
* ``meet_events`` — the :class:`MeetEventsGateway` protocol (Workspace Events
  subscriptions) and the push wire format; ``meet_events_adapter`` is the real
  client, which the sandbox's Workspace Events API answers in sandbox mode;
  ``google_api`` is what both Google adapters share. :func:`make_meet_events_gateway`.
* ``mail`` — the :class:`~integrations.mail.Mailer` interface and its SMTP adapter;
  ``sandbox_mail`` keeps messages in the database when no SMTP server is set.
* ``account_service`` — the outbound webhook sender (Standard Webhooks over HTTP).
* ``release_sources`` — public browser and OS release data for the release catalog.

This package knows nothing of the features: it may use the core
(``verify_service.settings``, ``verify_service.db``) and nothing above it
(docs/architecture.md, 'Layers and packages').
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.google_meet import MeetConfigurationError, MeetGateway

if TYPE_CHECKING:
    from integrations.google_credentials import CredentialsFor
    from integrations.meet_events import MeetEventsGateway
    from verify_service.settings import Settings


def make_meet_gateway(settings: Settings) -> MeetGateway:
    """The Meet gateway ``settings.meet_backend`` names: the Google adapter, pointed at Google or the sandbox.

    Nothing is sent until the first call.

    Raises:
        MeetConfigurationError: the backend is unknown, or Google's credentials or host users are missing.
    """
    from integrations.google_credentials import sandbox_credentials
    from integrations.google_meet_adapter import GoogleMeetGateway
    from integrations.meet_events_adapter import events_scopes
    from verify_service.settings import with_sandbox_defaults

    if settings.meet_backend == "sandbox":
        # The emulator (integrations/sandbox_google/) is served by this app; the credentials name the host.
        # Settings built without finalize() (tests) get its endpoints and hosts here.
        sandbox = with_sandbox_defaults(settings)
        return GoogleMeetGateway(sandbox.meet_host_users, sandbox_credentials(),
                                 meet_endpoint=sandbox.meet_api_endpoint,
                                 calendar_endpoint=sandbox.calendar_api_endpoint)
    credentials = _google_credentials(settings)
    return GoogleMeetGateway(settings.meet_host_users, credentials,
                             meet_endpoint=settings.meet_api_endpoint,
                             calendar_endpoint=settings.calendar_api_endpoint,
                             delegated_scopes=events_scopes() if settings.meet_events else ())


def make_meet_events_gateway(settings: Settings) -> MeetEventsGateway | None:
    """The Workspace Events gateway for the Meet backend, or ``None`` when events are off (no topic).

    Nothing is sent until the first call.

    Raises:
        MeetConfigurationError: as :func:`make_meet_gateway`.
    """
    from integrations.google_credentials import sandbox_credentials
    from integrations.meet_events_adapter import GOOGLE_USERINFO, GoogleMeetEventsGateway
    from verify_service.settings import with_sandbox_defaults

    if not settings.meet_events:
        return None
    if settings.meet_backend == "sandbox":
        sandbox = with_sandbox_defaults(settings)
        return GoogleMeetEventsGateway(sandbox_credentials(), endpoint=sandbox.meet_events_api_endpoint,
                                       userinfo_endpoint=sandbox.meet_userinfo_endpoint)
    return GoogleMeetEventsGateway(_google_credentials(settings), endpoint=settings.meet_events_api_endpoint,
                                   userinfo_endpoint=settings.meet_userinfo_endpoint or GOOGLE_USERINFO)


def _google_credentials(settings: Settings) -> CredentialsFor:
    """The service account's credentials for the host users. Raises: MeetConfigurationError."""
    from integrations.google_credentials import service_account_credentials

    if settings.meet_backend != "google":
        raise MeetConfigurationError(f"unknown Meet backend {settings.meet_backend!r}")
    if not settings.google_service_account_file:
        raise MeetConfigurationError(
            "VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE is not set: the Google Meet backend needs a service-account "
            "key with domain-wide delegation")
    if not settings.meet_host_users:
        raise MeetConfigurationError("VERIFY_MEET_HOST_USERS must name at least one Workspace user "
                                     "for the Google Meet backend")
    return service_account_credentials(settings.google_service_account_file)
