"""How a call session starts and ends, and what the account service hears of it.

Every start and every end of a session goes through this module, so each is
announced exactly once, in the transaction that makes it:

* :func:`begin` — the first of a reviewer's claim or the freelancer seen
  joining moves the session to ``in_progress`` and sends
  ``verification.session.started``. A session never goes back (a released
  claim leaves it in progress), so this happens once per call.
* :func:`expire` — ``verification.session.expired`` with its ``reason``:
  ``not_joined`` (nobody came within the TTL) or ``abandoned`` (in progress,
  nobody in the conference for a while and no decision).
* :func:`cancel` — ``verification.session.canceled`` with ``by``:
  ``freelancer``, ``account_closed`` or ``lead``.

Decisions end a session too (``review/decisions.py``); their events are the
``verification.*`` outcome events. An ending also asks for what the session
left outside to be cleaned up, by jobs, never inline: its Meet conference
ended (``conference_end_requested_at``) and a future calendar invite deleted
(``invite_pending``). The caller holds the account's row lock (the outbox's
``seq`` needs it), then the session's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from verify_service.accounts.models import Account
from verify_service.calls.models import CallSession
from verify_service.calls.state import EndReason, SessionStatus, transition
from verify_service.webhooks.outbox import enqueue_event

# Statuses in which a Meet conference may still be running.
LIVE = frozenset({SessionStatus.WAITING, SessionStatus.IN_PROGRESS, SessionStatus.AWAITING_SECOND_REVIEW})
INVITE_CANCEL = "cancel"
INVITE_MOVE = "move"


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value is not None else None


def session_document(call: CallSession) -> dict[str, Any]:
    """The ``session`` object of every session and outcome event (ids, status and times; no personal data)."""
    return {"id": call.id, "status": call.status.value, "attempt": call.attempt,
            "outcome": call.outcome.value if call.outcome else None,
            "scheduled_for": _iso(call.scheduled_for), "started_at": _iso(call.started_at),
            "ended_at": _iso(call.ended_at)}


def begin(db: Session, account: Account, call: CallSession, *, now: dt.datetime) -> None:
    """Put a waiting (or due booked) session in progress and announce it.

    Raises:
        IllegalTransition: the session is not scheduled or waiting.
    """
    if call.status is SessionStatus.SCHEDULED:
        transition(call, SessionStatus.WAITING, now=now)
    transition(call, SessionStatus.IN_PROGRESS, now=now)
    enqueue_event(db, account, "verification.session.started", {"session": session_document(call)}, now=now)


def _clean_up_outside(call: CallSession, *, may_be_live: bool, now: dt.datetime) -> None:
    """Ask the jobs to end a conference that may be live, and to delete an invite still to come."""
    if call.meet_space is not None and may_be_live and call.conference_ended_at is None:
        call.conference_end_requested_at = call.conference_end_requested_at or now
    if call.invite_sent_at is not None and call.scheduled_for is not None and call.scheduled_for > now:
        call.invite_pending = INVITE_CANCEL
        call.invite_attempts, call.invite_retry_at, call.invite_error = 0, now, None


def expire(db: Session, account: Account, call: CallSession, *, reason: EndReason,
           now: dt.datetime) -> None:
    """End the session as expired (``not_joined`` or ``abandoned``) and announce it.

    Raises:
        IllegalTransition: the session cannot expire from its status.
    """
    transition(call, SessionStatus.EXPIRED, now=now, reason=reason)
    # Whatever the status was: a booked call's conference may be live too once its time came.
    _clean_up_outside(call, may_be_live=True, now=now)
    enqueue_event(db, account, "verification.session.expired",
                  {"session": session_document(call), "reason": reason.value}, now=now)
    db.flush()


def cancel(db: Session, account: Account, call: CallSession, *, by: EndReason, now: dt.datetime,
           announce: bool = True) -> tuple[str, dict[str, Any]]:
    """End the session as canceled ``by`` the freelancer, the account's closure or a lead; returns its event.

    With ``announce`` the event goes to the outbox here; without, the caller
    publishes it with the rest of its change (an account's closure, which also
    changes the restrictions document). Who may cancel what is the caller's
    rule; this only refuses a status that cannot be canceled.

    Raises:
        IllegalTransition: the session is already over.
    """
    was = call.status
    transition(call, SessionStatus.CANCELED, now=now, reason=by)
    _clean_up_outside(call, may_be_live=was in LIVE, now=now)
    event = ("verification.session.canceled", {"session": session_document(call), "by": by.value})
    if announce:
        enqueue_event(db, account, *event, now=now)
    db.flush()
    return event
