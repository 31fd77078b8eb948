"""The demo data ``make run`` seeds (idempotent): an account waiting for verification, a reviewer and a lead."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.domain import RequestReason
from verify_service.accounts.models import Account, VerificationRequest
from verify_service.accounts.services import Profile, request_verification, upsert_account
from verify_service.staff.models import Role
from verify_service.staff.passwords import create_reviewer, find_reviewer

DEMO_ACCOUNT_ID = "demo-freelancer"
DEMO_PROFILE = Profile(display_name="Dana Demo", email="dana.demo@example.com", country="PT",
                       timezone="Europe/Lisbon", locale="en")
DEMO_REVIEWER_EMAIL = "demo.reviewer@example.com"
DEMO_LEAD_EMAIL = "demo.lead@example.com"
ACTOR = "seed-demo"


@dataclasses.dataclass(frozen=True)
class DemoSeed:
    account_created: bool
    request_created: bool
    reviewer_created: bool
    lead_created: bool

    def summary(self) -> str:
        """One line for ``seed-demo``: what was made and what was there already."""
        def said(name: str, made: bool) -> str:
            return f"{name} {'created' if made else 'present'}"

        return ", ".join([said("account", self.account_created), said("reviewer", self.reviewer_created),
                          said("lead", self.lead_created),
                          said("open verification request", self.request_created)])


def seed_demo(db: Session, *, reviewer_password: str, lead_password: str, now: dt.datetime) -> DemoSeed:
    """Create what is missing of the demo data; never changes what exists.

    The demo account gets an open verification request (with its hold) once, when it has never had one:
    the README's curl examples then show a blocked account, and the reviewer's queue has someone to call.
    A request the demo has since decided or canceled stays so.
    """
    account_created = False
    if db.get(Account, DEMO_ACCOUNT_ID) is None:
        _, account_created = upsert_account(db, DEMO_ACCOUNT_ID, DEMO_PROFILE, actor=ACTOR, now=now)
    request_created = False
    if db.scalar(sa.select(sa.func.count()).select_from(VerificationRequest)
                 .where(VerificationRequest.account_id == DEMO_ACCOUNT_ID)) == 0:
        _, request_created, _ = request_verification(db, DEMO_ACCOUNT_ID, reason=RequestReason.NEW_ACCOUNT,
                                                     deadline=None, place_hold=True, actor=ACTOR, now=now)
    reviewer_created = _staff(db, DEMO_REVIEWER_EMAIL, "Demo Reviewer", Role.REVIEWER, reviewer_password, now)
    lead_created = _staff(db, DEMO_LEAD_EMAIL, "Demo Lead", Role.LEAD, lead_password, now)
    return DemoSeed(account_created, request_created, reviewer_created, lead_created)


def _staff(db: Session, email: str, name: str, role: Role, password: str, now: dt.datetime) -> bool:
    """Create the staff account unless its email exists; whether it was created."""
    if find_reviewer(db, email) is not None:
        return False
    create_reviewer(db, email=email, display_name=name, role=role, password=password, actor=ACTOR, now=now)
    return True
