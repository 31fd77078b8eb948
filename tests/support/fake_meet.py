"""An in-memory :class:`~integrations.google_meet.MeetGateway` for tests (the product uses the real adapter)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from collections.abc import Sequence
from typing import Any

from integrations.google_meet import (
    AccessType,
    CalendarInvite,
    ConferenceAttendance,
    ConferenceRecord,
    MeetError,
    MeetingSpace,
    MeetNotFound,
    Participant,
    ParticipantSession,
    SendUpdates,
    space_body,
)


@dataclasses.dataclass
class FakeSpace:
    space: MeetingSpace
    host: str
    access_type: AccessType
    members: dict[str, bool] = dataclasses.field(default_factory=dict)  # email -> co-host


class FakeMeetGateway:
    """Keeps spaces, live conferences and calendar events in memory; safe to share between threads.

    Tests start conferences with :meth:`start_conference`, make the next calls
    fail with :meth:`fail_next`, give a space attendance with
    :meth:`add_attendance`, and read :attr:`ended`, :attr:`end_requests`, :attr:`spaces` and
    :attr:`invites` to see what the service did.
    """

    def __init__(self, hosts: Sequence[str] = ("host-1@fake.example", "host-2@fake.example")) -> None:
        self.hosts: tuple[str, ...] = tuple(hosts)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._spaces: dict[str, FakeSpace] = {}
        self._live: set[str] = set()
        self._ended: list[str] = []
        self._end_requests: list[str] = []
        self._attendance: dict[str, list[ConferenceAttendance]] = {}
        self._invites: dict[str, tuple[str, CalendarInvite]] = {}  # event id -> (host, invite)
        self._failures: list[MeetError] = []

    def _fail_if_asked(self) -> None:
        """Raise the next injected failure; the caller holds the lock."""
        if self._failures:
            raise self._failures.pop(0)

    # ------------------------------------------------------------ the gateway: Meet

    def create_space(self, *, host: str, access_type: AccessType = "RESTRICTED") -> MeetingSpace:
        with self._lock:
            self._fail_if_asked()
            number = next(self._ids)
            code = f"fak-{number:04d}-xyz"
            space = MeetingSpace(name=f"spaces/fake{number}", meeting_uri=f"https://meet.google.com/{code}",
                                 meeting_code=code)
            self._spaces[space.name] = FakeSpace(space, host, access_type)
            return space

    def get_space(self, space_name: str, *, host: str) -> dict[str, Any]:
        """The space as Meet would show it: the configuration the service asked for, all of it kept.

        Raises: MeetNotFound for a space this gateway did not create.
        """
        with self._lock:
            self._fail_if_asked()
            if space_name not in self._spaces:
                raise MeetNotFound(f"fake: no space {space_name}")
            kept = self._spaces[space_name]
            return {"name": space_name, "meetingUri": kept.space.meeting_uri, "meetingCode": kept.space.meeting_code,
                    "config": space_body(kept.access_type)["config"]}

    def add_member(self, space_name: str, email: str, *, host: str, cohost: bool = False) -> None:
        """Raises: MeetNotFound for a space this gateway did not create."""
        with self._lock:
            self._fail_if_asked()
            if space_name not in self._spaces:
                raise MeetNotFound(f"fake: no space {space_name}")
            self._spaces[space_name].members.setdefault(email, cohost)

    def end_active_conference(self, space_name: str, *, host: str | None = None) -> None:
        """End the live conference in ``space_name``; nothing live (or no such space) is not an error.

        Raises:
            MeetError: a failure injected with :meth:`fail_next`.
        """
        with self._lock:
            self._end_requests.append(space_name)
            self._fail_if_asked()
            if space_name in self._live:
                self._live.remove(space_name)
                self._ended.append(space_name)

    def attendance(self, space_name: str, *, host: str) -> list[ConferenceAttendance]:
        with self._lock:
            self._fail_if_asked()
            return list(self._attendance.get(space_name, []))

    def conference(self, record_name: str, *, host: str) -> ConferenceRecord:
        """A conference :meth:`add_attendance` gave a space. Raises: MeetNotFound for any other."""
        with self._lock:
            self._fail_if_asked()
            for space, conference in self._conferences():
                if conference.record == record_name:
                    return ConferenceRecord(conference.record, space, conference.start, conference.end)
            raise MeetNotFound(f"fake: no conference record {record_name}")

    def participant(self, participant_name: str, *, host: str) -> Participant:
        """A participant of those conferences, without its sessions. Raises: MeetNotFound."""
        with self._lock:
            self._fail_if_asked()
            for person in self._people():
                if person.name == participant_name:
                    return dataclasses.replace(person, sessions=())
            raise MeetNotFound(f"fake: no participant {participant_name}")

    def participant_session(self, session_name: str, *, host: str) -> ParticipantSession:
        """A session of those participants, by its ``name``. Raises: MeetNotFound."""
        with self._lock:
            self._fail_if_asked()
            found = [s for person in self._people() for s in person.sessions if s.name and s.name == session_name]
            if found:
                return found[0]
            raise MeetNotFound(f"fake: no participant session {session_name}")

    def _conferences(self) -> list[tuple[str, ConferenceAttendance]]:
        """(space, conference) of every conference added; the caller holds the lock."""
        return [(space, conference) for space, held in self._attendance.items() for conference in held]

    def _people(self) -> list[Participant]:
        """Every participant of those conferences; the caller holds the lock."""
        return [person for _space, conference in self._conferences() for person in conference.participants]

    # ------------------------------------------------------------ the gateway: Calendar

    def insert_invite(self, invite: CalendarInvite, *, host: str, send_updates: SendUpdates = "all") -> None:
        with self._lock:
            self._fail_if_asked()
            self._invites.setdefault(invite.event_id, (host, invite))  # the same id again counts as done

    def move_invite(self, event_id: str, start: dt.datetime, end: dt.datetime, *, host: str,
                    send_updates: SendUpdates = "all") -> None:
        """Raises: MeetNotFound when there is no such event."""
        with self._lock:
            self._fail_if_asked()
            if event_id not in self._invites:
                raise MeetNotFound(f"fake: no calendar event {event_id}")
            owner, invite = self._invites[event_id]
            self._invites[event_id] = (owner, dataclasses.replace(invite, start=start, end=end))

    def cancel_invite(self, event_id: str, *, host: str, send_updates: SendUpdates = "all") -> None:
        with self._lock:
            self._fail_if_asked()
            self._invites.pop(event_id, None)

    # ------------------------------------------------------------ for tests

    def start_conference(self, space_name: str) -> None:
        """Someone joined ``space_name``: its conference is live until ended."""
        with self._lock:
            self._live.add(space_name)

    def is_live(self, space_name: str) -> bool:
        with self._lock:
            return space_name in self._live

    def add_attendance(self, space_name: str, conference: ConferenceAttendance) -> None:
        """What :meth:`attendance` reports for ``space_name`` from now on (in the order added)."""
        with self._lock:
            self._attendance.setdefault(space_name, []).append(conference)

    def leave_all(self, space_name: str, at: dt.datetime) -> None:
        """Everyone still connected in ``space_name``'s conferences leaves at ``at`` (and those conferences end)."""
        with self._lock:
            left = []
            for conference in self._attendance.get(space_name, []):
                people = tuple(dataclasses.replace(person, sessions=tuple(
                    dataclasses.replace(s, end=at) if s.end is None else s for s in person.sessions))
                    for person in conference.participants)
                left.append(dataclasses.replace(conference, participants=people, end=conference.end or at))
            self._attendance[space_name] = left
            self._live.discard(space_name)

    @property
    def ended(self) -> list[str]:
        """Spaces whose live conference this gateway ended, in order."""
        with self._lock:
            return list(self._ended)

    @property
    def end_requests(self) -> list[str]:
        """Every space the service asked to end a conference in, in order (a failed ask too)."""
        with self._lock:
            return list(self._end_requests)

    @property
    def spaces(self) -> dict[str, FakeSpace]:
        """Spaces created through this gateway, by name."""
        with self._lock:
            return dict(self._spaces)

    @property
    def invites(self) -> dict[str, CalendarInvite]:
        """Calendar events on the hosts' calendars, by event id."""
        with self._lock:
            return {event_id: invite for event_id, (_host, invite) in self._invites.items()}

    def fail_next(self, error: MeetError | None = None, *, times: int = 1) -> None:
        """Make the next ``times`` calls raise ``error`` (a plain :class:`MeetError` by default)."""
        with self._lock:
            self._failures.extend([error or MeetError("fake: injected failure")] * times)
