"""A simulated verification call: the real path, with the service's built-in identities in the room.

``POST /api/v1/simulations/accounts/{id}/outcome`` lets the account service's
engineers test their integration without a human reviewer. Nothing is
faked past the meeting: the call session is opened by the service the
freelancer's Start button uses (``freelancer/journey.py: open_call``), the
``simulator`` claims it (``review/decisions.py: claim_session``), records an ID
for a pass (``review/identity.py``), and decides through the decision service
the dashboard uses (``record_outcome``) against attendance re-read at decision
time through the attendance service (``calls/attendance.py: apply_attendance``);
a fail under four eyes is confirmed by the simulated lead (``second_review``).
So the holds, the restrictions version and the events are exactly those of a
real call, each event marked ``"simulated": true`` (``webhooks/outbox.py: simulating``).

What is simulated is the meeting: a private in-process sandbox
(``integrations/sandbox_google/inprocess.py``) that lives for this one call, so a
simulation never reaches Google whatever ``VERIFY_MEET_BACKEND`` says, never spends
Meet's creation budget, and never shows up in the app's own sandbox rooms. The
freelancer and the simulator join it; attendance is read back from it.

Everything runs in the request's one transaction (the API's ``api_write``): the
call is claimed before anything commits, so no human ever sees it in the queue,
and a refusal anywhere leaves no trace. That holds no transaction open across a
remote call, since the sandbox is in process.

**Time.** A no show needs the reviewer in the call ``VERIFY_NO_SHOW_WAIT_MINUTES``
first. The simulation does not sleep: its steps before the decision (opening,
the meeting, the claim, the simulator joining) run on a clock that starts that
many minutes before now, and the decision, with the attendance re-read, at now.
The call's times, the meeting's attendance and the events say so truthfully.
Every other outcome runs entirely at now.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from integrations.sandbox_google.inprocess import InProcessSandboxMeet
from verify_service.accounts.domain import ensure_open
from verify_service.accounts.restrictions import open_request
from verify_service.accounts.services import lock_account
from verify_service.audit.services import record
from verify_service.calls import attendance
from verify_service.calls.attendance import SIMULATED_HOST
from verify_service.calls.meetings import add_reviewer, store_meeting
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.calls.state import Outcome
from verify_service.errors import Conflict, InvalidInput
from verify_service.freelancer import journey
from verify_service.review.decisions import claim_session, record_outcome, second_review
from verify_service.review.evidence import NEEDS_ATTENDANCE, DecisionPolicy
from verify_service.review.identity import DocumentForm, record_document
from verify_service.review.reasons import NEEDS_REASON, REASONS, TAKES_REASON
from verify_service.settings import Settings
from verify_service.simulations.identities import builtin_identities
from verify_service.staff.models import Reviewer
from verify_service.webhooks.outbox import simulating

# SIMULATED_HOST (calls.attendance): the host user the private sandbox creates the meeting as (no real Workspace
# user: it never reaches Google, and the attendance job leaves its calls alone).
ROOM_URL = "https://simulations.verify-service.invalid/meet/"
# What a fail or an inconclusive call says when the request names no reason (both must give one).
DEFAULT_REASONS = {Outcome.FAILED: ("id_mismatch",), Outcome.INCONCLUSIVE: ("poor_video",)}
# The simulator's notes: a decision with "other" needs some, and a lead reading the call should know.
NOTES = "Simulated call, asked for by the account service through the simulations API."


class NoOpenRequest(Conflict):
    code = "no_open_verification_request"
    title = "The account has no open verification request"


@dataclasses.dataclass(frozen=True)
class Simulated:
    call_session_id: str
    outcome: Outcome
    restrictions_version: int


class _Clock:
    """The simulation's clock: the sandbox meeting reads it, the steps move it."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def check_reasons_for(outcome: Outcome, reasons: Sequence[str] | None) -> list[str]:
    """The reason codes to decide with. Raises: InvalidInput on ``reasons`` (unknown, or not taken by ``outcome``)."""
    codes = list(reasons or ())
    unknown = sorted(set(codes) - set(REASONS))
    if unknown:
        raise InvalidInput.for_field("reasons", "unknown reason " + ", ".join(repr(c[:40]) for c in unknown)
                                     + "; one of " + ", ".join(REASONS))
    if codes and outcome not in TAKES_REASON:
        raise InvalidInput.for_field("reasons", f"{outcome.value} takes no reasons")
    if not codes and outcome in NEEDS_REASON:
        return list(DEFAULT_REASONS[outcome])
    return codes


