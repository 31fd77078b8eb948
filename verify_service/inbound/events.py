"""Webhooks from the account service: signatures, deduplication and dispatch.

Signatures are Standard Webhooks, checked over the raw body before anything
parses it, with every secret in ``VERIFY_INBOUND_WEBHOOK_SECRETS`` (rotation).

Each accepted ``webhook-id`` is stored in the same transaction as the
event's effect, so an event takes effect exactly once: a redelivery finds
the receipt and changes nothing. When the effect fails with a domain error
the transaction rolls back, receipt included, so the sender's retry can
succeed once the cause is gone (e.g. the account now exists).

A profile or verification event for a closed account is the exception: no
retry could ever apply it (closing is final), and refusing it would only
have the sender retry for days. It is acknowledged as ignored, its receipt
kept, and nothing else changes.
"""

from __future__ import annotations

import binascii
import dataclasses
import datetime as dt
import enum
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from verify_service.accounts import services
from verify_service.accounts.errors import AccountClosed
from verify_service.closure import close_account
from verify_service.accounts.models import Account
from verify_service.errors import Unauthorized
from verify_service.settings import ConfigurationError
from verify_service.inbound import schemas
from verify_service.inbound.models import InboundWebhookReceipt

log = logging.getLogger(__name__)

ACTOR = "account-service:webhook"
# Receipts outlive any sender's retry window (Standard Webhooks senders retry for days).
RECEIPT_RETENTION = dt.timedelta(days=30)
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

_SECRET = re.compile(r"(whsec_)?[A-Za-z0-9+/]+={0,2}")
# Printable ASCII without spaces, and no longer than the receipts' key column.
_WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,255}")
# Whole seconds since the epoch. The library would also take "1e9" or " 17_0…",
# and sign its own rendering of them rather than the header's text.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class Status(str, enum.Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # an event we do not act on (its receipt is stored all the same)


@dataclasses.dataclass(frozen=True)
class Received:
    """What :func:`receive` did with a delivery; ``reason`` says why an event about an account was ignored."""

    status: Status
    reason: Literal["account_closed"] | None = None

    def as_dict(self) -> dict[str, str]:
        body = {"status": self.status.value}
        if self.reason is not None:
            body["reason"] = self.reason
        return body


