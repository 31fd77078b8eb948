"""What the lead's account pages read: finding accounts, and one account's whole story."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.accounts.services import get_account
from verify_service.accounts.restrictions import Restrictions, restrictions_for
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.staff.models import Reviewer
from verify_service.webhooks.models import OutboxEvent
from verify_service.accounts.domain import SYSTEM_ACCOUNT_PREFIX

LIST_LIMIT = 50
AUDIT_LIMIT = 200


def find_accounts(db: Session, query: str) -> Sequence[Account]:
    """Accounts whose id starts with ``query``; without one, those with an active hold, then the others.

    Each part is listed changed last first, by an index scan that stops after ``LIST_LIMIT`` rows
    however many accounts there are. System accounts (the service's own event channels) are never listed.
    """
    query = query.strip()
    marketplace = ~Account.id.startswith(SYSTEM_ACCOUNT_PREFIX, autoescape=True)
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return db.scalars(sa.select(Account).where(Account.id.like(f"{escaped}%", escape="\\"), marketplace)
                               .order_by(Account.id).limit(LIST_LIMIT)).all()
    held = sa.exists().where(Hold.account_id == Account.id, Hold.lifted_at.is_(None))
    newest = (Account.updated_at.desc(), Account.id.desc())
    found = list(db.scalars(sa.select(Account).where(held, marketplace).order_by(*newest).limit(LIST_LIMIT)))
    if len(found) < LIST_LIMIT:
        found += db.scalars(sa.select(Account).where(~held, marketplace).order_by(*newest)
                                 .limit(LIST_LIMIT - len(found)))
    return found


@dataclasses.dataclass(frozen=True)
class CallRow:
    call: CallSession
    outcomes: list[OutcomeRecord]


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


def account_story(db: Session, account_id: str) -> AccountStory:
    """Everything the account page shows, newest first: a fixed number of indexed reads, whatever the history.

    Raises:
        AccountNotFound: no such account.
    """
    account = get_account(db, account_id)
    calls = db.execute(sa.select(CallSession, OutcomeRecord)
                            # one outcome per session at most
                            .outerjoin(OutcomeRecord, OutcomeRecord.call_session_id == CallSession.id)
                            .where(CallSession.account_id == account_id)
                            .order_by(CallSession.created_at.desc(), CallSession.id)).all()
    staff = {f"reviewer:{rid}": name for rid, name in db.execute(sa.select(Reviewer.id, Reviewer.display_name))}
    return AccountStory(
        account=account,
        restrictions=restrictions_for(db, account_id),
        requests=db.scalars(sa.select(VerificationRequest).where(VerificationRequest.account_id == account_id)
                                 .order_by(VerificationRequest.requested_at.desc())).all(),
        calls=[CallRow(call, [outcome] if outcome is not None else []) for call, outcome in calls],
        holds=db.scalars(sa.select(Hold).where(Hold.account_id == account_id)
                              .order_by(Hold.lifted_at.is_not(None), Hold.placed_at.desc(), Hold.id)).all(),
        audit=db.scalars(sa.select(AuditEntry).where(AuditEntry.account_id == account_id)
                              .order_by(AuditEntry.seq.desc()).limit(AUDIT_LIMIT)).all(),
        events=db.scalars(sa.select(OutboxEvent).where(OutboxEvent.account_id == account_id)
                               .order_by(OutboxEvent.seq.desc()).limit(AUDIT_LIMIT)).all(),
        staff=staff,
    )


def hold_of_account(db: Session, account_id: str, hold_id: str) -> Hold | None:
    """The hold, if it belongs to the account (a lift posted to another account's page is refused)."""
    return db.scalar(sa.select(Hold).where(Hold.id == hold_id, Hold.account_id == account_id))
