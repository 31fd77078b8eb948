"""Scheduled calls: the meeting is created ahead of time and put on the host's calendar.

The calendar event's id is derived from the session id, so a retried insert
can never create a second event. Rescheduling moves the event; canceling
deletes it (both through ``calls/invites.py``, which keeps trying while
Google fails: the booking change itself always stands). The invite is sent
once the meeting exists (a queued meeting's invite follows when the queue
job creates it).
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetError, MeetGateway, calendar_event_id
from verify_service.accounts.models import Account
from verify_service.accounts.services import AccountClosed, lock_account
from verify_service.calls import invites, lifecycle
from verify_service.calls.invites import Pushed
from verify_service.calls.meetings import prepare_meeting
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import EndReason, SessionStatus
from verify_service.db import for_update, unit_of_work
from verify_service.errors import InvalidInput, NotFound
from verify_service.settings import Settings

log = logging.getLogger(__name__)


class CallSessionNotFound(NotFound):
    code = "call_session_not_found"
    title = "No such call session"


def schedule_call(sessions: sessionmaker[Session], gateway: MeetGateway, account_id: str, *,
                  start: dt.datetime, settings: Settings, now: dt.datetime,
                  reviewer_email: str | None = None) -> str:
    """Book a call at ``start``; returns the new session's id.

    Raises:
        InvalidInput: ``start`` is not in the future.
        AccountNotFound, AccountClosed; MeetConfigurationError.
    """
    if start <= now:
        raise InvalidInput.for_field("start", "must be in the future")
    with unit_of_work(sessions) as session:
        account = lock_account(session, account_id)
        if account.closed_at is not None:
            raise AccountClosed(f"account {account_id!r} is closed")
        call = CallSession(account_id=account_id, status=SessionStatus.SCHEDULED, scheduled_for=start,
                           created_at=now, updated_at=now)
        session.add(call)
        session.flush()
        call.calendar_event_id = calendar_event_id(call.id)
        call_id = call.id
    prepare_meeting(sessions, gateway, call_id, settings=settings, now=now)
    send_invite(sessions, gateway, call_id, settings=settings, now=now, reviewer_email=reviewer_email)
    return call_id


def send_invite(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                settings: Settings, now: dt.datetime, reviewer_email: str | None = None) -> bool:
    """Put the invite on the host's calendar once the meeting exists; returns whether it was sent.

    A Calendar failure is logged and leaves the invite unsent: the queue job
    (``send_pending_invites``) tries again. A session canceled while the
    insert ran gets its new event deleted (``calls/invites.py``).

    Raises nothing for Google's failures.
    """
    with unit_of_work(sessions, write=False) as session:
        call = session.get_one(CallSession, call_session_id)
        if (call.status is not SessionStatus.SCHEDULED or call.meet_status is not MeetingStatus.READY
                or call.invite_sent_at is not None or call.calendar_event_id is None or call.scheduled_for is None):
            return False
        email = session.scalar(sa.select(Account.email).where(Account.id == call.account_id))
        invite = invites.invite_for(call, email=email, reviewer_email=reviewer_email)
        host = call.meet_host or gateway.hosts[0]
    try:
        gateway.insert_invite(invite, host=host, send_updates=settings.calendar_send_updates)  # type: ignore[arg-type]
    except MeetError as exc:
        log.warning("the calendar invite of call session %s could not be sent: %s; will retry", call_session_id, exc)
        return False
    with unit_of_work(sessions) as session:
        call = session.execute(for_update(session, sa.select(CallSession).where(CallSession.id == call_session_id))
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
    with unit_of_work(sessions, write=False) as session:
        pending = list(session.scalars(sa.select(CallSession.id).where(
            CallSession.status == SessionStatus.SCHEDULED, CallSession.meet_status == MeetingStatus.READY,
            CallSession.invite_sent_at.is_(None)).limit(limit)))
    return sum(send_invite(sessions, gateway, call_id, settings=settings, now=now) for call_id in pending)


def _scheduled(session: Session, call_session_id: str) -> tuple[Account, CallSession]:
    """Lock the session's account, then the session. Raises: CallSessionNotFound."""
    account_id = session.scalar(sa.select(CallSession.account_id).where(CallSession.id == call_session_id))
    if account_id is None:
        raise CallSessionNotFound(f"no call session with id {call_session_id!r}")
    account = lock_account(session, account_id)
    call = session.execute(for_update(session, sa.select(CallSession).where(CallSession.id == call_session_id))
                           .execution_options(populate_existing=True)).scalar_one()
    return account, call


def move_booking(call: CallSession, start: dt.datetime, *, now: dt.datetime) -> None:
    """Move a locked, scheduled session to ``start``; its invite follows (reminders start over).

    Raises: InvalidInput (the call is no longer scheduled).
    """
    if call.status is not SessionStatus.SCHEDULED:
        raise InvalidInput.for_field("status", f"only a booked call can be moved (it is {call.status.value})")
    call.scheduled_for = start
    call.reminders_sent = 0
    call.updated_at = now
    if call.invite_sent_at is not None:
        invites.mark(call, lifecycle.INVITE_MOVE, now=now)


def reschedule_call(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                    start: dt.datetime, settings: Settings, now: dt.datetime) -> Pushed:
    """Move a scheduled call, then try once to move its invite (the job retries a failure).

    Returns how the invite fared (the move itself has been made).

    Raises: CallSessionNotFound, InvalidInput (not in the future, or not scheduled any more).
    """
    if start <= now:
        raise InvalidInput.for_field("start", "must be in the future")
    with unit_of_work(sessions) as session:
        _account, call = _scheduled(session, call_session_id)
        move_booking(call, start, now=now)
    return invites.push_invite(sessions, gateway, call_session_id, settings=settings, now=now)


def cancel_scheduled_call(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                          settings: Settings, now: dt.datetime, by: EndReason = EndReason.FREELANCER) -> Pushed:
    """Cancel a scheduled call (announced), then try once to delete its invite (the job retries a failure).

    Raises: CallSessionNotFound, InvalidInput (not scheduled any more).
    """
    with unit_of_work(sessions) as session:
        account, call = _scheduled(session, call_session_id)
        if call.status is not SessionStatus.SCHEDULED:
            raise InvalidInput.for_field("status", f"only a booked call can be canceled here (it is "
                                         f"{call.status.value})")
        lifecycle.cancel(session, account, call, by=by, now=now)
    return invites.push_invite(sessions, gateway, call_session_id, settings=settings, now=now)
