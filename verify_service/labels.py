"""The one label catalogue: what the pages show for a code (a status, an outcome, a reason, a role...).

Templates never show a code itself: ``value|label("status")`` looks it up
here (an enum member or its value). :func:`register` installs the filters
once, in the app factory. ``tests/unit/test_labels.py`` walks every enum
named in :data:`ENUMS` and fails on a member without a label.

User-supplied strings (names) go through ``|person`` / ``|person_text`` on staff
pages (``verify_service/web_names.py``: isolated, direction controls shown).
"""

from __future__ import annotations

import enum

from flask import Flask

from verify_service.accounts.domain import Capability, HoldKind, RequestReason, RequestStatus, VerificationStatus
from verify_service.calls.models import MeetingStatus
from verify_service.calls.state import EndReason, Outcome, SessionStatus
from verify_service.review.decisions import LEAD_CANCEL_REASONS
from verify_service.review.models import DocumentType
from verify_service.review.reasons import OUTCOME_LABELS, REASONS
from verify_service.staff.models import InvitationPurpose, Role
from verify_service.support.describe import VERDICT_LABELS
from verify_service.web_names import person, person_text
from verify_service.webhooks.models import DeliveryStatus

CATALOGUE: dict[str, dict[str, str]] = {
    "status": {"scheduled": "Booked", "waiting": "Waiting in the queue", "in_progress": "In progress",
               "awaiting_second_review": "Fail waiting for a lead's review", "completed": "Decided",
               "expired": "Expired", "canceled": "Canceled"},
    "end_reason": {"not_joined": "nobody joined in time", "abandoned": "everybody left without a decision",
                   "freelancer": "by the freelancer", "account_closed": "the account was closed",
                   "lead": "by a lead"},
    "outcome": OUTCOME_LABELS,
    "verdict": VERDICT_LABELS,  # the browser check, as the reviewer reads it after the browser line
    "reason": REASONS,
    "cancel_reason": LEAD_CANCEL_REASONS,
    "document": {"passport": "Passport", "national_id": "National ID card", "driving_licence": "Driving licence",
                 "residence_permit": "Residence permit", "other": "Another official ID"},
    "role": {"reviewer": "Reviewer", "lead": "Lead", "admin": "Admin"},
    "verification": {"not_required": "Not required", "required": "Required, not done yet", "verified": "Verified",
                     "failed": "Failed"},
    "hold": {"verification_pending": "Verification pending", "verification_failed": "Verification failed",
             "manual": "Placed by a lead"},
    "capability": {"withdraw_earnings": "Withdraw earnings", "submit_proposals": "Submit proposals",
                   "accept_direct_hires": "Accept direct hires", "appear_in_search": "Appear in search",
                   "change_profile_photo": "Change the profile photo"},
    "request_reason": {"new_account": "New account", "risk_signal": "Risk signal", "profile_change": "Profile change",
                       "manual": "Asked by a lead"},
    "request_status": {"open": "Open", "passed": "Passed", "failed": "Failed", "canceled": "Canceled"},
    "link": {"invitation": "Invitation", "password_reset": "Password reset", "two_step_reset": "Two-step reset"},
    "delivery": {"pending": "Waiting to be delivered", "delivered": "Delivered", "dead": "Dead-lettered"},
    "meeting": {"none": "Not asked for yet", "queued": "Waiting for Meet capacity", "ready": "Ready"},
    "participant": {"signed_in": "signed in to Google", "anonymous": "not signed in", "phone": "by phone"},
    "field": {"reason_codes": "Reasons", "result": "Outcome", "notes": "Notes", "checklist": "Checklist",
              "attendance": "Attendance", "identity_document": "ID document", "doc_type": "Type of document",
              "issuing_country": "Issuing country", "expires_on": "Expiry date", "document_number": "Document number",
              "display_name": "Name", "email": "Email", "role": "Role", "time_zone": "Time zone",
              "weekday": "Day", "start_time": "Start", "end_time": "End", "reviewer_id": "Reviewer",
              "blocks": "What the hold blocks", "reason": "Reason", "kind": "Kind", "code": "Code",
              "password": "Password", "new_password": "New password", "confirm": "The new password again",
              "current_password": "Current password", "form": "Form"},
}
# Every enum a page shows, with the catalogue part that names its members.
ENUMS: dict[str, type[enum.Enum]] = {
    "status": SessionStatus, "end_reason": EndReason, "outcome": Outcome, "document": DocumentType, "role": Role,
    "verification": VerificationStatus, "hold": HoldKind, "capability": Capability, "request_reason": RequestReason,
    "request_status": RequestStatus, "delivery": DeliveryStatus, "meeting": MeetingStatus,
    "link": InvitationPurpose,
}


def label(value: object, kind: str) -> str:
    """The label of ``value`` (an enum member or its value) in the catalogue part ``kind``.

    A code the catalogue does not know (a field of a newer form) reads as words, never as snake_case.
    """
    code = value.value if isinstance(value, enum.Enum) else str(value)
    found = CATALOGUE[kind].get(code)
    return found if found is not None else code.replace("_", " ").capitalize()


def register(app: Flask) -> None:
    """The filters every template may use (called once by the app factory)."""
    app.add_template_filter(label, "label")
    app.add_template_filter(person, "person")
    app.add_template_filter(person_text, "person_text")
    app.add_template_global(CATALOGUE, "label_catalogue")
