"""The development secrets: generated once, kept in ``instance/dev-secrets.json``, reused on every start.

Only ``VERIFY_ENV=development`` uses them (``settings.finalize``); production
takes every secret from the environment.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # settings imports this module when it finalizes development settings
    from verify_service.settings import Settings


def with_development_secrets(settings: Settings) -> Settings:
    """Generate (once) and reuse the development secrets kept under ``instance/``."""
    path = settings.instance_dir / "dev-secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    wanted = {
        "secret_key": lambda: secrets.token_urlsafe(48),
        "api_key": lambda: "dev_" + secrets.token_urlsafe(32),
        "inbound_webhook_secret": lambda: "whsec_" + _b64_secret(),
        "account_service_webhook_secret": lambda: "whsec_" + _b64_secret(),
        "demo_reviewer_password": lambda: secrets.token_urlsafe(12),
        "demo_lead_password": lambda: secrets.token_urlsafe(12),
        "identity_pepper": lambda: secrets.token_urlsafe(48),
        "data_key": lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii"),  # a Fernet key
        "audit_checkpoint_key": lambda: secrets.token_urlsafe(48),
    }
    changed = False
    for name, make in wanted.items():
        if name not in stored:
            stored[name] = make()
            changed = True
    if changed:
        settings.instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # Written owner-only: these are real (if local) credentials. A stale tmp file
        # from a crash may have another mode, so set it on the open descriptor.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(stored, handle, indent=2)
        os.replace(tmp, path)
    generated: list[str] = []
    changes: dict[str, Any] = {}
    if not settings.secret_key:
        changes["secret_key"] = stored["secret_key"]
        generated.append("VERIFY_SECRET_KEY")
    if not settings.api_keys:
        changes["api_keys"] = (stored["api_key"],)
        generated.append("VERIFY_API_KEYS")
    if not settings.inbound_webhook_secrets:
        changes["inbound_webhook_secrets"] = (stored["inbound_webhook_secret"],)
        generated.append("VERIFY_INBOUND_WEBHOOK_SECRETS")
    if not settings.account_service_webhook_secret:
        changes["account_service_webhook_secret"] = stored["account_service_webhook_secret"]
        generated.append("VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET")
    if not settings.identity_pepper:
        changes["identity_pepper"] = stored["identity_pepper"]
        generated.append("VERIFY_IDENTITY_PEPPER")
    if not settings.data_keys:
        changes["data_keys"] = (stored["data_key"],)
        generated.append("VERIFY_DATA_KEYS")
    if not settings.audit_checkpoint_key:
        changes["audit_checkpoint_key"] = stored["audit_checkpoint_key"]
        generated.append("VERIFY_AUDIT_CHECKPOINT_KEY")
    return settings.replace(generated=tuple(generated), **changes)


def development_secret(settings: Settings, name: str) -> str | None:
    """A value from ``instance/dev-secrets.json`` (development only), e.g. the demo password."""
    path = settings.instance_dir / "dev-secrets.json"
    if settings.env != "development" or not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get(name)


def _b64_secret() -> str:
    return base64.b64encode(secrets.token_bytes(24)).decode("ascii")
