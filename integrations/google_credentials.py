"""Who the Meet adapter acts as: each host user through a service account's domain-wide delegation, or nobody.

The Meet API accepts only *user* credentials, so the service account acts as
each host user (``with_subject``) with explicit scopes. The sandbox emulator
takes :class:`SandboxCredentials`, which say who acts (the sandbox records a
space's owner, and a subscription's user, from them), or anonymous ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from google.auth.credentials import AnonymousCredentials, Credentials

from integrations.google_meet import MeetConfigurationError

# ``credentials_for(host, scopes)``: the credentials that act as ``host`` with ``scopes``.
CredentialsFor = Callable[[str, Sequence[str]], Credentials]


class ServiceAccountCredentialsFor:
    """``credentials_for`` acting as each host user through the service account's domain-wide delegation."""

    def __init__(self, key_file: str) -> None:
        from google.oauth2 import service_account

        try:
            self._base = service_account.Credentials.from_service_account_file(key_file)
        except OSError as exc:
            raise MeetConfigurationError(
                f"cannot read the service-account key file VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE={key_file!r}: "
                f"{exc.strerror or exc}") from exc
        except ValueError as exc:  # bad JSON, or not a service-account key (e.g. an OAuth client file)
            raise MeetConfigurationError(
                f"VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE={key_file!r} is not a service-account JSON key "
                f"(create one under IAM › Service accounts › Keys): {exc}") from exc
        with open(key_file, encoding="utf-8") as handle:
            self.client_id: str = str(json.load(handle).get("client_id") or "")
        self.service_account_email: str = self._base.service_account_email

    def __call__(self, host: str, scopes: Sequence[str]) -> Credentials:
        return self._base.with_scopes(list(scopes)).with_subject(host)


def service_account_credentials(key_file: str) -> ServiceAccountCredentialsFor:
    """Credentials for each host user from a service-account key with domain-wide delegation.

    Raises:
        MeetConfigurationError: the file is missing, unreadable or not a service-account key.
    """
    return ServiceAccountCredentialsFor(key_file)


def anonymous_credentials() -> CredentialsFor:
    """No credentials at all: the sandbox emulator then acts for nobody in particular."""
    return lambda host, scopes: AnonymousCredentials()


SANDBOX_TOKEN_PREFIX = "sandbox:"


class SandboxCredentials(Credentials):
    """Always-valid credentials for the sandbox emulator: ``Authorization: Bearer sandbox:<host email>``.

    Nothing is signed or fetched: the sandbox believes the header (it is a sandbox). They never
    expire and cannot be refreshed, so a 401 is an answer, as with anonymous credentials.
    """

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host
        self.token = SANDBOX_TOKEN_PREFIX + host

    def refresh(self, request: object) -> None:
        """Nothing to refresh: the token is the host's email."""


def sandbox_credentials() -> CredentialsFor:
    """Credentials that tell the sandbox emulator which host user acts."""
    return lambda host, scopes: SandboxCredentials(host)


def refreshable(credentials: Credentials) -> bool:
    """Whether a 401 could be cured by refreshing ``credentials`` (not for anonymous or sandbox ones)."""
    return not isinstance(credentials, (AnonymousCredentials, SandboxCredentials))
