"""Scheduled calls: the meeting is created ahead of time and put on the host's calendar.

The calendar event's id is derived from the session id, so a retried insert
can never create a second event. Rescheduling moves the event; canceling
deletes it. The invite is sent once the meeting exists (a queued meeting's
invite follows when the queue job creates it).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import CalendarInvite, MeetGateway, calendar_event_id
from verify_service.accounts.models import Account
from verify_service.accounts.services import AccountClosed, lock_account
from verify_service.calls.meetings import prepare_meeting
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus, transition
from verify_service.db import for_update, unit_of_work
from verify_service.errors import InvalidInput, NotFound
from verify_service.settings import Settings

CALL_LENGTH = dt.timedelta(minutes=30)


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
    """Put the invite on the host's calendar once the meeting exists; returns whether it was sent."""
    with unit_of_work(sessions, write=False) as session:
        call = session.get_one(CallSession, call_session_id)
        if (call.status is not SessionStatus.SCHEDULED or call.meet_status is not MeetingStatus.READY
                or call.invite_sent_at is not None or call.calendar_event_id is None or call.scheduled_for is None):
            return False
        email = session.scalar(sa.select(Account.email).where(Account.id == call.account_id))
        invite = CalendarInvite(
            event_id=call.calendar_event_id,
            summary="Identity verification call",
            description=("Your identity verification video call. Join with Google Meet: "
                         f"{call.meet_uri}\nHave a government-issued photo ID at hand. "
                         "The call is in English and usually takes under 10 minutes."),
            start=call.scheduled_for, end=call.scheduled_for + CALL_LENGTH, meeting_uri=call.meet_uri or "",
            attendees=tuple(e for e in (email, reviewer_email) if e))
        host = call.meet_host or gateway.hosts[0]
    gateway.insert_invite(invite, host=host, send_updates=settings.calendar_send_updates)  # type: ignore[arg-type]
    with unit_of_work(sessions) as session:
        session.get_one(CallSession, call_session_id).invite_sent_at = now
    return True


def send_pending_invites(sessions: sessionmaker[Session], gateway: MeetGateway, *, settings: Settings,
                         now: dt.datetime, limit: int = 100) -> int:
    """Invites of scheduled calls whose meeting became ready after a wait in the queue."""
    with unit_of_work(sessions, write=False) as session:
        pending = list(session.scalars(sa.select(CallSession.id).where(
            CallSession.status == SessionStatus.SCHEDULED, CallSession.meet_status == MeetingStatus.READY,
            CallSession.invite_sent_at.is_(None)).limit(limit)))
    return sum(send_invite(sessions, gateway, call_id, settings=settings, now=now) for call_id in pending)


def _scheduled(session: Session, call_session_id: str) -> CallSession:
    call = session.execute(for_update(session, sa.select(CallSession).where(CallSession.id == call_session_id))
                           ).scalar_one_or_none()
    if call is None:
        raise CallSessionNotFound(f"no call session with id {call_session_id!r}")
    return call


def reschedule_call(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                    start: dt.datetime, settings: Settings, now: dt.datetime) -> None:
    """Move a scheduled call (and its invite).

    Raises: CallSessionNotFound, InvalidInput, IllegalTransition (not scheduled any more).
    """
    if start <= now:
        raise InvalidInput.for_field("start", "must be in the future")
    with unit_of_work(sessions) as session:
        call = _scheduled(session, call_session_id)
        if call.status is not SessionStatus.SCHEDULED:
            raise InvalidInput.for_field("status", f"only a scheduled call can be moved (it is {call.status.value})")
        call.scheduled_for = start
        call.updated_at = now
        event_id, host, invited = call.calendar_event_id, call.meet_host, call.invite_sent_at is not None
    if invited and event_id and host:
        gateway.move_invite(event_id, start, start + CALL_LENGTH, host=host,
                            send_updates=settings.calendar_send_updates)  # type: ignore[arg-type]


def cancel_scheduled_call(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                          settings: Settings, now: dt.datetime) -> None:
    """Cancel a scheduled call and delete its invite. Raises: CallSessionNotFound, IllegalTransition."""
    with unit_of_work(sessions) as session:
        call = _scheduled(session, call_session_id)
        transition(call, SessionStatus.CANCELED, now=now)
        event_id, host, invited = call.calendar_event_id, call.meet_host, call.invite_sent_at is not None
    if invited and event_id and host:
        gateway.cancel_invite(event_id, host=host, send_updates=settings.calendar_send_updates)  # type: ignore[arg-type]
