"""The sandbox's Meet, called in process: a :class:`~integrations.google_meet.MeetGateway` over a private store.

The app's sandbox is served over HTTP and shared by everyone who opens its
meeting rooms; the simulations (README, "Testing your integration end to
end") need a Meet of their own instead: one that never reaches Google
whatever ``VERIFY_MEET_BACKEND`` says, that a caller can put people into and
move through time, and whose state lives no longer than one simulated call.
This gateway answers from its own :class:`SandboxGoogle` with the same
resources the HTTP emulator serves, parsed by the same functions the real
adapter uses (``participant_from_api``, ``conference_from_api``), so the
attendance it reports has exactly the shape Google's has.

Only the Meet part a call needs is here (spaces, members, attendance); the
calendar methods raise :class:`MeetError`, since a simulated call is never booked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
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
    conference_from_api,
    parse_time,
    participant_from_api,
    space_body,
)
from integrations.sandbox_google.errors import MeetApiError
from integrations.sandbox_google.store import SandboxGoogle


def _id(name: str, prefix: str) -> str:
    return name.removeprefix(prefix)


class InProcessSandboxMeet:
    """A Meet gateway over its own in-memory sandbox; ``sandbox`` is where people join and leave."""

    def __init__(self, clock: Callable[[], dt.datetime], *, host: str, room_url: str) -> None:
        self.sandbox = SandboxGoogle(clock)
        self.hosts: tuple[str, ...] = (host,)
        self._room_url = room_url

    def create_space(self, *, host: str, access_type: AccessType = "RESTRICTED") -> MeetingSpace:
        resource = self._call(lambda: self.sandbox.meet.create_space(space_body(access_type), self._room_url))
        return MeetingSpace(resource["name"], resource["meetingUri"], resource["meetingCode"])

    def get_space(self, space_name: str, *, host: str) -> dict[str, Any]:
        return self._call(lambda: self.sandbox.meet.get_space(_id(space_name, "spaces/")))

    def add_member(self, space_name: str, email: str, *, host: str, cohost: bool = False) -> None:
        body = {"email": email, **({"role": "COHOST"} if cohost else {})}
        try:
            self.sandbox.meet.create_member(_id(space_name, "spaces/"), body)
        except MeetApiError as exc:
            if exc.status != "ALREADY_EXISTS":  # adding a member twice is done, as with Google
                raise self._error(exc) from exc

    def end_active_conference(self, space_name: str, *, host: str | None = None) -> None:
        try:
            self.sandbox.meet.end_active_conference(_id(space_name, "spaces/"))
        except MeetApiError as exc:
            if exc.status not in ("FAILED_PRECONDITION", "NOT_FOUND"):  # nothing live: what the caller wants
                raise self._error(exc) from exc

    def attendance(self, space_name: str, *, host: str) -> list[ConferenceAttendance]:
        meet = self.sandbox.meet
        records = self._call(lambda: meet.list_records(f'space.name = "{space_name}"', "100", None))
        result = []
        for record in records.get("conferenceRecords", []):
            record_id = _id(record["name"], "conferenceRecords/")
            people = []
            for person in meet.list_participants(record_id, None, "250", None).get("participants", []):
                person_id = person["name"].rsplit("/", 1)[-1]
                sessions = meet.list_sessions(record_id, person_id, None, "250", None).get("participantSessions", [])
                people.append(participant_from_api(person, sessions))
            result.append(conference_from_api(record, people))
        return sorted(result, key=lambda conference: conference.start)

    def conference(self, record_name: str, *, host: str) -> ConferenceRecord:
        record = self._call(lambda: self.sandbox.meet.get_record(_id(record_name, "conferenceRecords/")))
        return ConferenceRecord(record["name"], record["space"], parse_time(record["startTime"]),
                                parse_time(record["endTime"]) if record.get("endTime") else None)

    def participant(self, participant_name: str, *, host: str) -> Participant:
        parts = participant_name.split("/")  # conferenceRecords/{c}/participants/{p}
        if len(parts) != 4:
            raise MeetNotFound(f"no participant {participant_name}")
        return participant_from_api(self._call(lambda: self.sandbox.meet.get_participant(parts[1], parts[3])), ())

    def participant_session(self, session_name: str, *, host: str) -> ParticipantSession:
        parts = session_name.split("/")  # conferenceRecords/{c}/participants/{p}/participantSessions/{s}
        if len(parts) != 6:
            raise MeetNotFound(f"no participant session {session_name}")
        session = self._call(lambda: self.sandbox.meet.get_session(parts[1], parts[3], parts[5]))
        return ParticipantSession(parse_time(session["startTime"]),
                                  parse_time(session["endTime"]) if session.get("endTime") else None, session["name"])

    def insert_invite(self, invite: CalendarInvite, *, host: str, send_updates: SendUpdates = "all") -> None:
        raise MeetError("the in-process sandbox has no calendar")

    def move_invite(self, event_id: str, start: dt.datetime, end: dt.datetime, *, host: str,
                    send_updates: SendUpdates = "all") -> None:
        raise MeetError("the in-process sandbox has no calendar")

    def cancel_invite(self, event_id: str, *, host: str, send_updates: SendUpdates = "all") -> None:
        raise MeetError("the in-process sandbox has no calendar")

    @staticmethod
    def _error(exc: MeetApiError) -> MeetError:
        return MeetNotFound(str(exc)) if exc.status == "NOT_FOUND" else MeetError(str(exc))

    def _call(self, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return action()
        except MeetApiError as exc:
            raise self._error(exc) from exc
