"""Quality sampling of passes: a random share of passes gets a lead's look after the fact.

``record_outcome`` marks a pass as sampled (``OutcomeRecord.qa_sampled_at``) with
probability ``VERIFY_PASS_SAMPLE_RATE``; the pass takes effect at once and
stands. A lead other than the reviewer who passed it then either confirms it
or overturns it to a fail, which has the effects of a confirmed fail (the
``verification_failed`` hold, ``verification.failed``,
``account.proposals.cancel_requested``). A pass that a later decision on the
account has superseded can no longer be overturned (a lead places a manual
hold instead). The metrics page shows the sample and its overturn rate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.models import Account
from verify_service.audit.services import record
from verify_service.calls.models import OutcomeRecord
from verify_service.calls.state import Outcome
from verify_service.errors import Conflict, InvalidInput
from verify_service.review.decisions import clean_notes, load_staff, lock_outcome
from verify_service.review.effects import apply_confirmed_fail
from verify_service.review.errors import FourEyes
from verify_service.staff.models import HUMAN, Reviewer
from verify_service.review.reasons import check_reasons

QaDecision = Literal["confirm", "overturn"]
_RECORDED_AS = {"confirm": "confirmed", "overturn": "overturned"}


class NotInQa(Conflict):
    code = "outcome_not_in_qa"
    title = "This decision is not waiting for a quality review"


class Superseded(Conflict):
    code = "outcome_superseded"
    title = "A later decision on this account replaced this pass"


def qa_review(db: Session, outcome_id: str, *, lead_id: int, decision: QaDecision,
              reason_codes: Sequence[str], notes: str | None, now: dt.datetime) -> OutcomeRecord:
    """A lead confirms a sampled pass, or overturns it to a fail (with a fail's reason codes).

    Raises:
        InvalidInput: an unknown decision; for an overturn, reasons that do not fit a fail; notes too long.
        ReviewerNotFound, ReviewerInactive, LeadRequired, OutcomeNotFound, AccountClosed,
        NotInQa: not a sampled pass, or already reviewed.
        FourEyes: the lead passed it themselves.
        Superseded: an overturn of a pass a later decision replaced.
    """
    if decision not in _RECORDED_AS:
        raise InvalidInput.for_field("decision", "must be 'confirm' or 'overturn'")
    notes = clean_notes(notes)
    codes = check_reasons(Outcome.FAILED, reason_codes, notes) if decision == "overturn" else []
    lead = load_staff(db, lead_id, lead=True)
    account, call, outcome = lock_outcome(db, outcome_id)
    if outcome.qa_sampled_at is None or outcome.qa_decision is not None or outcome.result is not Outcome.PASSED:
        raise NotInQa(f"outcome {outcome.id} is not a sampled pass waiting for review")
    if outcome.decided_by_id == lead.id:
        raise FourEyes("you recorded this pass; another lead must review it")
    if decision == "overturn":
        # Ties count as later: of two decisions made in the same instant, neither may overrule the other.
        later = db.scalar(sa.select(OutcomeRecord.id).where(
            OutcomeRecord.account_id == account.id, OutcomeRecord.id != outcome.id,
            OutcomeRecord.decided_at >= outcome.decided_at)
            .limit(1))
        if later is not None:
            raise Superseded("a later call on this account was decided since; place a manual hold if this person "
                             "must be stopped")
    outcome.qa_reviewer_id, outcome.qa_decided_at = lead.id, now
    outcome.qa_decision = _RECORDED_AS[decision]
    if notes:
        lead_notes = f"Quality review ({outcome.qa_decision}): {notes}"
        outcome.notes = f"{outcome.notes}\n\n{lead_notes}" if outcome.notes else lead_notes
    actor = f"reviewer:{lead.id}"
    db.flush()
    record(db, actor=actor, action="outcome.qa_review", account_id=account.id, subject_type="outcome",
           subject_id=outcome.id, details={"decision": outcome.qa_decision, "first_reviewer_id": outcome.decided_by_id,
                                           "reason_codes": codes}, now=now)
    if decision == "overturn":
        call.outcome = Outcome.FAILED
        call.updated_at = now
        apply_confirmed_fail(db, account, call, actor=actor, now=now, reason_codes=codes)
    return outcome


@dataclasses.dataclass(frozen=True)
class QaItem:
    outcome: OutcomeRecord
    account: Account
    reviewer: Reviewer


def qa_list(db: Session, *, limit: int = 100) -> list[QaItem]:
    """Sampled passes waiting for a lead, oldest first (closed accounts' are left out)."""
    rows = db.execute(
        sa.select(OutcomeRecord, Account, Reviewer).join(Account, Account.id == OutcomeRecord.account_id)
        .join(Reviewer, Reviewer.id == OutcomeRecord.decided_by_id)
        .where(OutcomeRecord.qa_sampled_at.is_not(None), OutcomeRecord.qa_decision.is_(None),
               Account.closed_at.is_(None), HUMAN)  # a simulated pass is never sampled; never listed either
        .order_by(OutcomeRecord.qa_sampled_at, OutcomeRecord.id).limit(limit)).all()
    return [QaItem(outcome, account, reviewer) for outcome, account, reviewer in rows]


@dataclasses.dataclass(frozen=True)
class QaFigures:
    sampled: int
    reviewed: int
    overturned: int

    @property
    def overturn_rate(self) -> float | None:
        return self.overturned / self.reviewed if self.reviewed else None


def qa_figures(db: Session, *, since: dt.datetime) -> QaFigures:
    """Passes sampled since ``since``, how many a lead reviewed, how many were overturned."""
    sampled, reviewed, overturned = db.execute(sa.select(
        sa.func.count(),
        sa.func.count(OutcomeRecord.qa_decision),
        sa.func.count().filter(OutcomeRecord.qa_decision == "overturned"))
        .where(OutcomeRecord.qa_sampled_at.is_not(None), OutcomeRecord.qa_sampled_at >= since)).one()
    return QaFigures(sampled or 0, reviewed or 0, overturned or 0)
