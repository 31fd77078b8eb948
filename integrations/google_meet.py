"""The Google Meet interface the service talks to (DESIGN §2).

Only the interface lives here for now: :class:`MeetGateway` and its errors.
A later issue adds the real adapter (Meet REST v2 + Calendar v3, with
``VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE`` and ``VERIFY_MEET_HOST_USERS``) to this
module, together with the methods it needs for creating meetings.
:mod:`integrations.sandbox_meet` is the in-memory twin used by the embedded
default and the tests.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class MeetError(Exception):
    """A Meet operation failed; callers log it and try again on a later run."""


class MeetConfigurationError(MeetError):
    """The Meet backend cannot work as configured; retrying will not help until the configuration changes."""


@runtime_checkable
class MeetGateway(Protocol):
    def end_active_conference(self, space_name: str) -> None:
        """End the live conference in ``space_name`` (``spaces/{id}``), disconnecting everyone.

        Returns normally when nothing is active in the space or the space is
        gone: either way no conference is running, which is what the caller wants.

        Raises:
            MeetError: any other failure (``MeetConfigurationError`` when the
                backend is not usable at all).
        """
        ...
