"""What an account's holds and a call's reasons mean to the freelancer, in sentences built from the facts.

Every list here is derived from the account's actual restrictions (the same document
``GET …/restrictions`` returns), never written out by hand, so a page cannot promise
what a hold blocks (docs/architecture.md, "Holds and restrictions").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from verify_service.accounts.domain import KIND_BLOCKS, Capability, HoldKind, ordered
from verify_service.accounts.restrictions import Restrictions

# What each capability means to a freelancer, in plain words.
CAPABILITY_TEXT = {
    "submit_proposals": "send new proposals to jobs",
    "withdraw_earnings": "withdraw your earnings",
    "accept_direct_hires": "accept direct offers from clients",
    "appear_in_search": "appear in freelancer search results",
    "change_profile_photo": "change your profile photo",
}

# Each kind of hold: its name, and what lifts it.
HOLD_TEXT: dict[str, tuple[str, str]] = {
    HoldKind.VERIFICATION_PENDING.value: (
        "Verification hold", "It is lifted as soon as you pass this verification."),
    HoldKind.VERIFICATION_FAILED.value: (
        "Hold after a failed verification", "It is lifted once you pass a new verification."),
    HoldKind.MANUAL.value: (
        "Hold placed by the marketplace", "The marketplace's support team lifts it; ask them about it."),
}

# What a reviewer's reason code tells the freelancer to do next time. None: not shown to the freelancer
# (a suspicion of fraud is for the marketplace to raise; "other" is explained only in the reviewer's notes,
# which stay inside the service). Every code of review/reasons.py has an entry (a unit test checks it).
REASON_TEXT: dict[str, str | None] = {
    "id_mismatch": "The ID you showed did not match the person on camera. Bring your own valid, "
                   "government-issued photo ID to the next call.",
    "profile_mismatch": "Your name, country or photo did not match your profile. Check that your marketplace "
                        "profile shows your legal name, your country and a recent photo of you before the next call.",
    "document_not_shown": "We could not see your whole ID. On the next call, hold the whole ID up to the camera "
                          "until the reviewer says they have read it.",
    "document_expired": "The ID you showed has expired. Bring a valid, unexpired ID to the next call.",
    "poor_video": "The video was too unclear to tell who you are. Sit facing a light, and use a stable connection "
                  "or a phone on the next call.",
    "refused_camera": "The camera stayed off. The call needs your camera on from start to finish.",
    "suspected_duplicate": None,
    "connection_failed": "The connection failed during the call. A stable connection helps; you can also join "
                         "from a phone with the Google Meet app.",
    "other": None,
}


@dataclasses.dataclass(frozen=True)
class HoldLine:
    """One active hold as the freelancer reads it: its name, what it stops, what lifts it."""

    name: str
    blocks: list[str]
    lifted_by: str

    @property
    def blocks_text(self) -> str:
        """"send new proposals to jobs or change your profile photo": the blocks, as said."""
        return self.blocks[0] if len(self.blocks) == 1 else ", ".join(self.blocks[:-1]) + " or " + self.blocks[-1]


def hold_lines(restrictions: Restrictions) -> list[HoldLine]:
    """The account's active holds, each with what it blocks in the freelancer's words (canonical order)."""
    order = list(CAPABILITY_TEXT)
    return [HoldLine(HOLD_TEXT[hold["kind"]][0],
                     [CAPABILITY_TEXT[c] for c in sorted(hold["blocks"], key=order.index)],
                     HOLD_TEXT[hold["kind"]][1])
            for hold in restrictions.holds if hold["blocks"]]


def kind_blocks(kind: HoldKind) -> HoldLine:
    """What an automatic hold of ``kind`` blocks (for pages without an account: the help page)."""
    name, lifted_by = HOLD_TEXT[kind.value]
    return HoldLine(name, [CAPABILITY_TEXT[c.value] for c in ordered(KIND_BLOCKS[kind])], lifted_by)


def still_works(restrictions: Restrictions) -> list[str]:
    """What the freelancer can still do while on hold, precisely: contracts, and earnings as the holds allow."""
    lines = ["Work on your existing contracts carries on as usual, and what it earns is paid into your "
             "marketplace account."]
    if Capability.WITHDRAW_EARNINGS.value in restrictions.blocked:
        lines.append("Your earnings stay in your account: you can withdraw them once the hold that blocks "
                     "withdrawals is lifted.")
    else:
        lines.append("You can withdraw your earnings as usual.")
    return lines


def proposals_withdrawn(restrictions: Restrictions) -> bool:
    """Whether the failed-verification hold is on: proposals sent before it were withdrawn."""
    return any(hold["kind"] == HoldKind.VERIFICATION_FAILED.value for hold in restrictions.holds)


def reason_lines(codes: Sequence[str]) -> list[str]:
    """What the freelancer is told of a decision's reason codes (unknown and hidden codes say nothing)."""
    return [text for code in codes if (text := REASON_TEXT.get(code))]


def hold_context(restrictions: Restrictions) -> dict[str, Any]:
    """The template values every page that speaks of holds takes."""
    return {"holds": hold_lines(restrictions), "still_works": still_works(restrictions),
            "proposals_withdrawn": proposals_withdrawn(restrictions), "capability_text": CAPABILITY_TEXT}
