"""The ID document a reviewer notes during a call, and "one account per person".

The document number is turned into a keyed fingerprint as soon as it is read
and is never stored, logged, audited or sent: the database keeps
HMAC-SHA256(pepper, normalised number) and the last 4 characters. The pepper
(``VERIFY_IDENTITY_PEPPER``) is a secret outside the database, so a copy of
the database alone cannot be searched for a known number.

When the same fingerprint is already on another account, the reviewer is
warned and ``verification.duplicate_identity_suspected`` is written to the
outbox, once per pair of accounts: only when the two accounts share a
document for the first time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.domain import ensure_open
from verify_service.audit.services import record
from verify_service.calls.models import CallSession
from verify_service.calls.state import SessionStatus
from verify_service.errors import DomainError, FieldError, InvalidInput
from verify_service.review.decisions import is_lead, load_staff, lock_call
from verify_service.review.errors import NotSessionClaimer, SessionNotInProgress
from verify_service.review.models import DocumentType, IdentityDocument
from verify_service.webhooks.outbox import enqueue_event

_SEPARATORS = re.compile(r"[\s\-]+")
_NUMBER = re.compile(r"[A-Z0-9]{4,30}")
_COUNTRY = re.compile(r"[A-Z]{2}")
# First key of pg_advisory_xact_lock(int, int) for fingerprints (see calls/booking.py for the slots' key).
FINGERPRINT_LOCK_NAMESPACE = 0x1D0C


class PepperMissing(DomainError):
    status = 503
    code = "identity_pepper_missing"
    title = "ID documents cannot be recorded right now"


def normalise(number: str) -> str:
    """Upper-case, without spaces and dashes. Raises: InvalidInput (the number itself is never quoted)."""
    value = _SEPARATORS.sub("", number or "").upper()
    if not _NUMBER.fullmatch(value):
        raise InvalidInput.for_field("document_number", "enter 4 to 30 letters and digits (spaces and dashes "
                                                        "are ignored)")
    return value


def fingerprint(pepper: str, normalised: str) -> str:
    """The keyed fingerprint (hex HMAC-SHA256). Raises: PepperMissing when no pepper is configured."""
    if not pepper:
        raise PepperMissing("VERIFY_IDENTITY_PEPPER is not set; ask an administrator")
    return hmac.new(pepper.encode("utf-8"), normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def same_number(pepper: str, number: str, stored: str) -> bool:
    """Whether ``number`` is the one behind ``stored`` (constant time). Raises: InvalidInput, PepperMissing."""
    return hmac.compare_digest(fingerprint(pepper, normalise(number)), stored)


@dataclasses.dataclass(frozen=True)
class DocumentForm:
    """The ID panel's fields, checked. The number is kept out of ``repr`` (tracebacks, logs)."""

    doc_type: DocumentType
    issuing_country: str
    expires_on: dt.date | None
    number: str = dataclasses.field(repr=False)

    @classmethod
    def parse(cls, values: Mapping[str, str]) -> DocumentForm:
        """Raises: InvalidInput, naming every field that is wrong."""
        errors: list[FieldError] = []
        doc_type = next((t for t in DocumentType if t.value == values.get("doc_type", "")), None)
        if doc_type is None:
            errors.append(FieldError("doc_type", "choose the kind of document"))
        country = (values.get("issuing_country") or "").strip().upper()
        if not _COUNTRY.fullmatch(country):
            errors.append(FieldError("issuing_country", "enter the two-letter country code (e.g. PT)"))
        expires_on = None
        if (values.get("expires_on") or "").strip():
            try:
                expires_on = dt.date.fromisoformat(values["expires_on"].strip())
            except ValueError:
                errors.append(FieldError("expires_on", "enter the expiry date as YYYY-MM-DD"))
        number = ""
        try:
            number = normalise(values.get("document_number", ""))
        except InvalidInput as exc:
            errors.extend(exc.errors)
        if errors:
            raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
        assert doc_type is not None
        return cls(doc_type, country, expires_on, number)


@dataclasses.dataclass(frozen=True)
class Recorded:
    document: IdentityDocument
    matching_accounts: tuple[str, ...]  # every other account with this document
    reported: tuple[str, ...]           # the accounts newly paired with this one (an event each)
    expired: bool


