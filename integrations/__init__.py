"""Adapters to the outside world, each behind a small interface with a sandbox twin.

Planned here (DESIGN §2): ``google_meet`` (Meet REST v2 + Calendar v3),
``account_service`` (outbound webhook sender), ``release_sources`` (browser and
OS release data) and the sandbox emulators used by the embedded default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.google_meet import MeetConfigurationError, MeetGateway

if TYPE_CHECKING:
    from verify_service.settings import Settings

# The same defaults settings.finalize() fills in, for settings built without it (tests).
SANDBOX_HOSTS = ("host-1@sandbox.example", "host-2@sandbox.example")


def make_meet_gateway(settings: Settings) -> MeetGateway:
    """The Meet gateway ``settings.meet_backend`` names: the Google adapter, pointed at Google or the sandbox.

    Nothing is sent until the first call.

    Raises:
        MeetConfigurationError: the backend is unknown, or Google's credentials or host users are missing.
    """
    from integrations.google_meet_adapter import (
        GoogleMeetGateway,
        anonymous_credentials,
        service_account_credentials,
    )

    if settings.meet_backend == "sandbox":
        # The emulator (integrations/sandbox_google.py) is served by this app; it takes no credentials.
        return GoogleMeetGateway(
            settings.meet_host_users or SANDBOX_HOSTS, anonymous_credentials(),
            meet_endpoint=settings.meet_api_endpoint or f"{settings.base_url}/sandbox/google/meet/",
            calendar_endpoint=settings.calendar_api_endpoint or f"{settings.base_url}/sandbox/google/calendar/v3/")
    if settings.meet_backend == "google":
        if not settings.google_service_account_file:
            raise MeetConfigurationError(
                "VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE is not set: the Google Meet backend needs a service-account "
                "key with domain-wide delegation")
        if not settings.meet_host_users:
            raise MeetConfigurationError("VERIFY_MEET_HOST_USERS must name at least one Workspace user "
                                         "for the Google Meet backend")
        return GoogleMeetGateway(settings.meet_host_users,
                                 service_account_credentials(settings.google_service_account_file),
                                 meet_endpoint=settings.meet_api_endpoint,
                                 calendar_endpoint=settings.calendar_api_endpoint)
    raise MeetConfigurationError(f"unknown Meet backend {settings.meet_backend!r}")
