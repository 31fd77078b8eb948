"""The real :class:`~integrations.meet_events.MeetEventsGateway`: Google Workspace Events v1 via googleapiclient.

Each host user subscribes itself (its ``users/{id}``, the OpenID ``sub`` of its delegated
credentials) to the Meet events of every space it owns. The clients, credentials and error mapping
are :class:`~integrations.google_api.GoogleApiClients`' (shared with the Meet adapter); with the
sandbox backend the same code talks to the emulator's Workspace Events API.

Writes answer with a long-running ``Operation``: its ``response`` is the subscription when it is
``done``; otherwise the operation is polled a few times with a short backoff, and then the
subscription is read instead.

Failure mode: **fails closed.** Every failure raises :class:`MeetError` (``MeetNotFound`` for a
subscription that is gone, ``MeetConfigurationError`` for missing scopes or delegation); the
"already done" answers (the subscription exists, it is already deleted) return normally.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import google.auth.exceptions
import requests
from google.auth.transport.requests import AuthorizedSession
from googleapiclient.errors import HttpError

from integrations.google_api import GoogleApiClients, error_body, error_fields
from integrations.google_credentials import CredentialsFor, refreshable
from integrations.google_meet import SCOPE_MEET, SCOPES, MeetConfigurationError, MeetError, MeetNotFound
from integrations.meet_events import (
    EVENT_SCOPES,
    MEET_EVENT_TYPES,
    PARTICIPANT_JOINED,
    SUBSCRIPTION_TTL,
    Subscription,
    subscription_from_api,
    user_target,
)

log = logging.getLogger(__name__)

GOOGLE_USERINFO = "https://openidconnect.googleapis.com/v1/userinfo"
# What the events gateway's tokens ask for: reading the host's spaces and their events, and its id.
EVENTS_TOKEN_SCOPES = (SCOPE_MEET, *EVENT_SCOPES)
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
# google.rpc.Code values an Operation's error may carry, and what they mean here.
NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED = 5, 7, 16


class GoogleMeetEventsGateway(GoogleApiClients):
    """Workspace Events subscriptions as the host users, and each host's user id.

    ``operation_polls`` is how often an operation that is not yet done is read again (waiting
    ``poll_base`` seconds, doubling) before the subscription is read instead.
    """

    USER_CAN_USE = "Google Meet"
    APIS_TO_ENABLE = "the Google Workspace Events API and the Meet REST API"

    def __init__(self, credentials_for: CredentialsFor, *, endpoint: str = "",
                 userinfo_endpoint: str = GOOGLE_USERINFO, timeout: float = 20.0, num_retries: int = 3,
                 operation_polls: int = 4, poll_base: float = 0.25, sleep: Callable[[float], None] = time.sleep,
                 http_factory: Callable[[str], Any] | None = None) -> None:
        super().__init__(credentials_for, scopes=EVENTS_TOKEN_SCOPES, apis={"workspaceevents": "v1"},
                         endpoints={"workspaceevents": endpoint}, delegated_scopes=events_scopes(),
                         timeout=timeout, num_retries=num_retries, http_factory=http_factory)
        self._userinfo = userinfo_endpoint or GOOGLE_USERINFO
        self._polls = max(0, operation_polls)
        self._poll_base = poll_base
        self._sleep = sleep

    def _api(self, host: str) -> Any:
        return self._client("workspaceevents", host)

    # ------------------------------------------------------------ the host's user

    def user_of(self, host: str) -> str:
        """``users/`` + the OpenID ``sub`` of ``host``'s credentials (GET the userinfo endpoint).

        Raises: MeetConfigurationError (401/403: the openid scope is not delegated), MeetError.
        """
        action = "read the host user's id"
        credentials = self._credentials(host)
        session = AuthorizedSession(credentials, refresh_status_codes=(401,) if refreshable(credentials) else ())
        try:
            response = session.get(self._userinfo, timeout=self._timeout)
        except google.auth.exceptions.RefreshError as exc:
            raise self._error(exc, host=host, action=action) from exc
        except (requests.RequestException, google.auth.exceptions.TransportError) as exc:
            raise MeetError(f"cannot {action} as {host}: {type(exc).__name__}: {exc}") from exc
        finally:
            session.close()
        if response.status_code in (401, 403):
            raise MeetConfigurationError(self._delegation_help(
                host, f"cannot {action}: the userinfo endpoint answered HTTP {response.status_code}"))
        try:
            response.raise_for_status()
            sub = response.json()["sub"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise MeetError(f"cannot {action} as {host}: HTTP {response.status_code}, "
                            f"{response.text[:200]!r}") from exc
        if not isinstance(sub, str) or not sub:
            raise MeetError(f"cannot {action} as {host}: the userinfo answer has no sub")
        return "users/" + sub

    # ------------------------------------------------------------ subscriptions

    def create_subscription(self, *, host: str, user: str, topic: str,
                            ttl: dt.timedelta = SUBSCRIPTION_TTL) -> Subscription:
        """Subscribe ``topic`` to the Meet events of every space ``user`` owns.

        ``ALREADY_EXISTS`` returns the existing subscription: the one Google names in its
        ``ErrorInfo`` (``current_subscription``), else the one a list finds.

        Raises: MeetConfigurationError, MeetError.
        """
        target = user_target(user)
        body = {"targetResource": target, "eventTypes": list(MEET_EVENT_TYPES),
                "notificationEndpoint": {"pubsubTopic": topic}, "ttl": _duration(ttl)}
        action = f"subscribe to the Meet events of {user}"
        try:
            operation = self._call(lambda: self._api(host).subscriptions().create(body=body),
                                   host=host, action=action) or {}
        except MeetError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, HttpError) and error_fields(cause)[0] == 409):
                raise
            name = _current_subscription(cause) or self._find(host, target, topic)
            log.info("%s as %s: it exists already (%s)", action, host, name)
            return self.get_subscription(name, host=host)
        return self._finish(operation, host=host, action=action,
                            fallback=lambda: self.get_subscription(self._find(host, target, topic), host=host))

    def get_subscription(self, name: str, *, host: str) -> Subscription:
        """Raises: MeetNotFound when it was deleted or expired, MeetConfigurationError, MeetError."""
        resource = self._call(lambda: self._api(host).subscriptions().get(name=name), host=host,
                              action=f"read {name}") or {}
        return _subscription(resource, name, host)

    def renew_subscription(self, name: str, *, host: str, ttl: dt.timedelta = SUBSCRIPTION_TTL) -> Subscription:
        """``subscriptions.patch`` with ``updateMask=ttl``. Raises: MeetNotFound, MeetConfigurationError, MeetError."""
        action = f"renew {name}"
        operation = self._call(lambda: self._api(host).subscriptions().patch(
            name=name, updateMask="ttl", body={"ttl": _duration(ttl)}), host=host, action=action) or {}
        return self._finish(operation, host=host, action=action,
                            fallback=lambda: self.get_subscription(name, host=host))

    def reactivate_subscription(self, name: str, *, host: str) -> Subscription:
        """``subscriptions.reactivate``. Raises: MeetNotFound, MeetConfigurationError, MeetError
        (FAILED_PRECONDITION: it is not suspended, or what suspended it is not fixed)."""
        action = f"reactivate {name}"
        operation = self._call(lambda: self._api(host).subscriptions().reactivate(name=name, body={}),
                               host=host, action=action) or {}
        return self._finish(operation, host=host, action=action,
                            fallback=lambda: self.get_subscription(name, host=host))

    def delete_subscription(self, name: str, *, host: str) -> None:
        """Delete it; one already gone (404) counts as done. Raises: MeetConfigurationError, MeetError."""
        self._call(lambda: self._api(host).subscriptions().delete(name=name), host=host,
                   action=f"delete {name}", tolerate=((404, None),))

    # ------------------------------------------------------------ plumbing

    def _find(self, host: str, target: str, topic: str) -> str:
        """The name of ``target``'s subscription to the Meet events (on ``topic`` if one is). Raises: MeetError."""
        found = list(self._pages(lambda token: self._api(host).subscriptions().list(
            filter=f'event_types:"{PARTICIPANT_JOINED}" AND target_resource="{target}"', pageToken=token),
            "subscriptions", host=host, action=f"list the subscriptions of {target}"))
        found.sort(key=lambda resource: (resource.get("notificationEndpoint") or {}).get("pubsubTopic") != topic)
        if not found or not isinstance(found[0].get("name"), str):
            raise MeetError(f"no subscription of {target} found as {host}, though Google said one exists")
        return str(found[0]["name"])

    def _finish(self, operation: dict[str, Any], *, host: str, action: str,
                fallback: Callable[[], Subscription]) -> Subscription:
        """The subscription a write's Operation resulted in: its response, once done, or ``fallback()``."""
        for attempt in range(self._polls + 1):
            if operation.get("done"):
                return self._result(operation, host=host, action=action, fallback=fallback)
            name = operation.get("name")
            if attempt == self._polls or not isinstance(name, str):
                break
            self._sleep(self._poll_base * 2 ** attempt)
            operation = self._call(lambda: self._api(host).operations().get(name=name), host=host,
                                   action=f"{action} (read {name})") or {}
        log.info("%s as %s: the operation is not done; reading the subscription instead", action, host)
        return fallback()

    def _result(self, operation: dict[str, Any], *, host: str, action: str,
                fallback: Callable[[], Subscription]) -> Subscription:
        error = operation.get("error")
        if isinstance(error, dict):
            detail = f"the operation failed with code {error.get('code')}: {str(error.get('message', ''))[:300]}"
            if error.get("code") == NOT_FOUND:
                raise MeetNotFound(f"cannot {action} as {host}: {detail}")
            if error.get("code") in (PERMISSION_DENIED, UNAUTHENTICATED):
                raise MeetConfigurationError(self._delegation_help(host, f"cannot {action}: {detail}"))
            raise MeetError(f"cannot {action} as {host}: {detail}")
        response = operation.get("response")
        if isinstance(response, dict) and isinstance(response.get("name"), str):
            return _subscription(response, response["name"], host)
        return fallback()


def _duration(ttl: dt.timedelta) -> str:
    """A protobuf Duration in JSON: whole seconds and ``s``."""
    return f"{max(1, int(ttl.total_seconds()))}s"


def _current_subscription(exc: HttpError) -> str | None:
    """The existing subscription an ALREADY_EXISTS answer names (``ErrorInfo.metadata.current_subscription``)."""
    for detail in error_body(exc).get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == ERROR_INFO:
            name = (detail.get("metadata") or {}).get("current_subscription")
            if isinstance(name, str) and name.startswith("subscriptions/"):
                return name
    return None


def _subscription(resource: dict[str, Any], name: str, host: str) -> Subscription:
    try:
        return subscription_from_api(resource)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise MeetError(f"cannot read {name} as {host}: unexpected answer {resource!r:.300}") from exc


def events_scopes() -> Sequence[str]:
    """Every scope the host users' delegation needs with events on (the Meet adapter's and the events')."""
    return tuple(dict.fromkeys((*SCOPES, *EVENT_SCOPES)))
