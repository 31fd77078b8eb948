"""``verify-service keys rotate``: every sealed value at rest, sealed again under the newest data key.

What is sealed (``crypto.Sealer``, under ``VERIFY_DATA_KEYS``):

* ``reviewers.totp_secret`` — staff TOTP secrets. A clear one stored before
  secrets were sealed is sealed here too (the sign-in also seals it when it
  first reads it), so after one run the table holds no clear secret.
* ``idempotency_keys.response_body`` of responses marked ``no-store`` — the
  launch links remembered for ``Idempotency-Key`` replays.

A value already under the newest key is left as it is, so a second run changes
nothing. After a run that found nothing unreadable, the older keys open nothing
still stored and can be removed from ``VERIFY_DATA_KEYS``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.api.idempotency import SEALED
from verify_service.api.models import IdempotencyKey
from verify_service.audit.services import record
from verify_service.crypto import Sealer, Unreadable, looks_sealed
from verify_service.db import for_update
from verify_service.staff.models import Reviewer


@dataclasses.dataclass
class Rotated:
    """What one kind of sealed value came to."""

    what: str
    resealed: int = 0      # was under an older key, now under the newest
    sealed: int = 0        # was in clear (stored before secrets were sealed), now sealed
    current: int = 0       # already under the newest key: left alone
    unreadable: list[str] = dataclasses.field(default_factory=list)  # which rows no configured key opens

    @property
    def changed(self) -> int:
        return self.resealed + self.sealed


@dataclasses.dataclass(frozen=True)
class RotationReport:
    parts: tuple[Rotated, ...]

    @property
    def changed(self) -> int:
        return sum(part.changed for part in self.parts)

    @property
    def unreadable(self) -> list[str]:
        return [row for part in self.parts for row in part.unreadable]


def _rotate(sealer: Sealer, value: str, tally: Rotated, row: str, *, clear_allowed: bool) -> str | None:
    """``value`` sealed under the newest key, or None when it stays as it is (counted in ``tally``)."""
    if not looks_sealed(value):
        if not clear_allowed:
            tally.unreadable.append(row)
            return None
        tally.sealed += 1
        return sealer.seal(value)
    if sealer.is_current(value):
        tally.current += 1
        return None
    try:
        resealed = sealer.reseal(value)
    except Unreadable:
        tally.unreadable.append(row)
        return None
    tally.resealed += 1
    return resealed


def rotate_data_keys(db: Session, sealer: Sealer, *, actor: str, now: dt.datetime) -> RotationReport:
    """Seal every sealed (or legacy clear) value again under the newest data key, in the caller's transaction.

    A value no configured key opens is left alone and named in the report (its key was removed too
    early: that secret is lost, e.g. the staff member must have two-step verification reset).

    Raises:
        KeysUnavailable: no data key is configured.
    """
    secrets = Rotated("staff TOTP secrets")
    # Locked, so a sign-in or a reset meanwhile is not overwritten with the secret read here.
    for reviewer in db.scalars(for_update(db, sa.select(Reviewer).where(Reviewer.totp_secret.is_not(None))
                                               .order_by(Reviewer.id))):
        assert reviewer.totp_secret is not None
        new = _rotate(sealer, reviewer.totp_secret, secrets, f"staff account {reviewer.id}", clear_allowed=True)
        if new is not None:
            reviewer.totp_secret = new

    replays = Rotated("launch links remembered for Idempotency-Key replays")
    # Only sealed bodies mention the key; the text match is a cheap first cut, the check below decides.
    candidates = db.execute(sa.select(IdempotencyKey.id, IdempotencyKey.response_body)
                                 .where(sa.cast(IdempotencyKey.response_body, sa.Text).like(f'%"{SEALED}"%'))
                                 .order_by(IdempotencyKey.id)).all()
    for key_id, body in candidates:
        if not (isinstance(body, dict) and set(body) == {SEALED} and isinstance(body[SEALED], str)):
            continue
        new = _rotate(sealer, body[SEALED], replays, f"idempotency key {key_id}", clear_allowed=False)
        if new is not None:
            # Rows are never changed after they are written, only purged: a row purged meanwhile updates nothing.
            db.execute(sa.update(IdempotencyKey).where(IdempotencyKey.id == key_id)
                            .values(response_body={SEALED: new}))

    report = RotationReport((secrets, replays))
    if report.changed:
        record(db, actor=actor, action="keys.rotated", now=now, subject_type="data_keys",
               details={"keys": sealer.key_count, "resealed": sum(p.resealed for p in report.parts),
                        "sealed_from_clear": sum(p.sealed for p in report.parts),
                        "unreadable": len(report.unreadable)})
    db.flush()
    return report
