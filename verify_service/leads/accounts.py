"""What the lead's account pages read: finding accounts, and one account's whole story."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.accounts.services import Restrictions, get_account, restrictions_for
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallSession, Outcome
from verify_service.review.models import Reviewer
from verify_service.webhooks.models import OutboxEvent

LIST_LIMIT = 50
AUDIT_LIMIT = 200


def find_accounts(session: Session, query: str) -> Sequence[Account]:
    """Accounts whose id starts with ``query``; without one, those with an active hold or changed last."""
    stmt = sa.select(Account)
    query = query.strip()
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Account.id.like(f"{escaped}%", escape="\\")).order_by(Account.id)
    else:
        held = sa.select(Hold.account_id).where(Hold.lifted_at.is_(None))
        stmt = stmt.order_by(Account.id.in_(held).desc(), Account.updated_at.desc(), Account.id)
    return session.scalars(stmt.limit(LIST_LIMIT)).all()


@dataclasses.dataclass(frozen=True)
class CallRow:
    call: CallSession
    outcomes: list[Outcome]


@dataclasses.dataclass(frozen=True)
class AccountStory:
    account: Account
    restrictions: Restrictions
    requests: Sequence[VerificationRequest]
    calls: list[CallRow]
    holds: Sequence[Hold]
    audit: Sequence[AuditEntry]
    events: Sequence[OutboxEvent]
    staff: dict[str, str]  # audit actor string -> display name

    def who(self, actor: str | None) -> str:
        """A staff member's name for an actor string; other actors (api, system, …) as they are."""
        if actor is None:
            return ""
        return self.staff.get(actor, actor)


def account_story(session: Session, account_id: str) -> AccountStory:
    """Everything the account page shows, newest first.

    Raises:
        AccountNotFound: no such account.
    """
    account = get_account(session, account_id)
    calls = session.scalars(sa.select(CallSession).where(CallSession.account_id == account_id)
                            .order_by(CallSession.created_at.desc(), CallSession.id)).all()
    outcomes: dict[str, list[Outcome]] = {}
    for outcome in session.scalars(sa.select(Outcome).where(Outcome.account_id == account_id)
                                   .order_by(Outcome.decided_at)):
        outcomes.setdefault(outcome.call_session_id, []).append(outcome)
    staff = {f"reviewer:{rid}": name for rid, name in session.execute(sa.select(Reviewer.id, Reviewer.display_name))}
    return AccountStory(
        account=account,
        restrictions=restrictions_for(session, account_id),
        requests=session.scalars(sa.select(VerificationRequest).where(VerificationRequest.account_id == account_id)
                                 .order_by(VerificationRequest.requested_at.desc())).all(),
        calls=[CallRow(call, outcomes.get(call.id, [])) for call in calls],
        holds=session.scalars(sa.select(Hold).where(Hold.account_id == account_id)
                              .order_by(Hold.lifted_at.is_not(None), Hold.placed_at.desc(), Hold.id)).all(),
        audit=session.scalars(sa.select(AuditEntry).where(AuditEntry.account_id == account_id)
                              .order_by(AuditEntry.seq.desc()).limit(AUDIT_LIMIT)).all(),
        events=session.scalars(sa.select(OutboxEvent).where(OutboxEvent.account_id == account_id)
                               .order_by(OutboxEvent.seq.desc()).limit(AUDIT_LIMIT)).all(),
        staff=staff,
    )


def hold_of_account(session: Session, account_id: str, hold_id: str) -> Hold | None:
    """The hold, if it belongs to the account (a lift posted to another account's page is refused)."""
    return session.scalar(sa.select(Hold).where(Hold.id == hold_id, Hold.account_id == account_id))
