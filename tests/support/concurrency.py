"""Running test tasks at the same moment, to race them against each other."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def run_together(tasks: list[Callable[[], object]]) -> list[object]:
    """Start every task at the same moment (a barrier); their results or exceptions, in order."""
    barrier = threading.Barrier(len(tasks))

    def run(task: Callable[[], object]) -> object:
        barrier.wait()
        try:
            return task()
        except Exception as exc:  # collected and asserted on by the caller
            return exc

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        return list(pool.map(run, tasks))
