"""One app's emulator state: Meet, Calendar and Workspace Events (with its Pub/Sub push), each behind its own lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from integrations.sandbox_google.calendar import Notification, SandboxCalendar
from integrations.sandbox_google.events import SandboxEvents
from integrations.sandbox_google.meet import SandboxMeet
from integrations.sandbox_google.push import PushConfig, PushDelivery
from integrations.sandbox_google.shapes import RoomView
from verify_service.settings import SANDBOX_HOST_USERS


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class SandboxGoogle:
    """The in-memory Google the sandbox serves; safe to share between threads.

    ``meet``, ``calendar`` and ``events`` (Workspace Events) answer the emulated
    HTTP APIs; ``push`` delivers the events to the service as Pub/Sub would
    (``push_config``; ``None``: events off, nothing is pushed). Tests (and the
    meeting room page) put people in meetings with :meth:`join` and
    :meth:`leave`, and read :attr:`notifications` for the invitation emails
    Google would have sent. ``hosts`` are the host users a subscription may target.
    """

    def __init__(self, clock: Callable[[], dt.datetime] = _utcnow, *, hosts: Sequence[str] = SANDBOX_HOST_USERS,
                 push_config: PushConfig | None = None) -> None:
        self.push = PushDelivery(push_config, clock)
        self.events = SandboxEvents(clock, hosts, self.push.publish)
        self.meet = SandboxMeet(clock, self.events.publish_meet)
        self.calendar = SandboxCalendar(clock)

    def join(self, meeting_code: str, *, email: str | None = None, display_name: str,
             signed_in: bool = True, label: str | None = None) -> str:
        """Someone joins the meeting ``meeting_code``; returns the participant's name.

        Starts a conference when none is live. A signed-in person needs an
        ``email`` (it becomes a stable ``users/{id}``); anonymous people are
        known by their display name.

        Raises:
            MeetApiError: NOT_FOUND for an unknown meeting code.
            ValueError: no display name, or a signed-in join without an email.
        """
        return self.meet.join(meeting_code, email=email, display_name=display_name,
                              signed_in=signed_in, label=label)

    def leave(self, participant_name: str) -> None:
        """The participant leaves (every open session ends); the last one out ends the conference.

        Raises:
            MeetApiError: NOT_FOUND for an unknown participant.
        """
        self.meet.leave(participant_name)

    def room(self, meeting_code: str) -> RoomView | None:
        """What the meeting room page shows, or ``None`` for an unknown code."""
        return self.meet.room(meeting_code)

    @property
    def notifications(self) -> list[Notification]:
        """The calendar emails Google would have sent, oldest first."""
        return self.calendar.notifications
