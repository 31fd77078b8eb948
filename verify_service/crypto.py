"""The keys of data at rest, built once per app from the settings.

* :class:`Sealer` encrypts the secrets the service must be able to read back
  (staff TOTP secrets, the launch links remembered for ``Idempotency-Key``
  replays) with Fernet (AES-128-CBC and HMAC-SHA256) under ``VERIFY_DATA_KEYS``:
  the first key seals, every key opens, so a key can be rotated in
  (``verify-service keys rotate``) and then removed.
* :func:`derive_key` gives each other use of ``VERIFY_SECRET_KEY`` a key of its own
  (HKDF-SHA256 with the use's label), so that no two uses share one key.

The :class:`Keyring` is held by the registry, which also attaches it to every
database session it makes (:func:`keyring_of`): services already take the
session, so they reach the keys without a new parameter or a global.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.orm import Session, sessionmaker

from verify_service.settings import ConfigurationError, Settings

# Where a session made by the registry carries the app's keyring (Session.info).
SESSION_INFO_KEY = "verify_service.keyring"
# Fernet tokens are url-safe base64 of a version byte 0x80 and a timestamp, so they start "gAAAAA".
_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_\-]+=*")
THROTTLE_LABEL = b"verify-service sign-in throttle keys v1"


class KeysUnavailable(ConfigurationError):
    """A key the operation needs is not configured (only possible outside production); says which."""


class Unreadable(RuntimeError):
    """A sealed value no configured data key opens: the key it was sealed with was removed (or it was altered)."""


def derive_key(secret: str, label: bytes) -> bytes:
    """A 32-byte key for the use named ``label``, derived from ``secret`` (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret.encode("utf-8"))


def looks_sealed(value: str) -> bool:
    """Whether ``value`` has the form of a Fernet token (a clear base32 TOTP secret never has)."""
    return _TOKEN.fullmatch(value) is not None


class Sealer:
    """Seals text under the newest data key and opens it under any configured one."""

    def __init__(self, keys: Sequence[str]) -> None:
        """Raises: ConfigurationError naming the position of a key that is not a Fernet key (never the key)."""
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(
                    f"VERIFY_DATA_KEYS: key {position} is not a Fernet key (32 url-safe base64-encoded bytes, "
                    "e.g. from `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key()"
                    ".decode())'`)") from exc
        self._newest = fernets[0] if fernets else None
        self._all = MultiFernet(fernets) if fernets else None
        self.key_count = len(fernets)

    @property
    def configured(self) -> bool:
        return self._all is not None

    def _keys(self) -> tuple[Fernet, MultiFernet]:
        if self._newest is None or self._all is None:
            # Outside production only (production refuses to start without keys): never fall back to clear text.
            raise KeysUnavailable("VERIFY_DATA_KEYS is not set: secrets cannot be stored or read without a data "
                                  "key (a comma-separated list of Fernet keys, newest first)")
        return self._newest, self._all

    def seal(self, text: str) -> str:
        """``text`` encrypted under the newest key. Raises: KeysUnavailable."""
        newest, _ = self._keys()
        return newest.encrypt(text.encode("utf-8")).decode("ascii")

    def open_(self, token: str) -> str:
        """The text :meth:`seal` was given.

        Raises:
            KeysUnavailable: no data key is configured.
            Unreadable: no configured key opens ``token``.
        """
        _, every = self._keys()
        try:
            return every.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise Unreadable("no key in VERIFY_DATA_KEYS opens this sealed value: the key it was sealed with "
                             "was removed before `verify-service keys rotate` re-sealed it") from exc

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is sealed under the newest key already (rotation leaves it be).

        Raises:
            KeysUnavailable: no data key is configured.
        """
        newest, _ = self._keys()
        try:
            newest.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def reseal(self, token: str) -> str:
        """``token``'s text sealed again under the newest key.

        Raises:
            KeysUnavailable: no data key is configured.
            Unreadable: no configured key opens ``token``.
        """
        _, every = self._keys()
        try:
            return every.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise Unreadable("no key in VERIFY_DATA_KEYS opens this sealed value") from exc


@dataclasses.dataclass(frozen=True)
class Keyring:
    """Every key the app uses on data it stores or signs, built once from the settings."""

    sealer: Sealer
    _throttle_key: bytes | None
    _checkpoint_key: bytes | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """Raises: ConfigurationError (a data key is malformed), so a bad key stops the app at start-up."""
        return cls(sealer=Sealer(settings.data_keys),
                   _throttle_key=derive_key(settings.secret_key, THROTTLE_LABEL) if settings.secret_key else None,
                   _checkpoint_key=settings.audit_checkpoint_key.encode("utf-8") or None)

    def throttle_key(self) -> bytes:
        """The HMAC key of the sign-in throttle's counters. Raises: KeysUnavailable."""
        if self._throttle_key is None:
            raise KeysUnavailable("VERIFY_SECRET_KEY is not set: the sign-in throttle cannot key its counters")
        return self._throttle_key

    def checkpoint_key(self) -> bytes:
        """The HMAC key of the audit chain's checkpoints. Raises: KeysUnavailable."""
        if self._checkpoint_key is None:
            raise KeysUnavailable("VERIFY_AUDIT_CHECKPOINT_KEY is not set: audit checkpoints cannot be signed "
                                  "or verified")
        return self._checkpoint_key


def attach(sessions: sessionmaker[Session], keyring: Keyring) -> None:
    """Make every session of ``sessions`` carry ``keyring`` (see :func:`keyring_of`)."""
    sessions.configure(info={SESSION_INFO_KEY: keyring})


def keyring_of(db: Session | None) -> Keyring:
    """The keyring of the app whose registry made ``session``.

    Raises:
        KeysUnavailable: ``session`` is None, or was not made by an app's registry.
    """
    keyring = db.info.get(SESSION_INFO_KEY) if db is not None else None
    if not isinstance(keyring, Keyring):
        raise KeysUnavailable("this database session carries no keyring: use the app registry's sessions "
                              "(registry.sessions), which hold the keys of secrets at rest")
    return keyring
