"""The calls' gauges on ``/metrics``: who waits for a reviewer, and how the Meet hosts and quota stand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client.core import Metric

from verify_service.calls.meetings import WINDOW
from verify_service.calls.models import CallSession, MeetHost, MeetSpaceCreation
from verify_service.calls.state import SessionStatus
from verify_service.observability.metrics import GaugeReader, age_seconds, gauge


def session_gauges(connection: sa.Connection, now: dt.datetime) -> Iterable[Metric]:
    since = sa.func.coalesce(CallSession.meet_ready_at, CallSession.created_at)
    count, oldest = connection.execute(
        sa.select(sa.func.count(), sa.func.min(since)).where(CallSession.status == SessionStatus.WAITING)).one()
    yield gauge("verify_waiting_sessions", "Call sessions waiting for a reviewer.", count)
    yield gauge("verify_oldest_wait_seconds", "How long the longest-waiting freelancer has waited.",
                age_seconds(oldest, now))


def meet_gauges(project_budget: int) -> GaugeReader:
    """The Meet gauges, with the quota used as a share of ``project_budget`` spaces a minute."""

    def read(connection: sa.Connection, now: dt.datetime) -> Iterable[Metric]:
        saturated = connection.scalar(sa.select(sa.func.count()).select_from(MeetHost)
                                      .where(MeetHost.saturated_until > now))
        created = connection.scalar(sa.select(sa.func.count()).select_from(MeetSpaceCreation)
                                    .where(MeetSpaceCreation.created_at > now - WINDOW))
        yield gauge("verify_meet_hosts_saturated", "Meet host users resting after a rate limit (429).", saturated)
        yield gauge("verify_meet_quota_used_ratio",
                    "Meet spaces created in the last minute, as a share of the project's per-minute budget.",
                    (created or 0) / project_budget if project_budget else 0)

    return read
