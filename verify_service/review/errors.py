"""What the review desk refuses: claims, decisions and second reviews, with the codes the pages show."""

from __future__ import annotations

from verify_service.errors import Conflict, Forbidden, NotFound


class NotSessionClaimer(Forbidden):
    code = "not_session_claimer"
    title = "Only the reviewer who claimed the session (or a lead) may do this"


class FourEyes(Forbidden):
    code = "four_eyes"
    title = "A fail must be reviewed by someone other than the reviewer who recorded it"


class OutcomeNotFound(NotFound):
    code = "outcome_not_found"
    title = "No such outcome"


class SessionAlreadyClaimed(Conflict):
    code = "session_already_claimed"
    title = "Another reviewer has claimed this session"


class SessionNotClaimable(Conflict):
    code = "session_not_claimable"
    title = "This session cannot be claimed in its current status"


class SessionNotClaimed(Conflict):
    code = "session_not_claimed"
    title = "Nobody has claimed this session"


class SessionNotInProgress(Conflict):
    code = "session_not_in_progress"
    title = "An outcome can only be recorded for a session in progress"


class AlreadyDecided(SessionNotInProgress):
    code = "session_already_decided"
    title = "This session has already been decided"


class OutcomeNotPendingReview(Conflict):
    code = "outcome_not_pending_review"
    title = "Only a fail still waiting for its second review can be reviewed"
