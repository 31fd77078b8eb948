"""Imports every model, so ``Base.metadata`` is complete (create_all, Alembic)."""

from integrations.sandbox_account_service import SandboxWebhook  # noqa: F401
from integrations.sandbox_mail import SandboxMail  # noqa: F401
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.api.models import IdempotencyKey
from verify_service.audit.models import AuditEntry, AuditHead
from verify_service.calls.models import (CallConference, CallParticipant, CallParticipantSession, CallSession,  # noqa: F401
                                         MeetHost, MeetSpaceCreation, OutcomeRecord)
from verify_service.db import Base
from verify_service.freelancer.models import FreelancerSession, LaunchLink
from verify_service.staff.models import RecoveryCode, RecurringShift, Reviewer, ReviewerShift, SignInThrottle, StaffInvitation, StaffSession  # noqa: F401
from verify_service.ops.models import SchedulerHeartbeat, SchedulerJobRun  # noqa: F401
from verify_service.review.models import IdentityDocument  # noqa: F401
from verify_service.webhooks.models import OutboxEvent, WebhookEndpoint
from verify_service.inbound.models import InboundWebhookReceipt
from verify_service.meet_events.models import MeetEventReceipt, MeetSubscription  # noqa: F401

__all__ = [
    "FreelancerSession", "LaunchLink", "RecurringShift", "ReviewerShift", "StaffSession",
    "CallParticipant", "MeetHost", "MeetSpaceCreation",
    "Account", "AuditEntry", "AuditHead", "Base", "CallSession", "Hold", "IdempotencyKey",
    "InboundWebhookReceipt", "OutboxEvent", "OutcomeRecord", "Reviewer", "VerificationRequest", "WebhookEndpoint",
]
