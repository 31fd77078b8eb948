"""The call-session state machine.

Every status change goes through :func:`transition`, which refuses any move
that is not in :data:`TRANSITIONS` and keeps the session's timestamps true.

A call moves forward only: once ``in_progress`` (a reviewer claimed it or
someone joined its conference) it never goes back to ``waiting`` — releasing
a claim only clears the claimer — so ``verification.session.started`` can be
sent exactly once, at that move. Every session ends exactly once: its first
move to ``awaiting_second_review`` or a terminal status stamps ``ended_at``,
which a later second review never moves. An expired or canceled session
records why (:class:`EndReason`).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

from verify_service.errors import Conflict

if TYPE_CHECKING:
    from verify_service.calls.models import CallSession


class SessionStatus(str, enum.Enum):
    SCHEDULED = "scheduled"                            # appointment booked
    WAITING = "waiting"                                # meeting ready, freelancer in the queue
    IN_PROGRESS = "in_progress"                        # a reviewer claimed it / someone joined
    AWAITING_SECOND_REVIEW = "awaiting_second_review"  # a fail waits for a lead (four eyes)
    COMPLETED = "completed"
    EXPIRED = "expired"                                # nobody joined in time, or everybody left
    CANCELED = "canceled"


class EndReason(str, enum.Enum):
    """Why a session expired or was canceled (the ``reason`` / ``by`` of its event)."""

    NOT_JOINED = "not_joined"          # expired: nobody joined within the session TTL
    ABANDONED = "abandoned"            # expired: in progress, nobody in the conference for a while, no decision
    FREELANCER = "freelancer"          # canceled: the freelancer canceled a booking or left the queue
    ACCOUNT_CLOSED = "account_closed"  # canceled: the account service closed the account
    LEAD = "lead"                      # canceled: a lead canceled it


class Outcome(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"  # a retry is allowed
    NO_SHOW = "no_show"


S = SessionStatus

TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    S.SCHEDULED: frozenset({S.WAITING, S.CANCELED, S.EXPIRED}),
    S.WAITING: frozenset({S.IN_PROGRESS, S.EXPIRED, S.CANCELED}),
    # Never back to WAITING: a released claim leaves the call in progress, without a claimer.
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.AWAITING_SECOND_REVIEW, S.CANCELED, S.EXPIRED}),
    # A lead confirms or overturns the fail; an account closed meanwhile cancels it.
    S.AWAITING_SECOND_REVIEW: frozenset({S.COMPLETED, S.CANCELED}),
    S.COMPLETED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELED: frozenset(),
}

TERMINAL = frozenset(status for status, moves in TRANSITIONS.items() if not moves)
# Sessions that still hold or will hold a live meeting.
OPEN = frozenset({S.SCHEDULED, S.WAITING, S.IN_PROGRESS})
# The call is over (for its end time): a fail waiting for its second review ended at its first decision.
ENDED = TERMINAL | {S.AWAITING_SECOND_REVIEW}
# Which reasons each ending takes.
REASONS: dict[SessionStatus, frozenset[EndReason]] = {
    S.EXPIRED: frozenset({EndReason.NOT_JOINED, EndReason.ABANDONED}),
    S.CANCELED: frozenset({EndReason.FREELANCER, EndReason.ACCOUNT_CLOSED, EndReason.LEAD}),
}


class IllegalTransition(Conflict):
    code = "illegal_session_transition"
    title = "That change is not possible for this call session"

    def __init__(self, current: SessionStatus, target: SessionStatus) -> None:
        super().__init__(f"a call session cannot go from {current.value} to {target.value}")
        self.current = current
        self.target = target


def can_transition(current: SessionStatus, target: SessionStatus) -> bool:
    return target in TRANSITIONS[current]


def transition(call: CallSession, target: SessionStatus, *, now: dt.datetime,
               reason: EndReason | None = None) -> None:
    """Move ``call`` to ``target``; ``reason`` says why it expired or was canceled (required then).

    Raises:
        IllegalTransition: the move is not allowed from the current status
            (including "moving" to the status it already has).
        ValueError: ``reason`` missing for an expiry or a cancel, or given for another move (a bug).
    """
    current = SessionStatus(call.status)
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    allowed = REASONS.get(target, frozenset())
    if (reason is None) != (not allowed) or (reason is not None and reason not in allowed):
        raise ValueError(f"a move to {target.value} takes a reason of {sorted(r.value for r in allowed)}, "
                         f"got {reason!r}")
    call.status = target
    call.updated_at = now
    if target is S.IN_PROGRESS and call.started_at is None:
        call.started_at = now
    if target in ENDED and call.ended_at is None:
        call.ended_at = now
    if reason is not None:
        call.end_reason = reason
