"""Booked calls on the host's calendar: the invite is sent once the meeting exists.

A booking (``calls/booking.py``) creates its meeting ahead of time; a queued
meeting's invite follows when the queue job creates it. The calendar event's
id is derived from the session id, so a retried insert can never create a
second event. Moving a booking moves the event and canceling deletes it
(both through ``calls/invites.py``, which keeps trying while Google fails:
the booking change itself always stands).
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetError, MeetGateway
from verify_service.accounts.models import Account
from verify_service.calls import invites, lifecycle
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.db import for_update, unit_of_work
from verify_service.settings import Settings

log = logging.getLogger(__name__)


def send_invite(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                settings: Settings, now: dt.datetime) -> bool:
    """Put the invite on the host's calendar once the meeting exists; returns whether it was sent.

    A Calendar failure is logged and leaves the invite unsent: the queue job
    (``send_pending_invites``) tries again. A session canceled while the
    insert ran gets its new event deleted (``calls/invites.py``).

    Raises nothing for Google's failures.
    """
    with unit_of_work(sessions, write=False) as db:
        call = db.get_one(CallSession, call_session_id)
        if (call.status is not SessionStatus.SCHEDULED or call.meet_status is not MeetingStatus.READY
                or call.invite_sent_at is not None or call.calendar_event_id is None or call.scheduled_for is None):
            return False
        email = db.scalar(sa.select(Account.email).where(Account.id == call.account_id))
        invite = invites.invite_for(call, email=email)
        host = call.meet_host or gateway.hosts[0]
    try:
        gateway.insert_invite(invite, host=host, send_updates=settings.calendar_send_updates)  # type: ignore[arg-type]
    except MeetError as exc:
        log.warning("the calendar invite of call session %s could not be sent: %s; will retry", call_session_id, exc)
        return False
    with unit_of_work(sessions) as db:
        call = db.execute(for_update(db, sa.select(CallSession).where(CallSession.id == call_session_id))
                               .execution_options(populate_existing=True)).scalar_one()
        call.invite_sent_at = now
        if call.status is not SessionStatus.SCHEDULED or call.scheduled_for != invite.start:
            # Canceled or moved while the insert ran: the calendar must follow the booking as it is now.
            invites.mark(call, lifecycle.INVITE_CANCEL if call.status is not SessionStatus.SCHEDULED
                         else lifecycle.INVITE_MOVE, now=now)
    return True


def send_pending_invites(sessions: sessionmaker[Session], gateway: MeetGateway, *, settings: Settings,
                         now: dt.datetime, limit: int = 100) -> int:
    """Invites of scheduled calls whose meeting became ready after a wait in the queue."""
    with unit_of_work(sessions, write=False) as db:
        pending = list(db.scalars(sa.select(CallSession.id).where(
            CallSession.status == SessionStatus.SCHEDULED, CallSession.meet_status == MeetingStatus.READY,
            CallSession.invite_sent_at.is_(None)).limit(limit)))
    return sum(send_invite(sessions, gateway, call_id, settings=settings, now=now) for call_id in pending)
