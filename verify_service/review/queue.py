"""What the dashboard reads: the queue, "my sessions", one session's page, the second reviews.

Read-only queries; the decisions live in :mod:`verify_service.review.decisions`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.models import Account
from verify_service.calls.errors import CallSessionNotFound
from verify_service.calls.models import CallParticipant, CallSession, MeetingStatus, OutcomeRecord
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.errors import Forbidden
from verify_service.review.decisions import APPOINTMENT_LEAD
from verify_service.review.identity import matching_accounts
from verify_service.review.models import IdentityDocument
from verify_service.staff.models import Reviewer, Role
from verify_service.support.classify import Verdict
from verify_service.support.describe import describe_client, describe_stored

# A wait longer than this gets a badge in the queue.
LONG_WAIT = dt.timedelta(minutes=5)
QUEUE_LIMIT = 200
SECOND_REVIEWS_LIMIT = 50
MINE_DAYS = 14


class NotYourSession(Forbidden):
    code = "not_your_session"
    title = "This session is not yours"


@dataclasses.dataclass(frozen=True)
class QueueRow:
    call_id: str
    status: str
    waiting_since: dt.datetime
    wait_seconds: int
    scheduled_for: dt.datetime | None
    name: str
    country: str
    system_check: str
    attempt: int
    meeting_ready: bool

    @property
    def late(self) -> bool:
        return self.wait_seconds > LONG_WAIT.total_seconds()

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["waiting_since"] = self.waiting_since.isoformat()
        data["scheduled_for"] = self.scheduled_for.isoformat() if self.scheduled_for else None
        data["late"] = self.late
        return data


def describe_system_check(stored: dict[str, Any] | None) -> str:
    """One line for the queue, e.g. "Chromium 156 on Windows — not supported"."""
    return describe_stored(stored)


def compact_system_check(verdict: Verdict) -> dict[str, Any]:
    """What a session keeps of a client-check verdict: enough for the queue line.

    The verdict's shape: docs/architecture.md, 'Browser and system support';
    ``summary`` names the browser and system as the freelancer's page did.
    """
    browser, system = verdict.browser, verdict.os
    return {"verdict": verdict.verdict, "browser": browser.get("family"), "browser_major": browser.get("major"),
            "os": system.get("family"), "os_version": system.get("version"), "mobile": verdict.mobile,
            "summary": describe_client(verdict)}


def _waiting_since() -> Any:
    return sa.func.coalesce(CallSession.scheduled_for, CallSession.created_at)


def waiting_sessions(db: Session, *, now: dt.datetime, ttl: dt.timedelta) -> list[QueueRow]:
    """Sessions waiting for a reviewer, longest waiting first.

    Waiting sessions, booked ones whose time has come (from ``APPOINTMENT_LEAD``
    before it until ``ttl`` after it), and sessions the freelancer joined before
    anyone claimed them.
    """
    due = sa.and_(CallSession.status == SessionStatus.SCHEDULED, CallSession.scheduled_for <= now + APPOINTMENT_LEAD,
                  CallSession.scheduled_for > now - ttl)
    unclaimed = sa.and_(CallSession.status == SessionStatus.IN_PROGRESS, CallSession.claimed_by_id.is_(None))
    rows = db.execute(
        sa.select(CallSession, Account).join(Account, Account.id == CallSession.account_id)
        .where(sa.or_(CallSession.status == SessionStatus.WAITING, due, unclaimed), Account.closed_at.is_(None))
        .order_by(_waiting_since(), CallSession.id).limit(QUEUE_LIMIT)).all()
    return [_queue_row(call, account, now) for call, account in rows]


def _queue_row(call: CallSession, account: Account, now: dt.datetime) -> QueueRow:
    since = call.scheduled_for or call.created_at
    return QueueRow(call_id=call.id, status=call.status.value, waiting_since=since,
                    wait_seconds=max(0, int((now - since).total_seconds())), scheduled_for=call.scheduled_for,
                    name=account.display_name or "(no name)", country=account.country or "–",
                    system_check=describe_system_check(call.system_check), attempt=call.attempt,
                    meeting_ready=call.meet_status is MeetingStatus.READY)


@dataclasses.dataclass(frozen=True)
class Mine:
    claimed: list[tuple[CallSession, Account]]
    decided: list[tuple[OutcomeRecord, Account]]


def my_sessions(db: Session, reviewer_id: int, *, now: dt.datetime) -> Mine:
    """The reviewer's claimed sessions, and what they decided in the last ``MINE_DAYS`` days (newest first)."""
    claimed = db.execute(sa.select(CallSession, Account).join(Account, Account.id == CallSession.account_id)
                              .where(CallSession.claimed_by_id == reviewer_id,
                                     CallSession.status == SessionStatus.IN_PROGRESS)
                              .order_by(CallSession.claimed_at, CallSession.id)).all()
    decided = db.execute(sa.select(OutcomeRecord, Account).join(Account, Account.id == OutcomeRecord.account_id)
                              .where(OutcomeRecord.decided_by_id == reviewer_id,
                                     OutcomeRecord.decided_at > now - dt.timedelta(days=MINE_DAYS))
                              .order_by(OutcomeRecord.decided_at.desc(), OutcomeRecord.id).limit(100)).all()
    return Mine([(call, account) for call, account in claimed], [(outcome, account) for outcome, account in decided])


