"""What the Google adapters share: clients per thread and host, one way to send a request, Google's errors read.

:class:`~integrations.google_meet_adapter.GoogleMeetGateway` (Meet v2, Calendar v3) and
:class:`~integrations.meet_events_adapter.GoogleMeetEventsGateway` (Workspace Events v1) both act as
each host user with credentials from ``credentials_for(host, scopes)``
(:mod:`integrations.google_credentials`), build googleapiclient's static discovery clients per thread
and host, and turn every failure into a :class:`~integrations.google_meet.MeetError`: a permission
error becomes a :class:`MeetConfigurationError` that says what to delegate in the Admin console.

Failure mode: **fails closed.** A failed request raises; "already done" answers the caller names
(``tolerate``) return ``None``. Every request has a socket timeout.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import google.auth.exceptions
import google_auth_httplib2
import httplib2
from google.auth.credentials import Credentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from integrations.google_credentials import CredentialsFor, refreshable
from integrations.google_meet import MeetConfigurationError, MeetError, MeetNotFound, MeetRateLimited

log = logging.getLogger(__name__)

# 403 reasons that mean "slow down", not "not allowed" (Calendar's usage limits).
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded",
                                "RATE_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"})
# Network failures worth another attempt (httplib2 raises socket errors as they come).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError, httplib2.HttpLib2Error, google.auth.exceptions.TransportError)
# (HTTP status, Google status or ``None`` for any) answers that mean "already done".
Tolerated = tuple[tuple[int, str | None], ...]


class _CountedHttp:
    """The client's transport, calling ``on_request`` before each request it sends (retries too)."""

    def __init__(self, http: Any, on_request: Callable[[], None]) -> None:
        self._http = http
        self._on_request = on_request

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self._on_request()
        return self._http.request(*args, **kwargs)


