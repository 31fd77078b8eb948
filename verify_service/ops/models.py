"""The scheduler heartbeat: which scheduler leads, and when it last ran each job.

``scheduler_heartbeats`` has one row per scheduler process (leader or standby),
written every few seconds by ``jobs/leader.py``; ``scheduler_job_runs`` has one
row per job id, written around every run by ``jobs/runner.py``. ``/readyz``
reads both.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.db import Base, UTCDateTime

LEADER = "leader"
STANDBY = "standby"


class SchedulerHeartbeat(Base):
    """One scheduler process; ``instance_id`` is ``host:pid:random``."""

    __tablename__ = "scheduler_heartbeats"
    __table_args__ = (sa.CheckConstraint("role IN ('leader', 'standby')", name="role"),)

    instance_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_beat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class SchedulerJobRun(Base):
    """The latest run of one job, whichever scheduler ran it."""

    __tablename__ = "scheduler_job_runs"

    job_id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    instance_id: Mapped[str] = mapped_column(sa.String(200))
    last_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_ok: Mapped[bool | None]
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
