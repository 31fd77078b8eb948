"""A booked call's calendar invite: every move and deletion reaches Google, however long Google takes.

A booking change is a database change first: it stands the moment it
commits, whatever Calendar does. The change marks the session
(``invite_pending``: ``move`` or ``cancel``, see ``calls/lifecycle.py``) and
:func:`push_invite` brings the host's calendar in line — once straight
after the change, so the freelancer usually sees it done, and then from the
``repair_invites`` job with growing pauses until Google takes it:

* a move whose event was deleted on Google's side puts a new event up (a new
  id derived from the old one, so a retried insert never duplicates it);
* a deletion of an event that is already gone counts as done;
* once the booked time is past, an invite no longer matters and the
  attempts stop (logged).

Workflow (takes a sessionmaker: it calls Calendar between its units): no
transaction stays open while Google is called. A push holds a lease on
the session (``invite_retry_at``) while it calls, so two schedulers never
push one invite at once. A booking change made meanwhile resets the lease:
the push that finds its lease gone marks the booking as it is now to be
pushed again (the older call to Google may have landed after the newer one).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import re

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import CalendarInvite, MeetError, MeetGateway, MeetNotFound
from verify_service.accounts.models import Account
from verify_service.calls.lifecycle import INVITE_CANCEL, INVITE_MOVE
from verify_service.calls.models import CallSession
from verify_service.calls.state import SessionStatus
from verify_service.db import for_update, unit_of_work, workflow
from verify_service.settings import Settings

log = logging.getLogger(__name__)

CALL_LENGTH = dt.timedelta(minutes=30)
# While a push calls Google (a Calendar call with its retries takes well under a minute).
LEASE = dt.timedelta(minutes=5)
# The pause after each failed attempt; the last one repeats.
BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=15), dt.timedelta(hours=1))
_RECREATED = re.compile(r"^(?P<base>.+?)r(?P<n>\d+)$")


class Pushed(str, enum.Enum):
    DONE = "done"          # the calendar matches the booking (or nothing was pending)
    FAILED = "failed"      # Google refused or did not answer: the job tries again later
    BUSY = "busy"          # another run is pushing this invite right now
    GAVE_UP = "gave_up"    # the booked time is past: the invite no longer matters


def mark(call: CallSession, kind: str, *, now: dt.datetime) -> None:
    """Note a change Google must take (``move`` or ``cancel``), due at once; resets an earlier attempt count."""
    call.invite_pending = kind
    call.invite_attempts, call.invite_retry_at, call.invite_error = 0, now, None


def invite_for(call: CallSession, *, email: str | None, event_id: str | None = None) -> CalendarInvite:
    """The calendar event of a booked call: the Meet link, the time, the freelancer as the guest."""
    assert call.scheduled_for is not None
    return CalendarInvite(
        event_id=event_id or call.calendar_event_id or "",
        summary="Identity verification call",
        description=("Your identity verification video call. Join with Google Meet: "
                     f"{call.meet_uri}\nHave a government-issued photo ID at hand. "
                     "The call is in English and takes about 10 minutes."),
        start=call.scheduled_for, end=call.scheduled_for + CALL_LENGTH, meeting_uri=call.meet_uri or "",
        attendees=(email,) if email else ())


def recreated_id(event_id: str) -> str:
    """The id of the event that replaces ``event_id`` (vs…  →  vs…r1  →  vs…r2): base32hex, stable per step."""
    found = _RECREATED.match(event_id)
    if found and found["base"].startswith("vs") and len(found["base"]) == 34:
        return f"{found['base']}r{int(found['n']) + 1}"
    return f"{event_id}r1"


@dataclasses.dataclass(frozen=True)
class _Job:
    kind: str
    lease: dt.datetime
    event_id: str
    host: str
    invite: CalendarInvite | None  # for a move: the event as it should be


@workflow
def _lease(sessions: sessionmaker[Session], call_session_id: str, *, now: dt.datetime,
           settings: Settings) -> _Job | None | Pushed:
    """Take the push of this session's pending change; its job, None (nothing to do) or BUSY / GAVE_UP."""
    lease = now + LEASE
    with unit_of_work(sessions) as db:
        taken = db.execute(sa.update(CallSession).where(
            CallSession.id == call_session_id, CallSession.invite_pending.is_not(None),
            sa.or_(CallSession.invite_retry_at.is_(None), CallSession.invite_retry_at <= now))
            .values(invite_retry_at=lease).execution_options(synchronize_session=False)).rowcount == 1
        call = db.get_one(CallSession, call_session_id)
        if not taken:
            return Pushed.BUSY if call.invite_pending is not None else None
        if call.scheduled_for is None or call.scheduled_for + CALL_LENGTH <= now or not call.calendar_event_id:
            log.warning("gave up the calendar %s of call session %s: its time is past (last error: %s)",
                        call.invite_pending, call.id, call.invite_error)
            call.invite_pending, call.invite_retry_at = None, None
            return Pushed.GAVE_UP
        email = db.scalar(sa.select(Account.email).where(Account.id == call.account_id))
        host = call.meet_host or ""
        invite = invite_for(call, email=email) if call.invite_pending == INVITE_MOVE else None
        return _Job(call.invite_pending or "", lease, call.calendar_event_id, host, invite)


