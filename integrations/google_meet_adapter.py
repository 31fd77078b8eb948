"""The real :class:`~integrations.google_meet.MeetGateway`: Meet REST v2 and Calendar v3 via googleapiclient.

Credentials are pluggable (``credentials_for(host, scopes)``, from
:mod:`integrations.google_credentials`): a service account with domain-wide
delegation acting as each host user for Google, sandbox credentials naming the
host for the sandbox emulator. The Meet API accepts only *user* credentials, so
a service account acting as itself fails with permission errors; those are
turned into a :class:`MeetConfigurationError` that says what to grant in the
Admin console (:mod:`integrations.google_api`, shared with the events adapter).

Failure mode: **fails closed.** Every failure raises :class:`MeetError` and
nothing is assumed to have happened; callers keep their state and try again
on a later run. The exceptions are the "already done" answers (member or
event already there, nothing live to end, event already gone), which return
normally. Every request has a socket timeout.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import google.auth.exceptions
from googleapiclient.errors import HttpError

from integrations.google_api import (
    TRANSIENT_ERRORS,
    GoogleApiClients,
    describe,
    rate_limited,
    retry_after,
)
from integrations.google_credentials import CredentialsFor
from integrations.google_meet import (
    SCOPES,
    AccessType,
    CalendarInvite,
    ConferenceAttendance,
    ConferenceRecord,
    MeetConfigurationError,
    MeetError,
    MeetingSpace,
    Participant,
    ParticipantSession,
    SendUpdates,
    conference_from_api,
    event_body,
    event_time,
    parse_time,
    participant_from_api,
    space_body,
)
from verify_service.observability.meet_reads import note_read

log = logging.getLogger(__name__)

APIS = {"meet": "v2", "calendar": "v3"}


# ---------------------------------------------------------------- the gateway

class GoogleMeetGateway(GoogleApiClients):
    """Meet and Calendar as the host users, one set of clients per thread and host.

    The clients, calls and error mapping are :class:`~integrations.google_api.GoogleApiClients`'.
    ``spaces.create`` is not idempotent, so it is retried by this class's own
    loop (5xx, network errors) rather than googleapiclient's; everything else
    uses googleapiclient's retries (``num_retries``). A rate-limit answer to
    ``spaces.create`` is never retried here: see :meth:`create_space`. Every
    Meet read request sent (a get, each list page) is counted with
    :func:`~verify_service.observability.meet_reads.note_read`.
    ``delegated_scopes`` adds what other gateways need delegated (the events')
    to what a permission error tells the administrator to grant.
    """

    USER_CAN_USE = "Google Meet and Calendar, and owns the space"
    APIS_TO_ENABLE = "the Meet REST API and the Calendar API"

    def __init__(self, hosts: Sequence[str], credentials_for: CredentialsFor, *,
                 meet_endpoint: str = "", calendar_endpoint: str = "", timeout: float = 20.0,
                 num_retries: int = 3, create_attempts: int = 4, backoff_base: float = 1.0,
                 backoff_cap: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, http_factory: Callable[[str], Any] | None = None,
                 delegated_scopes: Sequence[str] = ()) -> None:
        if not hosts:
            raise MeetConfigurationError("no Meet host users: set VERIFY_MEET_HOST_USERS")
        super().__init__(credentials_for, scopes=SCOPES, apis=APIS,
                         endpoints={"meet": meet_endpoint, "calendar": calendar_endpoint},
                         delegated_scopes=delegated_scopes, timeout=timeout, num_retries=num_retries,
                         http_factory=http_factory)
        self.hosts: tuple[str, ...] = tuple(hosts)
        self._create_attempts = max(1, create_attempts)
        self._backoff = (backoff_base, backoff_cap)
        self._sleep = sleep
        self._rng = rng or random.Random()

    # ------------------------------------------------------------ clients

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
                if rate_limited(exc):
                    log.warning("Meet spaces.create as %s: attempt %d/%d rate limited (%s); not retried",
                                host, attempt, attempts, describe(exc))
                    raise self._error(exc, host=host, action="create a Meet space") from exc
                retryable = exc.resp.status >= 500
                retry_after_s = retry_after(exc)
            except google.auth.exceptions.RefreshError as exc:
                error, retryable, retry_after_s = exc, bool(getattr(exc, "retryable", False)), None
            except TRANSIENT_ERRORS as exc:
                error, retryable, retry_after_s = exc, True, None
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
                            host, attempt, attempts, describe(error))
                raise self._error(error, host=host, action="create a Meet space") from error
            delay = self._delay(attempt, retry_after_s)
            log.warning("Meet spaces.create as %s: attempt %d/%d failed (%s); retrying in %.2fs",
                        host, attempt, attempts, describe(error), delay)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def get_space(self, space_name: str, *, host: str) -> dict[str, Any]:
        """The space resource as Google returns it (name, meetingUri, config, activeConference).

        Raises: MeetNotFound, MeetConfigurationError, MeetError.
        """
        response = self._call(lambda: self._meet(host).spaces().get(name=space_name), host=host,
                              action=f"read {space_name}", on_request=self._reads(host, "spaces.get"))
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
                "conferenceRecords", host=host, action=f"list the conferences of {space_name}",
                on_request=self._reads(host, "conferenceRecords.list")):
            people = []
            for person in self._pages(lambda token: participants_api.list(
                    parent=record["name"], pageSize=250, pageToken=token),
                    "participants", host=host, action=f"list the participants of {record['name']}",
                    on_request=self._reads(host, "participants.list")):
                sessions = list(self._pages(lambda token: participants_api.participantSessions().list(
                    parent=person["name"], pageSize=250, pageToken=token),
                    "participantSessions", host=host, action=f"list the sessions of {person['name']}",
                    on_request=self._reads(host, "participantSessions.list")))
                people.append(participant_from_api(person, sessions))
            result.append(conference_from_api(record, people))
        return sorted(result, key=lambda conference: conference.start)

    def conference(self, record_name: str, *, host: str) -> ConferenceRecord:
        """One conference record (``conferenceRecords.get``): its space and times.

        Raises: MeetNotFound, MeetConfigurationError, MeetError.
        """
        record = self._read(lambda meet: meet.conferenceRecords().get(name=record_name), "conferenceRecords.get",
                            host=host, action=f"read {record_name}")
        return self._parsed(record, record_name, host, lambda: ConferenceRecord(
            name=record["name"], space=record["space"], start=parse_time(record["startTime"]),
            end=parse_time(record["endTime"]) if record.get("endTime") else None))

    def participant(self, participant_name: str, *, host: str) -> Participant:
        """One participant (``participants.get``), with no sessions.

        Raises: MeetNotFound, MeetConfigurationError, MeetError.
        """
        person = self._read(lambda meet: meet.conferenceRecords().participants().get(name=participant_name),
                            "participants.get", host=host, action=f"read {participant_name}")
        return self._parsed(person, participant_name, host, lambda: participant_from_api(person, ()))

    def participant_session(self, session_name: str, *, host: str) -> ParticipantSession:
        """One participant session (``participantSessions.get``), with its name.

        Raises: MeetNotFound, MeetConfigurationError, MeetError.
        """
        session = self._read(lambda meet: meet.conferenceRecords().participants().participantSessions().get(
            name=session_name), "participantSessions.get", host=host, action=f"read {session_name}")
        return self._parsed(session, session_name, host, lambda: ParticipantSession(
            start=parse_time(session["startTime"]),
            end=parse_time(session["endTime"]) if session.get("endTime") else None,
            name=session.get("name") or session_name))

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

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        base, cap = self._backoff
        delay = min(cap, base * 2 ** (attempt - 1))
        delay = delay / 2 + self._rng.random() * delay / 2  # "equal jitter": spread the retries of many workers
        return min(cap, max(delay, retry_after or 0.0))

    def _reads(self, host: str, method: str) -> Callable[[], None]:
        """What counts each Meet read request sent as ``host`` (the per-user read quota)."""
        return lambda: note_read(host, method)

    def _read(self, make_request: Callable[[Any], Any], method: str, *, host: str, action: str) -> dict[str, Any]:
        """One Meet read (a get) as ``host``, counted. Raises: MeetNotFound, MeetConfigurationError, MeetError."""
        return self._call(lambda: make_request(self._meet(host)), host=host, action=action,
                          on_request=self._reads(host, method)) or {}

    @staticmethod
    def _parsed(resource: dict[str, Any], name: str, host: str, parse: Callable[[], Any]) -> Any:
        try:
            return parse()
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise MeetError(f"cannot read {name} as {host}: unexpected answer {resource!r:.300}") from exc
