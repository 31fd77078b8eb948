"""The demo data ``make run`` seeds (idempotent): one account and one reviewer."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session

from verify_service.accounts.services import Profile, upsert_account
from verify_service.staff.models import Role
from verify_service.staff.passwords import create_reviewer, find_reviewer

DEMO_ACCOUNT_ID = "demo-freelancer"
DEMO_PROFILE = Profile(display_name="Dana Demo", email="dana.demo@example.com", country="PT",
                       timezone="Europe/Lisbon", locale="en")
DEMO_REVIEWER_EMAIL = "demo.reviewer@example.com"


@dataclasses.dataclass(frozen=True)
class DemoSeed:
    account_created: bool
    reviewer_created: bool


def seed_demo(db: Session, *, reviewer_password: str, now: dt.datetime) -> DemoSeed:
    """Create the demo account and reviewer unless they exist; never changes existing ones."""
    from verify_service.accounts.models import Account

    account_created = False
    if db.get(Account, DEMO_ACCOUNT_ID) is None:
        _, account_created = upsert_account(db, DEMO_ACCOUNT_ID, DEMO_PROFILE, actor="seed-demo", now=now)
    reviewer_created = False
    if find_reviewer(db, DEMO_REVIEWER_EMAIL) is None:
        create_reviewer(db, email=DEMO_REVIEWER_EMAIL, display_name="Demo Reviewer", role=Role.REVIEWER,
                        password=reviewer_password, actor="seed-demo", now=now)
        reviewer_created = True
    return DemoSeed(account_created, reviewer_created)
