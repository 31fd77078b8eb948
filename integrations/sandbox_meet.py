"""An in-memory Meet for the embedded default and the tests (implements :class:`MeetGateway`)."""

from __future__ import annotations

import threading

from integrations.google_meet import MeetError


class SandboxMeetGateway:
    """Keeps live conferences in memory; safe to share between threads.

    Tests start conferences with :meth:`start_conference`, make the next calls
    fail with :meth:`fail_next`, and read :attr:`ended` to see what was ended.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[str] = set()
        self._ended: list[str] = []
        self._failures: list[MeetError] = []

    # ------------------------------------------------------------ the gateway

    def end_active_conference(self, space_name: str) -> None:
        """End the live conference in ``space_name``; nothing live (or no such space) is not an error.

        Raises:
            MeetError: a failure injected with :meth:`fail_next`.
        """
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
            if space_name in self._live:
                self._live.remove(space_name)
                self._ended.append(space_name)

    # ------------------------------------------------------------ for tests and the sandbox UI

    def start_conference(self, space_name: str) -> None:
        """Someone joined ``space_name``: its conference is live until ended."""
        with self._lock:
            self._live.add(space_name)

    def is_live(self, space_name: str) -> bool:
        with self._lock:
            return space_name in self._live

    @property
    def ended(self) -> list[str]:
        """Spaces whose live conference this gateway ended, in order."""
        with self._lock:
            return list(self._ended)

    def fail_next(self, error: MeetError | None = None, *, times: int = 1) -> None:
        """Make the next ``times`` calls raise ``error`` (a plain :class:`MeetError` by default)."""
        with self._lock:
            self._failures.extend([error or MeetError("sandbox: injected failure")] * times)
