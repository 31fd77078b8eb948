"""The sandbox account service: where webhooks go in development when no real receiver is configured.

``make run`` points ``VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL`` here when it is
unset (``verify-service run``), so the outbox delivers instead of waiting.
Each POST is checked as the account service would check it — the Standard
Webhooks signature and timestamp, with ``VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET``
— and kept in the ``sandbox_webhooks`` table (every process sees the same
list, as with the sandbox mailbox). ``GET /sandbox/account-service`` lists the
newest with their type, arrival time, signature verdict and payload.

A valid delivery is answered 204, an invalid one 401 (the relay retries it,
as it would against the real service). Production never registers the
blueprint (:func:`register_sandbox_account_service` is only called outside it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, make_response, render_template, request
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker
from standardwebhooks import Webhook, WebhookVerificationError

from verify_service.db import Base, UTCDateTime, unit_of_work

PATH = "/sandbox/account-service"
PAGE_SIZE = 50
MAX_BODY = 256 * 1024  # far above any event the outbox sends
bp = Blueprint("sandbox_account_service", __name__)
CONFIG_KEY = "sandbox_account_service"  # app.extensions: its ReceiverConfig


class SandboxWebhook(Base):
    """A webhook the sandbox account service received (development and testing only)."""

    __tablename__ = "sandbox_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(sa.String(200))
    event_type: Mapped[str] = mapped_column(sa.String(200))
    attempt: Mapped[str] = mapped_column(sa.String(20))
    signature_valid: Mapped[bool] = mapped_column(sa.Boolean())
    problem: Mapped[str] = mapped_column(sa.String(300))  # why the signature was refused ("" when valid)
    payload: Mapped[str] = mapped_column(sa.Text())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


@dataclasses.dataclass(frozen=True)
class ReceiverConfig:
    sessions: sessionmaker[Session]
    secret: str
    clock: Callable[[], dt.datetime]


@dataclasses.dataclass(frozen=True)
class Verdict:
    valid: bool
    problem: str = ""


def check_signature(secret: str, body: bytes, headers: dict[str, str]) -> Verdict:
    """The Standard Webhooks check of one delivery (signature, and a timestamp within five minutes)."""
    if not secret:
        return Verdict(False, "VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET is not set: nothing to verify with")
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError as exc:
        return Verdict(False, str(exc) or "signature does not match")
    except ValueError as exc:  # e.g. a timestamp header that is not a number
        return Verdict(False, f"unreadable headers: {exc}")
    return Verdict(True)


def event_type(body: bytes) -> str:
    """The ``type`` of a JSON event body, or what it is instead."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return "(not JSON)"
    kind = parsed.get("type") if isinstance(parsed, dict) else None
    return str(kind)[:200] if kind else "(no type)"


def pretty(payload: str) -> str:
    """The payload indented for reading (as received when it is not JSON)."""
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False, sort_keys=True)
    except (ValueError, RecursionError):
        return payload


def received(db: Session, *, limit: int = PAGE_SIZE) -> Sequence[SandboxWebhook]:
    """The newest deliveries first."""
    return db.scalars(sa.select(SandboxWebhook).order_by(SandboxWebhook.id.desc()).limit(limit)).all()


def _config() -> ReceiverConfig:
    config: ReceiverConfig = current_app.extensions[CONFIG_KEY]
    return config


@bp.post(PATH)
def receive() -> Response:
    config = _config()
    body = request.get_data(cache=False)[:MAX_BODY]
    headers = {name.lower(): value for name, value in request.headers.items()}
    verdict = check_signature(config.secret, body, headers)
    with unit_of_work(config.sessions) as db:
        db.add(SandboxWebhook(webhook_id=headers.get("webhook-id", "")[:200], event_type=event_type(body),
                              attempt=headers.get("webhook-attempt", "")[:20], signature_valid=verdict.valid,
                              problem=verdict.problem[:300], payload=body.decode("utf-8", errors="replace"),
                              received_at=config.clock()))
    if verdict.valid:
        return make_response("", 204)
    return make_response({"error": "invalid signature", "detail": verdict.problem}, 401)


@bp.get(PATH)
def received_page() -> Response:
    config = _config()
    with config.sessions() as db:
        found = received(db)
    response = make_response(render_template("sandbox/account_service.html", deliveries=found, pretty=pretty,
                                             path=PATH))
    response.headers["Cache-Control"] = "no-store"
    return response


def register_sandbox_account_service(app: Flask, sessions: sessionmaker[Session], secret: str,
                                     clock: Callable[[], dt.datetime]) -> None:
    """Serve ``/sandbox/account-service`` from ``app`` (never in production), verifying with ``secret``."""
    app.extensions[CONFIG_KEY] = ReceiverConfig(sessions, secret, clock)
    app.register_blueprint(bp)
