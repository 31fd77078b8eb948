"""Retention: personal data of an ended call goes ``settings.retention_days`` after its end.

Every call session that ended — ``completed``, ``expired`` or ``canceled``
(:data:`~verify_service.calls.state.TERMINAL`), decided or not — is purged
once its end is older than the retention period. Its end is the latest of
``CallSession.ended_at`` and, when the call has an outcome, the lead's
``OutcomeRecord.second_decided_at`` (a second review can come well after the
call). A fail still waiting for its second review has not ended: it is left
alone until the lead decides (or the account is closed). What goes:

* the reviewer's free-text ``OutcomeRecord.notes`` (set to NULL; the result, the
  reason codes and the checklist stay — they are not personal data);
* the ID evidence (``IdentityDocument``): the row is deleted — fingerprint,
  last four characters, type, country and expiry. Trade-off: duplicate-identity
  detection no longer sees that document, so an ID shown again on another
  account more than the retention period later is not flagged;
* the Meet display names of the call's participants (set to NULL; the
  attendance times stay) — also of calls that expired or were canceled
  without a decision.

The audit log stays as it is: its entries never hold personal data.
Work goes in batches, each its own transaction, so a backlog never holds
locks for long; on PostgreSQL the call session rows are claimed with
``FOR UPDATE SKIP LOCKED`` and the condition is re-checked under the lock,
so two schedulers never work on (or count) the same call twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from verify_service.calls.models import CallParticipant, CallSession, OutcomeRecord
from verify_service.calls.state import TERMINAL
from verify_service.db import unit_of_work
from verify_service.review.models import IdentityDocument
from verify_service.settings import Settings

# What :func:`purge_batch` erases of an ended call, by name (the help page's privacy text lists each one).
PURGED_AFTER_RETENTION = ("reviewer_notes", "id_document", "meet_display_names")


def retention_period(settings: Settings) -> dt.timedelta:
    """How long after a call's end its personal data is kept: the purge job and the help page use this."""
    return dt.timedelta(days=settings.retention_days)


@dataclasses.dataclass(frozen=True)
class RetentionReport:
    """What one purge did: call sessions cleaned, and documents deleted among them."""

    sessions: int = 0
    documents: int = 0


def _holds_personal_data() -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.exists().where(OutcomeRecord.call_session_id == CallSession.id, OutcomeRecord.notes.is_not(None)),
        sa.exists().where(IdentityDocument.call_session_id == CallSession.id),
        sa.exists().where(CallParticipant.call_session_id == CallSession.id,
                          CallParticipant.display_name.is_not(None)))


def _ended_before(cutoff: dt.datetime) -> sa.ColumnElement[bool]:
    """The call is over, and its end (the latest of ``ended_at`` and a second review) is before ``cutoff``."""
    return sa.and_(
        CallSession.status.in_(sorted(TERMINAL)),
        # Implied by the next line (a call is created before it ends); it lets the scan use the
        # (status, created_at) index instead of reading every ended call there is.
        CallSession.created_at < cutoff,
        CallSession.ended_at < cutoff,
        ~sa.exists().where(OutcomeRecord.call_session_id == CallSession.id, OutcomeRecord.second_decided_at >= cutoff))


def purge_batch(db: Session, *, cutoff: dt.datetime, batch: int = 500) -> RetentionReport:
    """Erase the personal data of up to ``batch`` call sessions that ended before ``cutoff``.

    Raises nothing of its own; database errors propagate (the caller's unit of work rolls back).
    """
    stmt = (sa.select(CallSession.id)
            .where(_ended_before(cutoff), _holds_personal_data())
            .order_by(CallSession.ended_at, CallSession.id).limit(batch))
    postgresql = db.get_bind().dialect.name == "postgresql"
    if postgresql:
        stmt = stmt.with_for_update(of=CallSession, skip_locked=True)
    call_ids = list(db.scalars(stmt))
    if postgresql and call_ids:
        # A call another run purged and committed while this statement ran is still claimed: PostgreSQL
        # re-checks a locked row's condition only when that row itself changed (a purge changes other
        # tables), and even then runs the EXISTS subqueries on the statement's old snapshot. A fresh
        # statement sees that run's commit, so nothing is counted (or touched) twice.
        call_ids = list(db.scalars(sa.select(CallSession.id).where(
            CallSession.id.in_(call_ids), _holds_personal_data())))
    if not call_ids:
        return RetentionReport()
    db.execute(sa.update(OutcomeRecord)
                    .where(OutcomeRecord.call_session_id.in_(call_ids), OutcomeRecord.notes.is_not(None))
                    .values(notes=None).execution_options(synchronize_session=False))
    documents = db.execute(sa.delete(IdentityDocument).where(IdentityDocument.call_session_id.in_(call_ids))
                                .execution_options(synchronize_session=False)).rowcount
    db.execute(sa.update(CallParticipant).where(CallParticipant.call_session_id.in_(call_ids),
                                                     CallParticipant.display_name.is_not(None))
                    .values(display_name=None).execution_options(synchronize_session=False))
    db.flush()
    return RetentionReport(sessions=len(call_ids), documents=documents or 0)


def purge_personal_data(sessions: sessionmaker[Session], *, now: dt.datetime, retention: dt.timedelta,
                        batch: int = 500, max_batches: int = 200) -> RetentionReport:
    """Run :func:`purge_batch` until nothing is left (or ``max_batches``), one transaction per batch.

    Raises nothing of its own; a failing batch rolls back alone and propagates.
    """
    cutoff = now - retention
    total = RetentionReport()
    for _ in range(max_batches):
        with unit_of_work(sessions) as db:
            done = purge_batch(db, cutoff=cutoff, batch=batch)
        total = RetentionReport(total.sessions + done.sessions, total.documents + done.documents)
        if done.sessions < batch:
            break
    return total