@dataclasses.dataclass(frozen=True)
class SessionPage:
    call: CallSession
    account: Account
    claimer: Reviewer | None
    outcome: OutcomeRecord | None
    decided_by: Reviewer | None
    document: IdentityDocument | None
    duplicates: list[str]
    participants: Sequence[CallParticipant]

    def may_act(self, reviewer: Reviewer) -> bool:
        """Record the ID or decide: the claimer, or a lead, while the session is in progress."""
        return self.call.status is SessionStatus.IN_PROGRESS and (
            self.call.claimed_by_id == reviewer.id or reviewer.role.includes(Role.LEAD))


def session_page(db: Session, call_session_id: str, reviewer: Reviewer) -> SessionPage:
    """Everything the session page shows, once the reviewer may see it.

    A reviewer sees the sessions they claimed or decided; leads see every session.

    Raises:
        CallSessionNotFound: no such session.
        NotYourSession: a reviewer's look at someone else's (or an unclaimed) session.
    """
    call = db.get(CallSession, call_session_id)
    if call is None:
        raise CallSessionNotFound(f"no call session with id {call_session_id!r}")
    outcome = db.scalar(sa.select(OutcomeRecord).where(OutcomeRecord.call_session_id == call.id))
    mine = call.claimed_by_id == reviewer.id or (outcome is not None and outcome.decided_by_id == reviewer.id)
    if not mine and not reviewer.role.includes(Role.LEAD):
        raise NotYourSession("another reviewer has claimed this session" if call.claimed_by_id is not None
                             else "claim this session from the queue to open it")
    document = db.scalar(sa.select(IdentityDocument).where(IdentityDocument.call_session_id == call.id))
    return SessionPage(
        call=call, account=db.get_one(Account, call.account_id),
        claimer=db.get(Reviewer, call.claimed_by_id) if call.claimed_by_id else None,
        outcome=outcome, decided_by=db.get(Reviewer, outcome.decided_by_id) if outcome else None,
        document=document,
        duplicates=matching_accounts(db, call.account_id, document.fingerprint) if document else [],
        participants=db.scalars(sa.select(CallParticipant).where(CallParticipant.call_session_id == call.id)
                                     .order_by(CallParticipant.first_joined_at, CallParticipant.id)).all())


@dataclasses.dataclass(frozen=True)
class PendingReview:
    outcome: OutcomeRecord
    account: Account
    first_reviewer: Reviewer


def second_reviews(db: Session) -> list[PendingReview]:
    """Fails waiting for a lead, oldest first, with what the list shows about each (one query).

    Closed accounts' fails are left out: they can no longer be decided.
    """
    rows = db.execute(
        sa.select(OutcomeRecord, Account, Reviewer)
        .join(Account, Account.id == OutcomeRecord.account_id)
        .join(Reviewer, Reviewer.id == OutcomeRecord.decided_by_id)
        .where(OutcomeRecord.result == Outcome.FAILED, OutcomeRecord.final.is_(False), Account.closed_at.is_(None))
        .order_by(OutcomeRecord.decided_at, OutcomeRecord.id).limit(SECOND_REVIEWS_LIMIT)).all()
    return [PendingReview(outcome, account, reviewer) for outcome, account, reviewer in rows]
