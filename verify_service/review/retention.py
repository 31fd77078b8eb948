"""Retention: personal data of a decided call goes ``settings.retention_days`` after the decision.

What goes, per call session whose outcome was decided (the lead's second
decision counts, when there is one) longer ago than the retention period:

* the reviewer's free-text ``Outcome.notes`` (set to NULL; the result, the
  reason codes and the checklist stay — they are not personal data);
* the ID evidence (``IdentityDocument``): the row is deleted — fingerprint,
  last four characters, type, country and expiry. Trade-off: duplicate-identity
  detection no longer sees that document, so an ID shown again on another
  account more than the retention period later is not flagged;
* the Meet display names of the call's participants (set to NULL; the
  attendance times stay).

The audit log stays as it is: its entries never hold personal data.
Work goes in batches, each its own transaction, so a backlog never holds
locks for long; on PostgreSQL the outcome rows are claimed with
``FOR UPDATE SKIP LOCKED`` and the condition is re-checked under the lock,
so two schedulers never work on the same rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from verify_service.calls.models import CallParticipant, Outcome
from verify_service.db import unit_of_work
from verify_service.review.models import IdentityDocument


@dataclasses.dataclass(frozen=True)
class RetentionReport:
    """What one purge did: call sessions cleaned, and documents deleted among them."""

    sessions: int = 0
    documents: int = 0


def _holds_personal_data() -> sa.ColumnElement[bool]:
    return sa.or_(
        Outcome.notes.is_not(None),
        sa.exists().where(IdentityDocument.call_session_id == Outcome.call_session_id),
        sa.exists().where(CallParticipant.call_session_id == Outcome.call_session_id,
                          CallParticipant.display_name.is_not(None)))


def _decided_before(cutoff: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.func.coalesce(Outcome.second_decided_at, Outcome.decided_at) < cutoff


def purge_batch(session: Session, *, cutoff: dt.datetime, batch: int = 500) -> RetentionReport:
    """Erase the personal data of up to ``batch`` call sessions decided before ``cutoff``.

    Raises nothing of its own; database errors propagate (the caller's unit of work rolls back).
    """
    stmt = (sa.select(Outcome.call_session_id)
            .where(_decided_before(cutoff), _holds_personal_data())
            .order_by(Outcome.decided_at, Outcome.id).limit(batch))
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        stmt = stmt.with_for_update(of=Outcome, skip_locked=True)
    call_ids = list(session.scalars(stmt))
    if postgresql and call_ids:
        # A row another run purged and committed while this statement ran is still claimed: the re-check
        # of the locked row runs its EXISTS subqueries on the statement's old snapshot. A fresh statement
        # sees that run's commit, so nothing is counted (or touched) twice.
        call_ids = list(session.scalars(sa.select(Outcome.call_session_id).where(
            Outcome.call_session_id.in_(call_ids), _holds_personal_data())))
    if not call_ids:
        return RetentionReport()
    session.execute(sa.update(Outcome).where(Outcome.call_session_id.in_(call_ids)).values(notes=None)
                    .execution_options(synchronize_session=False))
    documents = session.execute(sa.delete(IdentityDocument).where(IdentityDocument.call_session_id.in_(call_ids))
                                .execution_options(synchronize_session=False)).rowcount
    session.execute(sa.update(CallParticipant).where(CallParticipant.call_session_id.in_(call_ids))
                    .values(display_name=None).execution_options(synchronize_session=False))
    session.flush()
    return RetentionReport(sessions=len(call_ids), documents=documents or 0)


def purge_personal_data(sessions: sessionmaker[Session], *, now: dt.datetime, retention: dt.timedelta,
                        batch: int = 500, max_batches: int = 200) -> RetentionReport:
    """Run :func:`purge_batch` until nothing is left (or ``max_batches``), one transaction per batch.

    Raises nothing of its own; a failing batch rolls back alone and propagates.
    """
    cutoff = now - retention
    total = RetentionReport()
    for _ in range(max_batches):
        with unit_of_work(sessions) as session:
            done = purge_batch(session, cutoff=cutoff, batch=batch)
        total = RetentionReport(total.sessions + done.sessions, total.documents + done.documents)
        if done.sessions < batch:
            break
    return total
