"""What the account services refuse, with the codes the API and the pages show."""

from __future__ import annotations

from verify_service.errors import Conflict, NotFound


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "No such account"

    def __init__(self, account_id: str) -> None:
        super().__init__(f"no account with id {account_id!r}: it must be created first "
                         "(PUT /api/v1/accounts/{id}, or an account.upserted webhook)")


class AccountClosed(Conflict):
    code = "account_closed"
    title = "The account is closed"


class HoldNotFound(NotFound):
    code = "hold_not_found"
    title = "No such hold"


class HoldAlreadyLifted(Conflict):
    code = "hold_already_lifted"
    title = "The hold was already lifted"
