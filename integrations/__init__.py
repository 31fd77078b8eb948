"""Adapters to the outside world, each behind a small interface with a sandbox twin.

Planned here (DESIGN §2): ``google_meet`` (Meet REST v2 + Calendar v3),
``account_service`` (outbound webhook sender), ``release_sources`` (browser and
OS release data) and the sandbox emulators used by the embedded default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.google_meet import MeetConfigurationError, MeetGateway
from integrations.sandbox_meet import SandboxMeetGateway

if TYPE_CHECKING:
    from verify_service.settings import Settings


def make_meet_gateway(settings: Settings) -> MeetGateway:
    """The Meet gateway ``settings.meet_backend`` names.

    Raises:
        MeetConfigurationError: the backend is not available.
    """
    if settings.meet_backend == "sandbox":
        return SandboxMeetGateway()
    if settings.meet_backend == "google":
        # The Google adapter arrives with a later issue; until then say so
        # rather than pretend (a stub would swallow every call).
        raise MeetConfigurationError("the Google Meet backend is not available yet")
    raise MeetConfigurationError(f"unknown Meet backend {settings.meet_backend!r}")