class GoogleApiClients:
    """Discovery clients acting as host users, one set per thread and host, and the calls through them.

    httplib2 is not thread-safe, so each thread builds its own credentials, clients (and ``Http``)
    per (API, host) and keeps them in a ``threading.local``. ``http_factory(host)`` makes the bare
    transport the credentials wrap (``httplib2.Http(timeout=timeout)`` by default); tests pass mocks.

    ``scopes`` is what a token asks for; ``delegated_scopes`` is everything the service needs
    delegated (what a permission error tells the administrator to grant, in one list: the Admin
    console replaces a client's scopes with the list entered).
    """

    # What a permission error's help says the host user must be able to use, and which APIs to enable.
    USER_CAN_USE = "Google Meet"
    APIS_TO_ENABLE = "the Meet REST API"

    def __init__(self, credentials_for: CredentialsFor, *, scopes: Sequence[str], apis: Mapping[str, str],
                 endpoints: Mapping[str, str], delegated_scopes: Sequence[str] = (), timeout: float = 20.0,
                 num_retries: int = 3, http_factory: Callable[[str], Any] | None = None) -> None:
        self._credentials_for = credentials_for
        self._scopes = tuple(scopes)
        self._delegated = tuple(dict.fromkeys((*delegated_scopes, *scopes)))
        self._apis = dict(apis)
        self._endpoints = dict(endpoints)
        self._timeout = timeout
        self._num_retries = num_retries
        self._http_factory = http_factory or (lambda host: httplib2.Http(timeout=self._timeout))
        self._local = threading.local()

    # ------------------------------------------------------------ clients

    def _credentials(self, host: str) -> Credentials:
        """The credentials acting as ``host`` (this thread's). Raises: MeetConfigurationError."""
        kept: dict[str, Credentials] = self._local.__dict__.setdefault("credentials", {})
        if host not in kept:
            try:
                kept[host] = self._credentials_for(host, self._scopes)
            except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
                raise MeetConfigurationError(f"cannot make credentials for host user {host}: {exc}") from exc
        return kept[host]

    def _client(self, api: str, host: str) -> Any:
        clients: dict[tuple[str, str], Any] = self._local.__dict__.setdefault("clients", {})
        key = (api, host)
        if key not in clients:
            clients[key] = self._build(api, host)
        return clients[key]

    def _build(self, api: str, host: str) -> Any:
        credentials = self._credentials(host)
        # Credentials that cannot be refreshed (anonymous, the sandbox's): a 401 is an answer, not a cue.
        refresh = (401,) if refreshable(credentials) else ()
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=self._http_factory(host),
                                                   refresh_status_codes=refresh)
        endpoint = self._endpoints.get(api)
        return discovery.build(api, self._apis[api], http=http, static_discovery=True, cache_discovery=False,
                               client_options={"api_endpoint": endpoint} if endpoint else None)

    # ------------------------------------------------------------ requests

    def _call(self, make_request: Callable[[], Any], *, host: str, action: str, tolerate: Tolerated = (),
              on_request: Callable[[], None] | None = None) -> dict[str, Any] | None:
        """Execute with googleapiclient's retries; map failures to MeetError, tolerated answers to ``None``.

        ``on_request`` is called for every HTTP request sent for it (each retry too).
        """
        try:
            request = make_request()
        except TypeError as exc:  # googleapiclient rejects a malformed name (e.g. not "spaces/...")
            raise MeetError(f"cannot {action}: {exc}") from exc
        http = _CountedHttp(request.http, on_request) if on_request else None
        try:
            response = request.execute(http=http, num_retries=self._num_retries)
        except HttpError as exc:
            status, google_status, _reason, message = error_fields(exc)
            if any(status == code and name in (None, google_status) for code, name in tolerate):
                log.info("%s as %s: %s %s (%s): already done", action, host, status, google_status, message)
                return None
            raise self._error(exc, host=host, action=action) from exc
        except (google.auth.exceptions.RefreshError, *TRANSIENT_ERRORS) as exc:
            raise self._error(exc, host=host, action=action) from exc
        if response in (None, ""):  # 204 No Content (a delete)
            return None
        if not isinstance(response, dict):  # googleapiclient hands back a body it could not parse as is
            raise MeetError(f"cannot {action} as {host}: unreadable answer {str(response)[:200]!r}")
        return response

    def _pages(self, make_request: Callable[[str | None], Any], key: str, *, host: str, action: str,
               on_request: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page = self._call(lambda: make_request(token), host=host, action=action, on_request=on_request) or {}
            yield from page.get(key, [])
            token = page.get("nextPageToken")
            if not token:
                return

    # ------------------------------------------------------------ errors

    def _error(self, exc: BaseException, *, host: str, action: str) -> MeetError:
        if isinstance(exc, HttpError):
            status, _google_status, _reason, _message = error_fields(exc)
            detail = describe(exc)
            if rate_limited(exc):
                return MeetRateLimited(f"cannot {action} as {host}: Google is rate limiting ({detail})")
            if status in (401, 403):
                return MeetConfigurationError(self._delegation_help(host, f"cannot {action}: {detail}"))
            if status in (404, 410):
                return MeetNotFound(f"cannot {action} as {host}: not found ({detail})")
            return MeetError(f"cannot {action} as {host}: {detail}")
        if isinstance(exc, google.auth.exceptions.RefreshError) and not getattr(exc, "retryable", False):
            return MeetConfigurationError(self._delegation_help(
                host, f"cannot {action}: Google refused a token for {host} ({describe(exc)})"))
        return MeetError(f"cannot {action} as {host}: {describe(exc)}")

    def _delegation_help(self, host: str, what: str) -> str:
        client_id = getattr(self._credentials_for, "client_id", "") or "(the key file's client_id)"
        return (f"{what}. The Meet API accepts only user credentials: the service account must act as the "
                f"host user through domain-wide delegation. In the Google Admin console (Security › Access "
                f"and data control › API controls › Domain-wide delegation) grant client ID {client_id} exactly "
                f"these scopes: {', '.join(self._delegated)}. Check that the host user {host} exists, is active, "
                f"can use {self.USER_CAN_USE}; and that {self.APIS_TO_ENABLE} are enabled in the service "
                f"account's Cloud project.")


def error_fields(exc: HttpError) -> tuple[int, str | None, str | None, str]:
    """(HTTP status, Google status such as FAILED_PRECONDITION, first reason, message) of an error answer."""
    error = error_body(exc)
    reasons = [item.get("reason") for item in (error.get("errors") or []) + (error.get("details") or [])
               if isinstance(item, dict) and item.get("reason")]
    message = str(error.get("message") or exc.reason or "")[:300]
    return int(exc.resp.status), error.get("status"), reasons[0] if reasons else None, message


def error_body(exc: HttpError) -> dict[str, Any]:
    """The ``error`` object of an error answer (empty when the body is not Google's JSON)."""
    try:
        error = json.loads(exc.content.decode("utf-8")).get("error", {})
    except (ValueError, AttributeError, UnicodeDecodeError):
        return {}
    return error if isinstance(error, dict) else {}


def rate_limited(exc: HttpError) -> bool:
    """Google asks us to slow down: 429, or a 403 (Calendar's usage limits) with a rate-limit reason."""
    status, google_status, reason, _message = error_fields(exc)
    return status == 429 or reason in RATE_LIMIT_REASONS or google_status == "RESOURCE_EXHAUSTED"


def retry_after(exc: HttpError) -> float | None:
    value = exc.resp.get("retry-after", "") if hasattr(exc.resp, "get") else ""
    try:
        return float(value) if value else None
    except ValueError:
        return None


def describe(exc: BaseException) -> str:
    if isinstance(exc, HttpError):
        status, google_status, reason, message = error_fields(exc)
        return f"HTTP {status} {google_status or reason or ''}".rstrip() + f": {message}"
    return f"{type(exc).__name__}: {exc.args[0] if exc.args else exc}"
