"""Meet API reads, counted per host user: the quota Google counts (README, "Quota model").

Google allows 600 read requests per minute per user and 6,000 per project (the settings
``VERIFY_MEET_READ_QUOTA_PER_USER`` / ``_PER_PROJECT`` for a raised quota). The Meet adapter calls
:func:`note_read` for every read it sends (a list page, a get); ``/metrics`` exposes the total as a
counter and the last minute's reads, per host and in all, beside the quota.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from prometheus_client import Counter

READS = Counter("verify_meet_read_calls_total", "Meet API read requests sent, by host user and method",
                ["host", "method"])
WINDOW_SECONDS = 60.0


class ReadWindow:
    """The reads of the last minute, per host (this process's; each process serves its own /metrics)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._reads: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)

    def note(self, host: str) -> None:
        now = self._clock()
        with self._lock:
            reads = self._reads[host]
            reads.append(now)
            self._trim(reads, now)

    def per_minute(self) -> dict[str, int]:
        """Reads in the last 60 seconds, by host."""
        now = self._clock()
        with self._lock:
            for reads in self._reads.values():
                self._trim(reads, now)
            return {host: len(reads) for host, reads in self._reads.items() if reads}

    @staticmethod
    def _trim(reads: collections.deque[float], now: float) -> None:
        while reads and reads[0] <= now - WINDOW_SECONDS:
            reads.popleft()


WINDOW = ReadWindow()


def note_read(host: str, method: str) -> None:
    """One Meet API read request sent as ``host`` (``method``: e.g. ``conferenceRecords.list``)."""
    READS.labels(host=host, method=method).inc()
    WINDOW.note(host)
