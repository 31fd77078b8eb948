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


# Settings field left empty -> the dev-secrets.json entry that fills it.
_FILLS = {"secret_key": "secret_key", "api_keys": "api_key", "inbound_webhook_secrets": "inbound_webhook_secret",
          "account_service_webhook_secret": "account_service_webhook_secret", "identity_pepper": "identity_pepper",
          "data_keys": "data_key", "audit_checkpoint_key": "audit_checkpoint_key"}


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
    for field, key in _FILLS.items():
        if not getattr(settings, field):
            # A list setting (several keys may be valid at once) gets the one generated value.
            changes[field] = (stored[key],) if isinstance(getattr(settings, field), tuple) else stored[key]
            generated.append(f"VERIFY_{field.upper()}")  # the variable that would have set it
    return settings.replace(generated=tuple(generated), **changes)


def development_secret(settings: Settings, name: str) -> str | None:
    """A value from ``instance/dev-secrets.json`` (development only), e.g. the demo password."""
    path = settings.instance_dir / "dev-secrets.json"
    if settings.env != "development" or not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get(name)


def _b64_secret() -> str:
    return base64.b64encode(secrets.token_bytes(24)).decode("ascii")
