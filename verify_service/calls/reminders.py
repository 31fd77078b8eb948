"""Appointment reminders: ``verification.appointment.reminder`` before each booked call.

The account service sends the actual reminder (email, push) from the event;
we decide when: ``settings.reminder_minutes`` before the call (24 h and 15 min
by default), each once. The event's data says ``minutes_before``; it states
the call's time in UTC (``scheduled_for``) and, when the account's profile
names a time zone, in that zone too (``local_time``, ``time_zone`` in its
canonical name), so the reminder need not do its own conversion.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.models import Account
from verify_service.accounts.services import lock_account
from verify_service.accounts.restrictions import isoformat
from verify_service.accounts.zones import known_zone
from verify_service.calls.models import CallSession
from verify_service.calls.state import SessionStatus
from verify_service.db import UTCDateTime
from verify_service.settings import Settings
from verify_service.webhooks.outbox import enqueue_event

REMINDER_EVENT = "verification.appointment.reminder"


def _due_reminders(db: Session, minutes: list[int], *, now: dt.datetime, limit: int) -> list[tuple[str, str]]:
    """(call id, account id) of booked calls whose next reminder is due, soonest call first.

    "Due" is decided in SQL (the next reminder's deadline by ``reminders_sent``),
    so calls already reminded never crowd the due ones out of ``limit``.
    """
    deadline = sa.case(*[(CallSession.reminders_sent == index, sa.literal(now + dt.timedelta(minutes=m), UTCDateTime()))
                         for index, m in enumerate(minutes)], else_=sa.null())
    return [(row[0], row[1]) for row in db.execute(
        sa.select(CallSession.id, CallSession.account_id)
        .join(Account, Account.id == CallSession.account_id)
        .where(CallSession.status == SessionStatus.SCHEDULED, CallSession.scheduled_for > now,
               CallSession.reminders_sent < len(minutes), CallSession.scheduled_for <= deadline,
               Account.closed_at.is_(None))
        .order_by(CallSession.scheduled_for, CallSession.id).limit(limit))]


def _latest_due(call: CallSession, minutes: list[int], now: dt.datetime) -> int | None:
    """Index (in ``minutes``) of the latest reminder due now and not yet sent; None when none is."""
    if call.status is not SessionStatus.SCHEDULED or call.scheduled_for is None or call.scheduled_for <= now:
        return None
    left = call.scheduled_for - now
    due = [index for index in range(call.reminders_sent, len(minutes))
           if left <= dt.timedelta(minutes=minutes[index])]
    return due[-1] if due else None


def _session_data(call: CallSession, account: Account) -> dict[str, str | None]:
    """The booked call as the reminder states it: its time, and (when the profile names a zone) that zone's time."""
    assert call.scheduled_for is not None
    zone = known_zone(account.timezone)
    local = call.scheduled_for.astimezone(zone).isoformat() if zone is not None else None
    return {"id": call.id, "scheduled_for": isoformat(call.scheduled_for), "meet_uri": call.meet_uri,
            "time_zone": str(zone) if zone is not None else None, "local_time": local}


def send_due_reminders(db: Session, *, settings: Settings, now: dt.datetime, limit: int = 200) -> int:
    """Enqueue ``verification.appointment.reminder`` for booked calls whose next reminder is due.

    Reminders go ``settings.reminder_minutes`` before the call, each once; when
    several are due at once (a late booking) only the latest goes and the
    earlier ones count as sent. Each account is locked (its event ``seq``),
    then its call row, skipping rows another scheduler holds (PostgreSQL);
    everything is re-checked under the locks. Returns how many were enqueued.

    Raises nothing of its own; database errors propagate (the caller's unit of work rolls back).
    """
    minutes = sorted(set(settings.reminder_minutes), reverse=True)
    if not minutes:
        return 0
    sent = 0
    for call_id, account_id in _due_reminders(db, minutes, now=now, limit=limit):
        account = lock_account(db, account_id)  # lock order: account, then the session
        stmt = sa.select(CallSession).where(CallSession.id == call_id)
        if db.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        call = db.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
        index = None if call is None or account.closed_at is not None else _latest_due(call, minutes, now)
        if call is None or index is None:
            continue
        enqueue_event(db, account, REMINDER_EVENT, {"session": _session_data(call, account),
                                                    "minutes_before": minutes[index]}, now=now)
        call.reminders_sent = index + 1
        sent += 1
    db.flush()
    return sent
