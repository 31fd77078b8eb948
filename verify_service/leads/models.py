"""Weekly recurring reviewer shifts (what leads plan); ``leads/shifts.py`` turns them into ReviewerShift rows."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.db import Base, UTCDateTime


class RecurringShift(Base):
    """Every week on ``weekday`` from ``start_time`` to ``end_time``, wall-clock time in ``time_zone``.

    An ``end_time`` at or before ``start_time`` ends on the next day (a night
    shift). Times are local on purpose: a 09:00 shift in Europe/Berlin stays
    at 09:00 local across the DST changes, so its UTC instants move.
    """

    __tablename__ = "recurring_shifts"
    __table_args__ = (
        sa.CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        sa.CheckConstraint("end_time <> start_time", name="not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("reviewers.id"), index=True)
    weekday: Mapped[int]  # 0 = Monday … 6 = Sunday (datetime.date.weekday)
    start_time: Mapped[dt.time] = mapped_column(sa.Time())
    end_time: Mapped[dt.time] = mapped_column(sa.Time())
    time_zone: Mapped[str] = mapped_column(sa.String(64))  # IANA name, e.g. Europe/Berlin
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
