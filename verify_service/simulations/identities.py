"""The built-in staff identities a simulation acts as: the ``simulator`` and the simulated lead.

They are staff rows (a decision needs a decider, a confirmed fail a second
one) that can never sign in: no password (an unusable hash), no two-step, an
email under ``.invalid`` that no Google account can have, and
``builtin = true``, which every sign-in, reset and lead action filters out
(``staff/passwords.py: find_reviewer``, ``leads/staffing.py: locked_staff``).
They are created on first use, idempotently: an ``INSERT … ON CONFLICT DO
NOTHING`` on the email, so two first simulations at once make one row each.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.db import upsert_insert
from verify_service.staff.models import Reviewer, Role
from verify_service.staff.passwords import unusable_password_hash

SIMULATOR_EMAIL = "simulator@simulations.verify-service.invalid"
SIMULATED_LEAD_EMAIL = "simulated-lead@simulations.verify-service.invalid"
_IDENTITIES = ((SIMULATOR_EMAIL, "Simulator", Role.REVIEWER), (SIMULATED_LEAD_EMAIL, "Simulated lead", Role.LEAD))


def builtin_identities(db: Session, *, now: dt.datetime) -> tuple[Reviewer, Reviewer]:
    """The simulator and the simulated lead, created (and audited) the first time they are needed.

    The caller holds the account's lock already: the audit entry comes last, as in every writer.
    """
    found = []
    for email, name, role in _IDENTITIES:
        inserted = db.execute(upsert_insert(db, Reviewer).values(
            email=email, display_name=name, role=role, password_hash=unusable_password_hash(), active=True,
            builtin=True, created_at=now).on_conflict_do_nothing(index_elements=["email"]))
        reviewer = db.scalars(sa.select(Reviewer).where(Reviewer.email == email)).one()
        if inserted.rowcount:
            record(db, actor="system:simulations", action="reviewer.created", subject_type="reviewer",
                   subject_id=str(reviewer.id), details={"role": role.value, "builtin": True}, now=now)
        found.append(reviewer)
    return found[0], found[1]