def simulate_outcome(db: Session, account_id: str, outcome: Outcome, reasons: Sequence[str] | None, *,
                     settings: Settings, now: dt.datetime, actor: str) -> Simulated:
    """Run one call on the account to ``outcome``, on the real path, in the caller's transaction.

    ``actor`` is who asked (the account service); the decisions are the simulator's.

    Raises:
        InvalidInput: ``reasons`` do not fit. AccountNotFound, AccountClosed,
        NoOpenRequest, SessionAlreadyActive, DailyLimitReached (the freelancer's own limit: a simulated call is a call).
    """
    codes = check_reasons_for(outcome, reasons)
    account = lock_account(db, account_id)
    ensure_open(account)
    if open_request(db, account.id) is None:
        raise NoOpenRequest(f"account {account_id!r} has no open verification request: ask for one first "
                            "(POST /api/v1/accounts/{account_id}/verification-requests)")
    current = journey.active_session(db, account.id)
    if current is not None:
        raise journey.SessionAlreadyActive(current.id, f"account {account_id!r} already has call session "
                                           f"{current.id} ({current.status.value}); a simulation never runs "
                                           "beside another call")
    simulator, lead = builtin_identities(db, now=now)
    start = now - dt.timedelta(minutes=settings.no_show_wait_minutes) if outcome is Outcome.NO_SHOW else now
    clock = _Clock(start)
    meet = InProcessSandboxMeet(clock, host=SIMULATED_HOST, room_url=ROOM_URL)
    with simulating():
        call = _open_and_claim(db, meet, account_id, simulator, settings=settings, now=start)
        _join(meet, call, simulator, freelancer=outcome is not Outcome.NO_SHOW)
        clock.at = now
        decided = _decide(db, meet, call, simulator, outcome, codes, settings=settings, now=now)
        if not decided.final:  # four eyes: the simulated lead confirms at once, so it never waits on a human's list
            second_review(db, decided.id, lead_id=lead.id, decision="confirm", notes=None, now=now)
    if call.conference_end_requested_at is not None and call.conference_ended_at is None:
        # The private meeting ends with this request: the conference-ending job must not ask a real gateway.
        call.conference_ended_at = now
    record(db, actor=actor, action="simulation.run", account_id=account_id, subject_type="call_session",
           subject_id=call.id, details={"outcome": outcome.value, "reason_codes": codes,
                                        "simulator_id": simulator.id}, now=now)
    return Simulated(call.id, outcome, account.restrictions_version)


def _actor(reviewer: Reviewer) -> str:
    return f"reviewer:{reviewer.id}"


def _open_and_claim(db: Session, meet: InProcessSandboxMeet, account_id: str, simulator: Reviewer, *,
                    settings: Settings, now: dt.datetime) -> CallSession:
    """Open the call as the Start button does, give it its sandbox meeting, and have the simulator claim it."""
    call = journey.open_call(db, account_id, settings=settings, now=now, actor=_actor(simulator),
                             system_check={"simulated": True})
    space = meet.create_space(host=SIMULATED_HOST, access_type=settings.meet_access_type)  # type: ignore[arg-type]
    meet.add_member(space.name, _freelancer_email(call), host=SIMULATED_HOST)
    store_meeting(call, space, SIMULATED_HOST, now=now)
    db.flush()
    claim_session(db, call.id, reviewer_id=simulator.id, now=now)
    add_reviewer(meet, call, simulator.email)
    return call


def _freelancer_email(call: CallSession) -> str:
    # The account's own email is not needed: the sandbox meeting only has to tell the freelancer apart.
    return f"freelancer-{call.id}@simulations.verify-service.invalid"


def _join(meet: InProcessSandboxMeet, call: CallSession, simulator: Reviewer, *, freelancer: bool) -> None:
    assert call.meet_code is not None
    meet.sandbox.join(call.meet_code, email=simulator.email, display_name=simulator.display_name, label="reviewer")
    if freelancer:
        meet.sandbox.join(call.meet_code, email=_freelancer_email(call), display_name="Simulated freelancer",
                          label="freelancer")


def _decide(db: Session, meet: InProcessSandboxMeet, call: CallSession, simulator: Reviewer, outcome: Outcome,
            codes: list[str], *, settings: Settings, now: dt.datetime) -> OutcomeRecord:
    """The simulator's decision as the dashboard makes it: the ID for a pass, attendance re-read now, the decision."""
    if outcome is Outcome.PASSED:
        record_document(db, call.id, _document(call, now), reviewer_id=simulator.id,
                        pepper=settings.identity_pepper, now=now)
    if outcome in NEEDS_ATTENDANCE:  # as review/claims.py: decide does, from this call's own meeting
        assert call.meet_space is not None
        attendance.apply_attendance(
            db, call.id, meet.attendance(call.meet_space, host=SIMULATED_HOST),
            ttl=dt.timedelta(minutes=settings.session_ttl_minutes), now=now,
            no_show_wait=dt.timedelta(minutes=settings.no_show_wait_minutes),
            abandon_after=dt.timedelta(minutes=settings.abandoned_call_minutes))
    # Never sampled for quality review: no lead should spend time checking a simulation.
    policy = dataclasses.replace(DecisionPolicy.from_settings(settings), pass_sample_rate=0.0)
    return record_outcome(db, call.id, reviewer_id=simulator.id, result=outcome, notes=NOTES, now=now,
                          reason_codes=codes, checklist=dict.fromkeys(policy.checklist, True), policy=policy)


def _document(call: CallSession, now: dt.datetime) -> DocumentForm:
    """An ID document unique to this simulation, so duplicate-identity detection never pairs two simulations."""
    number = "SIM" + call.id.replace("-", "").upper()[:24]
    return DocumentForm.parse({"doc_type": "passport", "issuing_country": "ZZ",
                               "expires_on": (now.date() + dt.timedelta(days=365)).isoformat(),
                               "document_number": number})
