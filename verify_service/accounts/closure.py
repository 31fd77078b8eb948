"""Closing an account (the account service's ``account.closed``).

Closing cancels the account's open call sessions, asks for their live Meet
conferences to be ended (by a job: no outbound call happens here), and erases
the personal data retention allows us to erase. Holds, audit entries and
outbox events stay: they never contain personal data, and they are the
record of what the service did. The restrictions document does not change,
so ``restrictions_version`` does not either.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.models import Account
from verify_service.accounts.services import AccountNotFound, lock_account
from verify_service.audit.services import record
from verify_service.calls.models import CallParticipant, CallSession, Outcome
from verify_service.calls.services import cancel_open_sessions
from verify_service.review.models import IdentityDocument

# The profile snapshot: personal data the account service sent us.
PROFILE_FIELDS = ("display_name", "email", "country", "photo_url", "timezone", "locale")


@dataclasses.dataclass(frozen=True)
class Closure:
    """What closing did; ``closed`` is False when there was nothing to do."""

    closed: bool
    sessions_canceled: int = 0
    conferences_to_end: int = 0


def close_account(session: Session, account_id: str, *, actor: str, now: dt.datetime) -> Closure:
    """Close the account: cancel its open call sessions and erase its personal data.

    Idempotent: an unknown or already-closed account is left alone and
    ``Closure(closed=False)`` is returned, so a redelivered ``account.closed``
    (or one for an account we never saw) is simply acknowledged.

    Raises nothing of its own.
    """
    try:
        # Lock order is always account first (then sessions, then the audit head).
        account = lock_account(session, account_id)
    except AccountNotFound:
        return Closure(closed=False)
    if account.closed_at is not None:
        return Closure(closed=False)
    canceled = cancel_open_sessions(session, account_id, now=now)
    to_end = sum(1 for row in canceled if row.conference_end_requested_at is not None)
    erase_personal_data(session, account_id)
    account.closed_at = now
    account.updated_at = now
    session.flush()
    record(session, actor=actor, action="account.closed", account_id=account_id, subject_type="account",
           subject_id=account_id, details={"sessions_canceled": len(canceled), "conferences_to_end": to_end},
           now=now)
    return Closure(closed=True, sessions_canceled=len(canceled), conferences_to_end=to_end)


def erase_personal_data(session: Session, account_id: str) -> None:
    """Erase every piece of the account's personal data that retention allows us to erase.

    This is the one place that knows where personal data lives: every new
    column holding it must be erased here too. The ID evidence a reviewer
    recorded goes entirely, fingerprint included: a closed account is not
    "another account" a new registration should be matched against.
    """
    account = session.get(Account, account_id)
    if account is not None:
        for name in PROFILE_FIELDS:
            setattr(account, name, None)
    session.execute(sa.update(Outcome).where(Outcome.account_id == account_id).values(notes=None))
    session.execute(sa.delete(IdentityDocument).where(IdentityDocument.account_id == account_id))
    # Display names seen in the account's Meet conferences.
    session.execute(sa.update(CallParticipant).where(CallParticipant.call_session_id.in_(
        sa.select(CallSession.id).where(CallSession.account_id == account_id))).values(display_name=None))
    session.flush()