def matching_accounts(db: Session, account_id: str, fingerprint_hex: str) -> list[str]:
    """Other accounts with a document of this fingerprint, in order."""
    return list(db.scalars(sa.select(IdentityDocument.account_id).distinct().where(
        IdentityDocument.fingerprint == fingerprint_hex, IdentityDocument.account_id != account_id)
        .order_by(IdentityDocument.account_id)))


def _already_paired(db: Session, account_id: str, other_ids: list[str]) -> set[str]:
    """Of ``other_ids``, those that already shared some document with ``account_id`` (reported then)."""
    mine = sa.select(IdentityDocument.fingerprint).where(IdentityDocument.account_id == account_id)
    return set(db.scalars(sa.select(IdentityDocument.account_id).distinct().where(
        IdentityDocument.account_id.in_(other_ids), IdentityDocument.fingerprint.in_(mine))))


def _lock_fingerprint(db: Session, fingerprint_hex: str) -> None:
    """Serialise recordings of one document (two new accounts at once must still see each other)."""
    if db.get_bind().dialect.name == "postgresql":
        key = int(fingerprint_hex[:8], 16) - 2**31
        db.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.cast(FINGERPRINT_LOCK_NAMESPACE, sa.Integer),
                                                                sa.cast(key, sa.Integer))))


def _store(db: Session, call: CallSession, form: DocumentForm, fp: str, *, reviewer_id: int,
           now: dt.datetime) -> IdentityDocument:
    """Insert the session's document, or replace it (a corrected entry)."""
    document = db.scalar(sa.select(IdentityDocument).where(IdentityDocument.call_session_id == call.id))
    if document is None:
        document = IdentityDocument(account_id=call.account_id, call_session_id=call.id)
        db.add(document)
    document.doc_type, document.issuing_country, document.expires_on = (form.doc_type, form.issuing_country,
                                                                         form.expires_on)
    document.fingerprint, document.last4 = fp, form.number[-4:]
    document.recorded_by_id, document.recorded_at = reviewer_id, now
    db.flush()
    return document


def record_document(db: Session, call_session_id: str, form: DocumentForm, *, reviewer_id: int,
                    pepper: str, now: dt.datetime) -> Recorded:
    """Note the ID shown on a session in progress; look for the same document on other accounts.

    Raises:
        PepperMissing, ReviewerNotFound, ReviewerInactive, CallSessionNotFound, AccountClosed,
        SessionNotInProgress: the session is not in progress.
        NotSessionClaimer: the caller neither claimed the session nor is a lead.
    """
    fp = fingerprint(pepper, form.number)
    reviewer = load_staff(db, reviewer_id)
    account, call = lock_call(db, call_session_id)
    ensure_open(account)
    if call.status is not SessionStatus.IN_PROGRESS:
        raise SessionNotInProgress(f"call session {call.id} is {call.status.value}: the ID can no longer change")
    if call.claimed_by_id != reviewer.id and not is_lead(reviewer):
        raise NotSessionClaimer("claim the session before recording the ID" if call.claimed_by_id is None
                                else "another reviewer has claimed this session")
    _lock_fingerprint(db, fp)  # after the account lock: the one lock order
    others = matching_accounts(db, account.id, fp)
    paired = _already_paired(db, account.id, others)  # before storing: the new row pairs them all
    new_pairs = [other for other in others if other not in paired]
    document = _store(db, call, form, fp, reviewer_id=reviewer.id, now=now)
    call.claim_active_at = now
    actor = f"reviewer:{reviewer.id}"
    record(db, actor=actor, action="identity_document.recorded", account_id=account.id,
           subject_type="identity_document", subject_id=document.id,
           details={"call_session_id": call.id, "doc_type": form.doc_type.value, "matches": len(others)}, now=now)
    for other in new_pairs:
        record(db, actor=actor, action="identity.duplicate_suspected", account_id=account.id,
               subject_type="account", subject_id=other, details={"call_session_id": call.id}, now=now)
        enqueue_event(db, account, "verification.duplicate_identity_suspected", {
            "matching_account_id": other, "call_session_id": call.id,
            "document": {"type": form.doc_type.value, "issuing_country": form.issuing_country}}, now=now)
    db.flush()
    expired = form.expires_on is not None and form.expires_on < now.date()
    return Recorded(document, tuple(others), tuple(new_pairs), expired)
