"""Reading PostgreSQL plans (EXPLAIN text) in tests and benchmarks."""

from __future__ import annotations

import itertools


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def scans_in_order(plan: str, index: str) -> bool:
    """Whether the rows under the plan's first Limit come from ``index`` in its order: no Sort under the Limit.

    Above the Limit the planner may still sort the few rows the limit let through.
    """
    lines = plan.splitlines()
    start = next((n for n, line in enumerate(lines) if "Limit" in line), None)
    if start is None:
        return False
    below = list(itertools.takewhile(lambda line: _indent(line) > _indent(lines[start]), lines[start + 1:]))
    return any(f"using {index} " in line for line in below) and not any("Sort" in line for line in below)
