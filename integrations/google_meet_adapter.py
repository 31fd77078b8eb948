"""The real :class:`~integrations.google_meet.MeetGateway`: Meet REST v2 and Calendar v3 via googleapiclient.

Credentials are pluggable (``credentials_for(host, scopes)``, from
:mod:`integrations.google_credentials`): a service account with domain-wide
delegation acting as each host user for Google, anonymous ones for the sandbox
emulator. The Meet API accepts only *user*
credentials, so a service account acting as itself fails with permission
errors; those are turned into a :class:`MeetConfigurationError` that says what
to grant in the Admin console.

Failure mode: **fails closed.** Every failure raises :class:`MeetError` and
nothing is assumed to have happened; callers keep their state and try again
on a later run. The exceptions are the "already done" answers (member or
event already there, nothing live to end, event already gone), which return
normally. Every request has a socket timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import google.auth.exceptions
import google_auth_httplib2
import httplib2
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from integrations.google_credentials import CredentialsFor
from integrations.google_meet import (
    SCOPES,
    AccessType,
    CalendarInvite,
    ConferenceAttendance,
    MeetConfigurationError,
    MeetError,
    MeetingSpace,
    MeetNotFound,
    MeetRateLimited,
    SendUpdates,
    conference_from_api,
    event_body,
    event_time,
    participant_from_api,
    space_body,
)

log = logging.getLogger(__name__)

APIS = {"meet": "v2", "calendar": "v3"}
# 403 reasons that mean "slow down", not "not allowed" (Calendar's usage limits).
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded",
                                "RATE_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"})
# Network failures worth another attempt (httplib2 raises socket errors as they come).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError, httplib2.HttpLib2Error, google.auth.exceptions.TransportError)
# (HTTP status, Google status or ``None`` for any) answers that mean "already done".
Tolerated = tuple[tuple[int, str | None], ...]


# ---------------------------------------------------------------- the gateway

class GoogleMeetGateway:
    """Meet and Calendar as the host users, one set of clients per thread and host.

    httplib2 is not thread-safe, so each thread builds its own clients (and
    ``Http``) per (API, host) and keeps them in a ``threading.local``.
    ``http_factory(host)`` makes the bare transport the credentials wrap
    (``httplib2.Http(timeout=timeout)`` by default); tests pass mocks.
    ``spaces.create`` is not idempotent, so it is retried by this class's own
    loop (5xx, network errors) rather than googleapiclient's; everything else
    uses googleapiclient's retries (``num_retries``). A rate-limit answer to
    ``spaces.create`` is never retried here: see :meth:`create_space`.
    """

    def __init__(self, hosts: Sequence[str], credentials_for: CredentialsFor, *,
                 meet_endpoint: str = "", calendar_endpoint: str = "", timeout: float = 20.0,
                 num_retries: int = 3, create_attempts: int = 4, backoff_base: float = 1.0,
                 backoff_cap: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None,
                 http_factory: Callable[[str], Any] | None = None) -> None:
        if not hosts:
            raise MeetConfigurationError("no Meet host users: set VERIFY_MEET_HOST_USERS")
        self.hosts: tuple[str, ...] = tuple(hosts)
        self._credentials_for = credentials_for
        self._endpoints = {"meet": meet_endpoint, "calendar": calendar_endpoint}
        self._timeout = timeout
        self._num_retries = num_retries
        self._create_attempts = max(1, create_attempts)
        self._backoff = (backoff_base, backoff_cap)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http_factory = http_factory or (lambda host: httplib2.Http(timeout=self._timeout))
        self._local = threading.local()

    # ------------------------------------------------------------ clients

    def _client(self, api: str, host: str) -> Any:
        clients: dict[tuple[str, str], Any] = self._local.__dict__.setdefault("clients", {})
        key = (api, host)
        if key not in clients:
            clients[key] = self._build(api, host)
        return clients[key]

    def _build(self, api: str, host: str) -> Any:
        try:
            credentials = self._credentials_for(host, SCOPES)
        except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            raise MeetConfigurationError(f"cannot make credentials for host user {host}: {exc}") from exc
        # Anonymous credentials cannot be refreshed: a 401 is then an answer, not a cue to refresh.
        refresh = () if isinstance(credentials, AnonymousCredentials) else (401,)
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=self._http_factory(host),
                                                   refresh_status_codes=refresh)
        endpoint = self._endpoints[api]
        return discovery.build(api, APIS[api], http=http, static_discovery=True, cache_discovery=False,
                               client_options={"api_endpoint": endpoint} if endpoint else None)

    def _meet(self, host: str) -> Any:
        return self._client("meet", host)

    def _calendar(self, host: str) -> Any:
        return self._client("calendar", host)

    # ------------------------------------------------------------ Meet

    def create_space(self, *, host: str, access_type: AccessType = "RESTRICTED") -> MeetingSpace:
        """Create a verification space as ``host``, retrying 5xx and network errors with backoff.

        A rate-limit answer (429, or a 403 whose reason means "slow down")
        raises at once, without sleeping: Google's creation limit is per
        minute and per host user, so waiting a few seconds inside the
        freelancer's request would rarely help, while another host user (or
        the queue job, a minute later) can create the space now.

        A retry after a lost response may leave an unused space behind; that
        costs quota, never correctness (nobody learns its address).

        Raises: MeetRateLimited (at the first rate-limit answer), MeetConfigurationError, MeetError.
        """
        meet = self._meet(host)
        body = space_body(access_type)
        attempts = self._create_attempts
        for attempt in range(1, attempts + 1):
            try:
                response = meet.spaces().create(body=body).execute(num_retries=0)
            except HttpError as exc:
                error: BaseException = exc
                if _rate_limited(exc):
                    log.warning("Meet spaces.create as %s: attempt %d/%d rate limited (%s); not retried",
                                host, attempt, attempts, _describe(exc))
                    raise self._error(exc, host=host, action="create a Meet space") from exc
                retryable = exc.resp.status >= 500
                retry_after = _retry_after(exc)
            except google.auth.exceptions.RefreshError as exc:
                error, retryable, retry_after = exc, bool(getattr(exc, "retryable", False)), None
            except TRANSIENT_ERRORS as exc:
                error, retryable, retry_after = exc, True, None
            else:
                if attempt > 1:
                    log.info("Meet spaces.create as %s: attempt %d/%d succeeded", host, attempt, attempts)
                try:
                    return MeetingSpace(name=response["name"], meeting_uri=response["meetingUri"],
                                        meeting_code=response.get("meetingCode", ""))
                except (KeyError, TypeError, AttributeError) as exc:
                    raise MeetError(f"Meet answered spaces.create as {host} without a space: {response!r:.300}") \
                        from exc
            if not retryable or attempt == attempts:
                log.warning("Meet spaces.create as %s: attempt %d/%d failed (%s); giving up",
                            host, attempt, attempts, _describe(error))
                raise self._error(error, host=host, action="create a Meet space") from error
            delay = self._delay(attempt, retry_after)
            log.warning("Meet spaces.create as %s: attempt %d/%d failed (%s); retrying in %.2fs",
                        host, attempt, attempts, _describe(error), delay)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def get_space(self, space_name: str, *, host: str) -> dict[str, Any]:
        """The space resource as Google returns it (name, meetingUri, config, activeConference).

        Raises: MeetNotFound, MeetConfigurationError, MeetError.
        """
        response = self._call(lambda: self._meet(host).spaces().get(name=space_name), host=host,
                              action=f"read {space_name}")
        return response or {}

    def add_member(self, space_name: str, email: str, *, host: str, cohost: bool = False) -> None:
        """Add ``email`` as a member (a co-host when ``cohost``); already a member counts as done.

        Raises: MeetNotFound, MeetConfigurationError, MeetError.
        """
        body: dict[str, str] = {"email": email}
        if cohost:
            body["role"] = "COHOST"
        self._call(lambda: self._meet(host).spaces().members().create(parent=space_name, body=body),
                   host=host, action=f"add a member to {space_name}", tolerate=((409, None),))

    def end_active_conference(self, space_name: str, *, host: str | None = None) -> None:
        """End the live conference; nothing live (FAILED_PRECONDITION) or no such space (404) is done.

        Raises: MeetConfigurationError, MeetError.
        """
        host = host or self.hosts[0]
        self._call(lambda: self._meet(host).spaces().endActiveConference(name=space_name, body={}),
                   host=host, action=f"end the conference in {space_name}",
                   tolerate=((400, "FAILED_PRECONDITION"), (404, None)))

    def attendance(self, space_name: str, *, host: str) -> list[ConferenceAttendance]:
        """Every conference held in the space, oldest first, with participants and their sessions.

        Raises: MeetNotFound, MeetConfigurationError, MeetError.
        """
        try:
            return self._attendance(space_name, host=host)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:  # MeetErrors pass through
            raise MeetError(f"cannot read the attendance of {space_name} as {host}: unexpected answer "
                            f"({type(exc).__name__}: {exc})") from exc

    def _attendance(self, space_name: str, *, host: str) -> list[ConferenceAttendance]:
        records = self._meet(host).conferenceRecords()
        participants_api = records.participants()
        result = []
        for record in self._pages(lambda token: records.list(
                filter=f'space.name = "{space_name}"', pageSize=100, pageToken=token),
                "conferenceRecords", host=host, action=f"list the conferences of {space_name}"):
            people = []
            for person in self._pages(lambda token: participants_api.list(
                    parent=record["name"], pageSize=250, pageToken=token),
                    "participants", host=host, action=f"list the participants of {record['name']}"):
                sessions = list(self._pages(lambda token: participants_api.participantSessions().list(
                    parent=person["name"], pageSize=250, pageToken=token),
                    "participantSessions", host=host, action=f"list the sessions of {person['name']}"))
                people.append(participant_from_api(person, sessions))
            result.append(conference_from_api(record, people))
        return sorted(result, key=lambda conference: conference.start)

    # ------------------------------------------------------------ Calendar

    def insert_invite(self, invite: CalendarInvite, *, host: str, send_updates: SendUpdates = "all") -> None:
        """Insert the event on the host's primary calendar; 409 (that id exists) counts as done.

        Raises: MeetConfigurationError, MeetError.
        """
        body = event_body(invite)
        self._call(lambda: self._calendar(host).events().insert(calendarId="primary", body=body,
                                                                sendUpdates=send_updates),
                   host=host, action=f"insert calendar event {invite.event_id}", tolerate=((409, None),))

    def move_invite(self, event_id: str, start: dt.datetime, end: dt.datetime, *, host: str,
                    send_updates: SendUpdates = "all") -> None:
        """Patch the event's start and end.

        Raises: MeetNotFound (404, or 410 for a deleted event), MeetConfigurationError, MeetError.
        """
        body = {"start": event_time(start), "end": event_time(end)}
        self._call(lambda: self._calendar(host).events().patch(calendarId="primary", eventId=event_id, body=body,
                                                               sendUpdates=send_updates),
                   host=host, action=f"move calendar event {event_id}")

    def cancel_invite(self, event_id: str, *, host: str, send_updates: SendUpdates = "all") -> None:
        """Delete the event; already gone (404, 410) counts as done.

        Raises: MeetConfigurationError, MeetError.
        """
        self._call(lambda: self._calendar(host).events().delete(calendarId="primary", eventId=event_id,
                                                                sendUpdates=send_updates),
                   host=host, action=f"delete calendar event {event_id}", tolerate=((404, None), (410, None)))

    # ------------------------------------------------------------ plumbing

    def _call(self, make_request: Callable[[], Any], *, host: str, action: str,
              tolerate: Tolerated = ()) -> dict[str, Any] | None:
        """Execute with googleapiclient's retries; map failures to MeetError, tolerated answers to ``None``."""
        try:
            request = make_request()
        except TypeError as exc:  # googleapiclient rejects a malformed name (e.g. not "spaces/...")
            raise MeetError(f"cannot {action}: {exc}") from exc
        try:
            response = request.execute(num_retries=self._num_retries)
        except HttpError as exc:
            status, google_status, _reason, message = _error_fields(exc)
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

    def _pages(self, make_request: Callable[[str | None], Any], key: str, *, host: str,
               action: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page = self._call(lambda: make_request(token), host=host, action=action) or {}
            yield from page.get(key, [])
            token = page.get("nextPageToken")
            if not token:
                return

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        base, cap = self._backoff
        delay = min(cap, base * 2 ** (attempt - 1))
        delay = delay / 2 + self._rng.random() * delay / 2  # "equal jitter": spread the retries of many workers
        return min(cap, max(delay, retry_after or 0.0))

    def _error(self, exc: BaseException, *, host: str, action: str) -> MeetError:
        if isinstance(exc, HttpError):
            status, google_status, reason, message = _error_fields(exc)
            detail = f"HTTP {status} {google_status or reason or ''}".rstrip() + f": {message}"
            if _rate_limited(exc):
                return MeetRateLimited(f"cannot {action} as {host}: Google is rate limiting ({detail})")
            if status in (401, 403):
                return MeetConfigurationError(self._delegation_help(host, f"cannot {action}: {detail}"))
            if status in (404, 410):
                return MeetNotFound(f"cannot {action} as {host}: not found ({detail})")
            return MeetError(f"cannot {action} as {host}: {detail}")
        if isinstance(exc, google.auth.exceptions.RefreshError) and not getattr(exc, "retryable", False):
            return MeetConfigurationError(self._delegation_help(
                host, f"cannot {action}: Google refused a token for {host} ({_describe(exc)})"))
        return MeetError(f"cannot {action} as {host}: {_describe(exc)}")

    def _delegation_help(self, host: str, what: str) -> str:
        client_id = getattr(self._credentials_for, "client_id", "") or "(the key file's client_id)"
        return (f"{what}. The Meet API accepts only user credentials: the service account must act as the "
                f"host user through domain-wide delegation. In the Google Admin console (Security › Access "
                f"and data control › API controls › Domain-wide delegation) grant client ID {client_id} exactly "
                f"these scopes: {', '.join(SCOPES)}. Check that the host user {host} exists, is active, can use "
                f"Google Meet and Calendar, and owns the space; and that the Meet REST API and the Calendar API "
                f"are enabled in the service account's Cloud project.")


def _error_fields(exc: HttpError) -> tuple[int, str | None, str | None, str]:
    """(HTTP status, Google status such as FAILED_PRECONDITION, first reason, message) of an error answer."""
    status = int(exc.resp.status)
    try:
        error = json.loads(exc.content.decode("utf-8")).get("error", {})
    except (ValueError, AttributeError, UnicodeDecodeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    reasons = [item.get("reason") for item in (error.get("errors") or []) + (error.get("details") or [])
               if isinstance(item, dict) and item.get("reason")]
    message = str(error.get("message") or exc.reason or "")[:300]
    return status, error.get("status"), reasons[0] if reasons else None, message


def _rate_limited(exc: HttpError) -> bool:
    """Google asks us to slow down: 429, or a 403 (Calendar's usage limits) with a rate-limit reason."""
    status, google_status, reason, _message = _error_fields(exc)
    return status == 429 or reason in RATE_LIMIT_REASONS or google_status == "RESOURCE_EXHAUSTED"


def _retry_after(exc: HttpError) -> float | None:
    value = exc.resp.get("retry-after", "") if hasattr(exc.resp, "get") else ""
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HttpError):
        status, google_status, reason, message = _error_fields(exc)
        return f"HTTP {status} {google_status or reason or ''}".rstrip() + f": {message}"
    return f"{type(exc).__name__}: {exc.args[0] if exc.args else exc}"
