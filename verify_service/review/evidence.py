"""The rules of evidence: what a decision needs before the decision service records it.

| outcome | needs |
|---|---|
| passed | the freelancer seen in the conference as a signed-in participant; every checklist item confirmed; an ID document recorded and not expired (``VERIFY_PASS_REQUIRES_ID``) |
| failed | the reviewer seen in the call (and a reason code; a lead's second review makes it final) |
| inconclusive | a reason code |
| no_show | the freelancer never seen; the reviewer in the call for at least ``VERIFY_NO_SHOW_WAIT_MINUTES`` |

Attendance is judged as Meet reports it *at decision time*: the decision
workflow (``review/claims.py: decide``) re-reads it just before, and
:func:`missing_evidence` refuses attendance older than
:data:`ATTENDANCE_MAX_AGE`, so neither a refusal nor an acceptance ever rests
on the attendance job's last pass. Reason codes are checked by
``review/reasons.py``. Every missing piece is named, so the reviewer (and an
API caller) learns all of it at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.calls.models import CallSession
from verify_service.calls.state import Outcome
from verify_service.errors import FieldError, InvalidInput
from verify_service.review.models import IdentityDocument
from verify_service.review.reasons import A_DECISION
from verify_service.settings import Settings

# How old the attendance a decision rests on may be: the workflow reads it at `now` itself.
ATTENDANCE_MAX_AGE = dt.timedelta(seconds=5)
# The outcomes whose evidence includes attendance (an inconclusive call may be one Meet could not carry).
NEEDS_ATTENDANCE = frozenset({Outcome.PASSED, Outcome.FAILED, Outcome.NO_SHOW})


@dataclasses.dataclass(frozen=True)
class DecisionPolicy:
    """The settings that shape a decision: the checklist, four eyes, the evidence rules, QA sampling."""

    checklist: tuple[str, ...]
    four_eyes: bool = True
    pass_requires_id: bool = True
    no_show_wait: dt.timedelta = dt.timedelta(minutes=5)
    pass_sample_rate: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DecisionPolicy:
        return cls(checklist=settings.checklist, four_eyes=settings.four_eyes_on_fail,
                   pass_requires_id=settings.pass_requires_id,
                   no_show_wait=dt.timedelta(minutes=settings.no_show_wait_minutes),
                   pass_sample_rate=settings.pass_sample_rate)


class EvidenceMissing(InvalidInput):
    """The decision lacks evidence; ``errors`` names each missing piece."""

    status = 422
    code = "evidence_missing"
    title = "The decision lacks the evidence it needs"


def _minutes(seconds: int) -> str:
    minutes, rest = divmod(max(0, seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _attendance(call: CallSession, result: Outcome, policy: DecisionPolicy, now: dt.datetime) -> list[FieldError]:
    if call.attendance_synced_at is None or now - call.attendance_synced_at > ATTENDANCE_MAX_AGE:
        return [FieldError("attendance", "attendance was not read from Meet at the time of the decision; "
                                         "record it through the dashboard, which reads it first")]
    problems = []
    if result is Outcome.PASSED and call.freelancer_joined_at is None:
        problems.append(FieldError("attendance", "the freelancer has not been seen in the Meet call as a signed-in "
                                                 "participant"))
    if result in (Outcome.FAILED, Outcome.NO_SHOW) and call.reviewer_joined_at is None:
        problems.append(FieldError("attendance", "you (the reviewer) have not been seen in the Meet call"))
    if result is Outcome.NO_SHOW:
        if call.freelancer_joined_at is not None:
            problems.append(FieldError("attendance", "the freelancer was in the call, so this is not a no show"))
        waited = call.reviewer_connected_seconds
        if call.reviewer_joined_at is not None and waited < policy.no_show_wait.total_seconds():
            problems.append(FieldError("attendance", f"wait in the call at least "
                                                     f"{_minutes(int(policy.no_show_wait.total_seconds()))} for the "
                                                     f"freelancer (you have been there {_minutes(waited)})"))
    return problems


def _checklist(answers: Mapping[str, bool] | None, policy: DecisionPolicy) -> list[FieldError]:
    unconfirmed = [question for question in policy.checklist if not (answers or {}).get(question)]
    if not unconfirmed:
        return []
    return [FieldError("checklist", "confirm every checklist item; not confirmed: " + "; ".join(unconfirmed))]


def _document(db: Session, call: CallSession, now: dt.datetime) -> list[FieldError]:
    document = db.scalar(sa.select(IdentityDocument).where(IdentityDocument.call_session_id == call.id))
    if document is None:
        return [FieldError("identity_document", "record the ID document the freelancer showed on the call")]
    if document.expires_on is not None and document.expires_on < now.date():
        return [FieldError("identity_document", f"the ID document expired on {document.expires_on.isoformat()}; "
                                                "a pass needs a valid one")]
    return []


def missing_evidence(db: Session, call: CallSession, result: Outcome, *, checklist: Mapping[str, bool] | None,
                     policy: DecisionPolicy, now: dt.datetime) -> list[FieldError]:
    """What ``result`` still needs on ``call`` (empty: it may be recorded)."""
    problems = _attendance(call, result, policy, now) if result in NEEDS_ATTENDANCE else []
    if result is Outcome.PASSED:
        problems += _checklist(checklist, policy)
        if policy.pass_requires_id:
            problems += _document(db, call, now)
    return problems


def check_evidence(db: Session, call: CallSession, result: Outcome, *, checklist: Mapping[str, bool] | None,
                   policy: DecisionPolicy, now: dt.datetime) -> None:
    """Raises: EvidenceMissing, naming every missing piece."""
    problems = missing_evidence(db, call, result, checklist=checklist, policy=policy, now=now)
    if problems:
        raise EvidenceMissing(f"{A_DECISION[result]} cannot be recorded yet: "
                              + "; ".join(p.message for p in problems), errors=problems)


@dataclasses.dataclass(frozen=True)
class Missing:
    """One piece of a pass's evidence the session page names before the decision (``kind``: what it is about)."""

    kind: str
    text: str


@dataclasses.dataclass(frozen=True)
class PassNeeds:
    """What a pass still needs, as far as the page can tell before the decision (attendance as last read)."""

    missing: tuple[Missing, ...]
    checks_done: int
    checks_left: int


def pass_needs(db: Session, call: CallSession, *, ticked: int, policy: DecisionPolicy,
               now: dt.datetime) -> PassNeeds:
    """The session page's preview of :func:`missing_evidence` for a pass (which still decides, at decision time)."""
    missing = []
    if call.freelancer_joined_at is None:
        missing.append(Missing("attendance", "The freelancer seen in the Meet call, signed in to Google "
                                             "(not seen yet, as Meet last reported)"))
    if policy.pass_requires_id:
        missing += [Missing("identity_document", p.message[:1].upper() + p.message[1:])
                    for p in _document(db, call, now)]
    done = max(0, min(ticked, len(policy.checklist)))
    return PassNeeds(tuple(missing), done, len(policy.checklist) - done)
