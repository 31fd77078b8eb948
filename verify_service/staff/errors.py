"""Errors about staff accounts that several features raise."""

from __future__ import annotations

from verify_service.errors import Forbidden, NotFound


class ReviewerNotFound(NotFound):
    code = "reviewer_not_found"
    title = "No such staff account"


class ReviewerInactive(Forbidden):
    code = "reviewer_inactive"
    title = "The staff account is deactivated"


class LeadRequired(Forbidden):
    code = "lead_required"
    title = "Only a lead or an admin may do this"
