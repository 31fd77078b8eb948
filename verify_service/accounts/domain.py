"""The vocabulary of holds and verification (DESIGN §3.1–3.3)."""

from __future__ import annotations

import enum


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