class WebhookVerifier:
    """Checks Standard Webhooks signatures against every configured secret.

    Build one per app: the secrets are decoded once, here.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        """Raises: ConfigurationError (a secret is not base64, with or without ``whsec_``)."""
        webhooks = []
        for position, secret in enumerate(secrets, start=1):
            try:
                if not _SECRET.fullmatch(secret):
                    raise ValueError("not base64")
                webhooks.append(Webhook(secret))
            except Exception as exc:  # the library raises several kinds; any means "unusable"
                # Never the value: this message ends up in logs and on consoles.
                raise ConfigurationError(
                    f"secret #{position} in VERIFY_INBOUND_WEBHOOK_SECRETS is not a 'whsec_<base64>' secret"
                ) from exc
        self._webhooks = tuple(webhooks)

    def verify(self, body: bytes, headers: Mapping[str, str | None]) -> str:
        """Check the signature of ``body``; returns its ``webhook-id``.

        ``headers`` holds the three ``webhook-*`` headers (missing ones as ``None``).

        Raises:
            Unauthorized: a header is missing or malformed, the timestamp is more
                than 5 minutes away from now, or no signature matches any secret.
        """
        webhook_id, timestamp, signature = (headers.get(name) for name in HEADERS)
        if not (webhook_id and timestamp and signature):
            raise Unauthorized("send the webhook-id, webhook-timestamp and webhook-signature headers")
        if not _WEBHOOK_ID.fullmatch(webhook_id):
            raise Unauthorized("webhook-id must be 1 to 255 printable ASCII characters without spaces")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise Unauthorized("webhook-timestamp must be whole seconds since the Unix epoch")
        candidates = _v1_signatures(signature)
        if not candidates:
            raise Unauthorized("webhook-signature holds no well-formed 'v1,<base64>' signature")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unauthorized("the body is not UTF-8, so its signature cannot be checked") from exc
        checked = {"webhook-id": webhook_id, "webhook-timestamp": timestamp,
                   "webhook-signature": " ".join(candidates)}
        reason = "no inbound webhook secret is configured"
        for webhook in self._webhooks:
            try:
                webhook.verify(text, checked, json_parse=False)
                return webhook_id
            # The library raises plain ValueError/binascii.Error on some malformed input.
            except (WebhookVerificationError, ValueError, binascii.Error) as exc:
                reason = str(exc) or type(exc).__name__
        log.warning("refused an inbound webhook %s: %s", webhook_id, reason)
        raise Unauthorized(f"the webhook signature could not be verified: {reason}")


def _v1_signatures(header: str) -> list[str]:
    """The well-formed ``v1,<base64>`` entries of a ``webhook-signature`` header.

    Other versions are skipped, as the specification asks; malformed entries
    are skipped too, so they cannot hide a valid signature after them.
    """
    kept = []
    for entry in header.split():
        version, _, value = entry.partition(",")
        if version == "v1" and _BASE64.fullmatch(value) and len(value) % 4 == 0:
            kept.append(entry)
    return kept


# ---------------------------------------------------------------- receiving events

def was_received(db: Session, webhook_id: str) -> bool:
    return db.get(InboundWebhookReceipt, webhook_id) is not None


def receive(db: Session, webhook_id: str, event: schemas.Envelope, *, now: dt.datetime) -> Received:
    """Apply ``event`` once, storing its receipt in the same transaction.

    The receipt is inserted before the effect: a concurrent delivery of the
    same ``webhook-id`` then waits on the key (PostgreSQL) and fails at flush
    with ``IntegrityError``; the caller rolls back and answers "duplicate".
    ``account.upserted`` and ``verification.requested`` for a closed account
    are ignored (reason ``account_closed``): the receipt is kept, nothing else
    is written, and the caller commits as usual.

    Raises:
        sqlalchemy.exc.IntegrityError: another transaction stored this webhook-id first.
        AccountNotFound, InvalidInput: from the account services; the caller
            must roll back, so nothing (not even the receipt) is kept.
    """
    if was_received(db, webhook_id):
        return Received(Status.DUPLICATE)
    db.add(InboundWebhookReceipt(webhook_id=webhook_id, type=event.type, received_at=now))
    db.flush()
    if isinstance(event, (schemas.AccountUpserted, schemas.VerificationRequested)):
        if not _apply_unless_closed(db, event, now=now):
            log.info("ignored inbound webhook %s (%s): account %s is closed",
                     webhook_id, event.type, event.data.account_id)
            return Received(Status.IGNORED, "account_closed")
    elif isinstance(event, schemas.AccountClosed):
        _account_closed(db, event.data, now=now)
    else:
        log.info("ignored inbound webhook %s of unknown type %r", webhook_id, event.type)
        return Received(Status.IGNORED)
    log.info("processed inbound webhook %s (%s)", webhook_id, event.type)
    return Received(Status.PROCESSED)


def _apply_unless_closed(db: Session, event: schemas.AccountUpserted | schemas.VerificationRequested, *,
                         now: dt.datetime) -> bool:
    """Apply a profile or verification event; False (nothing written) when its account is closed.

    Raises: AccountNotFound, InvalidInput (from the account services).
    """
    # Checked first, so that a closed account's event is ignored whatever else it holds (a deadline
    # that has passed meanwhile, say).
    if is_closed(db, event.data.account_id):
        return False
    try:
        # A savepoint: an account.closed committed since that read makes the service refuse under the
        # account's lock, and whatever it wrote before refusing goes, while the receipt stays.
        with db.begin_nested():
            if isinstance(event, schemas.AccountUpserted):
                _account_upserted(db, event, now=now)
            else:
                _verification_requested(db, event.data, now=now)
    except AccountClosed:
        return False
    return True


def is_closed(db: Session, account_id: str) -> bool:
    """Whether the account exists and was closed. No lock: closing is final, so a "closed" stays true."""
    return db.scalar(sa.select(Account.closed_at).where(Account.id == account_id)) is not None


def _account_upserted(db: Session, event: schemas.AccountUpserted, *, now: dt.datetime) -> None:
    data = event.data
    profile = services.Profile(
        display_name=data.name, email=str(data.email), country=data.country,
        photo_url=str(data.photo_url) if data.photo_url else None, timezone=data.timezone, locale=data.locale)
    # Retries can deliver an older snapshot after a newer one: the event time decides.
    services.upsert_account(db, data.account_id, profile, actor=ACTOR, now=now, source_time=event.timestamp)


def _verification_requested(db: Session, data: schemas.VerificationRequestedData, *,
                            now: dt.datetime) -> None:
    services.request_verification(db, data.account_id, reason=data.reason, deadline=data.deadline,
                                  place_hold=data.place_hold, actor=ACTOR, now=now)


def _account_closed(db: Session, data: schemas.AccountClosedData, *, now: dt.datetime) -> None:
    closure = close_account(db, data.account_id, actor=ACTOR, now=now)
    if not closure.closed:
        log.info("account.closed for %s: unknown or already closed, nothing to do", data.account_id)


def purge_receipts(db: Session, *, now: dt.datetime, batch: int = 5000) -> int:
    """Delete up to ``batch`` receipts older than :data:`RECEIPT_RETENTION`; returns how many.

    The count is the DELETE's own: rows another run deleted meanwhile are not counted twice.
    """
    cutoff = now - RECEIPT_RETENTION
    ids = db.scalars(sa.select(InboundWebhookReceipt.webhook_id)
                          .where(InboundWebhookReceipt.received_at < cutoff).limit(batch)).all()
    if not ids:
        return 0
    return db.execute(sa.delete(InboundWebhookReceipt)
                           .where(InboundWebhookReceipt.webhook_id.in_(ids))).rowcount or 0