@workflow
def _settle(sessions: sessionmaker[Session], call_session_id: str, job: _Job, *, error: str | None,
            now: dt.datetime, event_id: str | None = None) -> None:
    """Record the push: done (unless a newer change came meanwhile) or failed (the next try scheduled)."""
    with unit_of_work(sessions) as db:
        call = db.execute(for_update(db, sa.select(CallSession).where(CallSession.id == call_session_id))
                               .execution_options(populate_existing=True)).scalar_one()
        if event_id is not None:
            call.calendar_event_id = event_id
        if call.invite_retry_at != job.lease:
            # A booking change came while this push was with Google, and its own push may have finished
            # first: this one may have landed last, with the older state. Push the booking as it is now.
            mark(call, INVITE_MOVE if call.status is SessionStatus.SCHEDULED else INVITE_CANCEL, now=now)
            return
        if error is None:
            call.invite_pending, call.invite_retry_at, call.invite_error, call.invite_attempts = None, None, None, 0
            return
        call.invite_attempts += 1
        call.invite_retry_at = now + BACKOFF[min(call.invite_attempts, len(BACKOFF)) - 1]
        call.invite_error = error[:500]


@workflow
def _still_booked(sessions: sessionmaker[Session], call_session_id: str) -> bool:
    with unit_of_work(sessions, write=False) as db:
        return db.scalar(sa.select(CallSession.status).where(CallSession.id == call_session_id)) \
            is SessionStatus.SCHEDULED


@workflow
def push_invite(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                settings: Settings, now: dt.datetime) -> Pushed:
    """Try once to bring the host's calendar in line with the session's pending change.

    Fails open for the booking (it already stands) and closed for the
    calendar: a failure is recorded and retried by the job.

    Raises nothing for Google's failures (``MeetError``).
    """
    job = _lease(sessions, call_session_id, now=now, settings=settings)
    if job is None:
        return Pushed.DONE
    if isinstance(job, Pushed):
        return job
    send = settings.calendar_send_updates
    new_id = None
    try:
        if job.kind == INVITE_CANCEL:
            gateway.cancel_invite(job.event_id, host=job.host, send_updates=send)  # type: ignore[arg-type]
        else:
            assert job.invite is not None
            try:
                gateway.move_invite(job.event_id, job.invite.start, job.invite.end, host=job.host,
                                    send_updates=send)  # type: ignore[arg-type]
            except MeetNotFound:
                if not _still_booked(sessions, call_session_id):
                    raise  # canceled meanwhile: nothing to put back (the cancel's own push follows)
                # Deleted on Google's side (by the host, or an admin): put the invite up again.
                new_id = recreated_id(job.event_id)
                log.warning("calendar event %s of call session %s is gone; creating %s", job.event_id,
                            call_session_id, new_id)
                gateway.insert_invite(dataclasses.replace(job.invite, event_id=new_id), host=job.host,
                                      send_updates=send)  # type: ignore[arg-type]
    except MeetError as exc:
        log.warning("calendar %s of call session %s failed: %s; will retry", job.kind, call_session_id, exc)
        _settle(sessions, call_session_id, job, error=str(exc), now=now)
        return Pushed.FAILED
    _settle(sessions, call_session_id, job, error=None, now=now, event_id=new_id)
    return Pushed.DONE


@workflow
def repair_invites(sessions: sessionmaker[Session], gateway: MeetGateway, *, settings: Settings,
                   now: dt.datetime, limit: int = 50) -> dict[Pushed, int]:
    """Push the pending calendar changes that are due, oldest first; how many ended each way."""
    with unit_of_work(sessions, write=False) as db:
        due = list(db.scalars(sa.select(CallSession.id).where(
            CallSession.invite_pending.is_not(None),
            sa.or_(CallSession.invite_retry_at.is_(None), CallSession.invite_retry_at <= now))
            .order_by(CallSession.invite_retry_at, CallSession.id).limit(limit)))
    counts: dict[Pushed, int] = {}
    for call_session_id in due:
        result = push_invite(sessions, gateway, call_session_id, settings=settings, now=now)
        counts[result] = counts.get(result, 0) + 1
    return counts
