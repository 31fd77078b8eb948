"""The vocabulary of holds and verification (docs/architecture.md, 'Vocabulary' and 'Holds and restrictions')."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from verify_service.accounts.errors import AccountClosed

if TYPE_CHECKING:
    from verify_service.accounts.models import Account


class Capability(str, enum.Enum):
    """What a hold can block. Work on existing contracts is never blocked."""

    SUBMIT_PROPOSALS = "submit_proposals"
    WITHDRAW_EARNINGS = "withdraw_earnings"
    ACCEPT_DIRECT_HIRES = "accept_direct_hires"
    APPEAR_IN_SEARCH = "appear_in_search"
    CHANGE_PROFILE_PHOTO = "change_profile_photo"


# Canonical order, used whenever a set of capabilities is listed.
CAPABILITY_ORDER = tuple(Capability)


class HoldKind(str, enum.Enum):
    VERIFICATION_PENDING = "verification_pending"
    VERIFICATION_FAILED = "verification_failed"
    MANUAL = "manual"


# What the two automatic kinds block; a manual hold names its own set.
KIND_BLOCKS: dict[HoldKind, frozenset[Capability]] = {
    HoldKind.VERIFICATION_PENDING: frozenset({Capability.SUBMIT_PROPOSALS, Capability.CHANGE_PROFILE_PHOTO}),
    HoldKind.VERIFICATION_FAILED: frozenset({
        Capability.WITHDRAW_EARNINGS, Capability.SUBMIT_PROPOSALS,
        Capability.ACCEPT_DIRECT_HIRES, Capability.APPEAR_IN_SEARCH,
    }),
}


# The profile snapshot: personal data the account service sends us (closing the account erases it).
PROFILE_FIELDS = ("display_name", "email", "country", "photo_url", "timezone", "locale")


class VerificationStatus(str, enum.Enum):
    NOT_REQUIRED = "not_required"
    REQUIRED = "required"
    VERIFIED = "verified"
    FAILED = "failed"


class RequestReason(str, enum.Enum):
    NEW_ACCOUNT = "new_account"
    RISK_SIGNAL = "risk_signal"
    PROFILE_CHANGE = "profile_change"
    MANUAL = "manual"


class RequestStatus(str, enum.Enum):
    OPEN = "open"
    PASSED = "passed"
    FAILED = "failed"
    CANCELED = "canceled"


def ordered(capabilities: set[Capability] | frozenset[Capability]) -> list[Capability]:
    """``capabilities`` in canonical order."""
    return [c for c in CAPABILITY_ORDER if c in capabilities]


def ensure_open(account: Account) -> None:
    """Refuse any change to a closed account: its personal data is erased and nothing more happens to it.

    Raises: AccountClosed.
    """
    if account.closed_at is not None:
        raise AccountClosed(f"account {account.id!r} is closed")


# Events about the service itself (not about a marketplace account) travel on a reserved *system
# account*, so they keep every outbox guarantee: a gapless per-account seq, in order, at least once.
# Marketplace ids start with a letter or digit (accounts.schemas.ACCOUNT_ID_PATTERN), so an id that
# starts with this prefix can never be one: the API and the webhooks refuse it, and the account
# services and the lead pages treat it as unknown.
SYSTEM_ACCOUNT_PREFIX = "_"


def is_system_account(account_id: str) -> bool:
    """Whether ``account_id`` is a reserved system account (never a marketplace account)."""
    return account_id.startswith(SYSTEM_ACCOUNT_PREFIX)
