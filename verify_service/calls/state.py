"""The call-session state machine (DESIGN §3.4).

Every status change goes through :func:`transition`, which refuses any move
that is not in :data:`TRANSITIONS` and keeps the session's timestamps true.
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
    EXPIRED = "expired"                                # nobody joined in time
    CANCELED = "canceled"


class Outcome(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"  # a retry is allowed
    NO_SHOW = "no_show"


S = SessionStatus

TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    S.SCHEDULED: frozenset({S.WAITING, S.CANCELED, S.EXPIRED}),
    S.WAITING: frozenset({S.IN_PROGRESS, S.EXPIRED, S.CANCELED}),
    # Back to WAITING when the reviewer releases the claim (or it goes idle).
    S.IN_PROGRESS: frozenset({S.WAITING, S.COMPLETED, S.AWAITING_SECOND_REVIEW, S.CANCELED}),
    # A lead confirms or overturns the fail; either way the session completes.
    S.AWAITING_SECOND_REVIEW: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELED: frozenset(),
}

TERMINAL = frozenset(status for status, moves in TRANSITIONS.items() if not moves)
# Sessions that still hold or will hold a live meeting.
OPEN = frozenset({S.SCHEDULED, S.WAITING, S.IN_PROGRESS})


class IllegalTransition(Conflict):
    code = "illegal_session_transition"
    title = "That change is not possible for this call session"

    def __init__(self, current: SessionStatus, target: SessionStatus) -> None:
        super().__init__(f"a call session cannot go from {current.value} to {target.value}")
        self.current = current
        self.target = target


def can_transition(current: SessionStatus, target: SessionStatus) -> bool:
    return target in TRANSITIONS[current]


def transition(session: CallSession, target: SessionStatus, *, now: dt.datetime) -> None:
    """Move ``session`` to ``target``.

    Raises:
        IllegalTransition: the move is not allowed from the current status
            (including "moving" to the status it already has).
    """
    current = SessionStatus(session.status)
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    session.status = target
    session.updated_at = now
    if target is S.IN_PROGRESS and session.started_at is None:
        session.started_at = now
    if target is S.WAITING and current is S.IN_PROGRESS:
        session.claimed_by_id = None
        session.claimed_at = None
    if target in TERMINAL:
        session.ended_at = now
