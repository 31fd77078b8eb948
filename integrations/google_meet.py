"""Google Meet (REST v2) and Calendar (v3): the interface the service talks to, and its types.

Every verification call is a Meet space created by a *host user* of the
Workspace domain (``VERIFY_MEET_HOST_USERS``); the service acts as that user
through domain-wide delegation. The same :class:`GoogleMeetGateway` code talks
to Google or, with ``VERIFY_MEET_BACKEND=sandbox``, to the local emulator
(:mod:`integrations.sandbox_google`) through the endpoint settings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

SCOPE_MEET = "https://www.googleapis.com/auth/meetings.space.created"
SCOPE_CALENDAR_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPES = (SCOPE_MEET, SCOPE_CALENDAR_EVENTS)

AccessType = Literal["RESTRICTED", "TRUSTED"]
SendUpdates = Literal["all", "externalOnly", "none"]


# ---------------------------------------------------------------- errors

class MeetError(Exception):
    """A Meet or Calendar operation failed; callers log it and try again on a later run."""


class MeetConfigurationError(MeetError):
    """The backend cannot work as configured (credentials, delegation, scopes, host users).

    Retrying will not help until the configuration changes; the message says what to fix.
    """


class MeetNotFound(MeetError):
    """The space, conference record or calendar event no longer exists (404)."""


class MeetRateLimited(MeetError):
    """Google answered 429 (or a rate-limit 403) for a host user: its creation budget is spent for now."""


# ---------------------------------------------------------------- values

@dataclasses.dataclass(frozen=True)
class MeetingSpace:
    name: str          # "spaces/{id}"
    meeting_uri: str   # what the freelancer and the reviewer open
    meeting_code: str  # "abc-mnop-xyz"


@dataclasses.dataclass(frozen=True)
class ParticipantSession:
    start: dt.datetime
    end: dt.datetime | None  # None while still connected
    name: str = ""           # "conferenceRecords/{c}/participants/{p}/participantSessions/{s}" (empty: not known)


@dataclasses.dataclass(frozen=True)
class Participant:
    name: str                                   # "conferenceRecords/{c}/participants/{p}"
    kind: Literal["signed_in", "anonymous", "phone"]
    user: str | None                            # "users/{id}" for signed-in users only
    display_name: str | None
    sessions: tuple[ParticipantSession, ...]


@dataclasses.dataclass(frozen=True)
class ConferenceAttendance:
    """One conference (a continuous use of the space) and who took part."""

    record: str                    # "conferenceRecords/{id}"
    start: dt.datetime
    end: dt.datetime | None        # None while the conference is live
    participants: tuple[Participant, ...]


@dataclasses.dataclass(frozen=True)
class ConferenceRecord:
    """A conference record on its own (what a Meet event names): which space, and when."""

    name: str                      # "conferenceRecords/{id}"
    space: str                     # "spaces/{id}"
    start: dt.datetime
    end: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class CalendarInvite:
    """A calendar event on the host's calendar for a scheduled call."""

    event_id: str                  # client-chosen (see :func:`calendar_event_id`): a retried insert cannot duplicate
    summary: str
    description: str
    start: dt.datetime
    end: dt.datetime
    meeting_uri: str
    attendees: tuple[str, ...]     # emails: the freelancer
    reminder_minutes: tuple[int, ...] = (24 * 60, 15)


def calendar_event_id(session_id: str) -> str:
    """A Calendar event id for a call session: base32hex characters (a–v, 0–9), stable per session."""
    return "vs" + uuid.UUID(session_id).hex


# ---------------------------------------------------------------- the interface

@runtime_checkable
class MeetGateway(Protocol):
    """What the service needs from Google Meet and Calendar.

    ``host`` is the host user to act as; methods that take ``host=None`` use
    the gateway's first host. Every method raises :class:`MeetError`
    (or a subclass) on failure and nothing else.
    """

    hosts: tuple[str, ...]

    def create_space(self, *, host: str, access_type: AccessType = "RESTRICTED") -> MeetingSpace:
        """Create a space configured for verification calls (moderated, nothing recorded).

        Not retried blindly (a create is not idempotent): see the adapter.
        Raises: MeetRateLimited, MeetConfigurationError, MeetError.
        """
        ...

    def get_space(self, space_name: str, *, host: str) -> dict[str, Any]:
        """The space resource as Meet keeps it (its ``config`` shows what Meet applied). Raises: MeetNotFound."""
        ...

    def add_member(self, space_name: str, email: str, *, host: str, cohost: bool = False) -> None:
        """Let ``email`` join without knocking; ``cohost`` makes them a co-host (the reviewer)."""
        ...

    def end_active_conference(self, space_name: str, *, host: str | None = None) -> None:
        """End the live conference in ``space_name``, disconnecting everyone.

        Returns normally when nothing is active or the space is gone: either
        way no conference is running, which is what the caller wants.
        """
        ...

    def attendance(self, space_name: str, *, host: str) -> list[ConferenceAttendance]:
        """Every conference held in ``space_name`` with its participants and their sessions."""
        ...

    def conference(self, record_name: str, *, host: str) -> ConferenceRecord:
        """One conference record (``conferenceRecords.get``): its space and times. Raises: MeetNotFound."""
        ...

    def participant(self, participant_name: str, *, host: str) -> Participant:
        """One participant (``participants.get``), with no sessions. Raises: MeetNotFound."""
        ...

    def participant_session(self, session_name: str, *, host: str) -> ParticipantSession:
        """One participant session (``participantSessions.get``). Raises: MeetNotFound."""
        ...

    def insert_invite(self, invite: CalendarInvite, *, host: str, send_updates: SendUpdates = "all") -> None:
        """Put ``invite`` on the host's calendar; an event with that id already there counts as done."""
        ...

    def move_invite(self, event_id: str, start: dt.datetime, end: dt.datetime, *, host: str,
                    send_updates: SendUpdates = "all") -> None:
        """Reschedule the event. Raises: MeetNotFound when it does not exist."""
        ...

    def cancel_invite(self, event_id: str, *, host: str, send_updates: SendUpdates = "all") -> None:
        """Delete the event; an event already gone counts as done."""
        ...


# ---------------------------------------------------------------- the wire format (Meet v2, Calendar v3)
#
# Pure functions from our values to request bodies and from responses to our
# values, used by the adapter (:mod:`integrations.google_meet_adapter`) and
# checked by its tests.

def space_body(access_type: AccessType = "RESTRICTED") -> dict[str, Any]:
    """The ``spaces.create`` body for a verification call.

    Moderated, chat and presenting for hosts only, and nothing kept: no
    recording, transcript, smart notes or attendance report (the service
    reads attendance through the API and keeps no media of an identity check).
    """
    off = "OFF"
    return {"config": {
        "accessType": access_type,
        "entryPointAccess": "ALL",
        "moderation": "ON",
        "moderationRestrictions": {"chatRestriction": "HOSTS_ONLY", "presentRestriction": "HOSTS_ONLY"},
        "attendanceReportGenerationType": "DO_NOT_GENERATE",
        "artifactConfig": {
            "recordingConfig": {"autoRecordingGeneration": off},
            "transcriptionConfig": {"autoTranscriptionGeneration": off},
            "smartNotesConfig": {"autoSmartNotesGeneration": off},
        },
    }}


def config_differences(actual: Mapping[str, Any], expected: Mapping[str, Any], prefix: str = "config") -> list[str]:
    """Where a space's ``config`` as read back differs from what was asked for."""
    problems = []
    for key, wanted in expected.items():
        path, got = f"{prefix}.{key}", actual.get(key)
        if isinstance(wanted, Mapping):
            problems += config_differences(got if isinstance(got, Mapping) else {}, wanted, path)
        elif got != wanted:
            problems.append(f"{path} is {got!r}, expected {wanted!r}" if got is not None
                            else f"{path} is not set, expected {wanted!r}")
    return problems


def event_time(value: dt.datetime) -> dict[str, str]:
    """A Calendar ``start``/``end`` in UTC.

    Raises:
        ValueError: ``value`` is naive (a programming error: the service works in aware UTC).
    """
    if value.tzinfo is None:
        raise ValueError(f"calendar times must be timezone-aware, got {value!r}")
    utc = value.astimezone(dt.timezone.utc).replace(microsecond=0)
    return {"dateTime": utc.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}


def event_body(invite: CalendarInvite) -> dict[str, Any]:
    """The ``events.insert`` body: the Meet link in location and description, our reminders, guests read-only.

    Reminders of an hour or more go by email (the day before), shorter ones pop up.
    """
    description = invite.description
    if invite.meeting_uri not in description:
        description = f"{description}\n\nJoin with Google Meet: {invite.meeting_uri}".lstrip()
    return {
        "id": invite.event_id,
        "summary": invite.summary,
        "description": description,
        "location": invite.meeting_uri,
        "start": event_time(invite.start),
        "end": event_time(invite.end),
        "attendees": [{"email": email} for email in invite.attendees],
        "reminders": {"useDefault": False, "overrides": [
            {"method": "email" if minutes >= 60 else "popup", "minutes": minutes}
            for minutes in invite.reminder_minutes]},
        "guestsCanModify": False,
    }


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: str) -> dt.datetime:
    """An RFC 3339 time as Google writes it (``Z``, up to nanoseconds) as an aware datetime."""
    text = _FRACTION.sub(r"\1", value.strip().upper().replace("Z", "+00:00"))
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def participant_from_api(resource: Mapping[str, Any], sessions: Sequence[Mapping[str, Any]]) -> Participant:
    """A ``participants`` resource and its ``participantSessions`` (sessions sorted by start)."""
    if "signedinUser" in resource:
        kind, who = "signed_in", resource["signedinUser"]
    elif "phoneUser" in resource:
        kind, who = "phone", resource["phoneUser"]
    else:
        kind, who = "anonymous", resource.get("anonymousUser") or {}
    spans = sorted((ParticipantSession(parse_time(s["startTime"]), parse_time(s["endTime"]) if s.get("endTime")
                                       else None, s.get("name") or "") for s in sessions if s.get("startTime")),
                   key=lambda session: session.start)
    return Participant(name=resource["name"], kind=kind,  # type: ignore[arg-type]
                       user=who.get("user") if kind == "signed_in" else None,
                       display_name=who.get("displayName"), sessions=tuple(spans))


def conference_from_api(record: Mapping[str, Any], participants: Sequence[Participant]) -> ConferenceAttendance:
    """A ``conferenceRecords`` resource and its participants."""
    return ConferenceAttendance(record=record["name"], start=parse_time(record["startTime"]),
                                end=parse_time(record["endTime"]) if record.get("endTime") else None,
                                participants=tuple(participants))


# ---------------------------------------------------------------- a live check (the CLI's meet-check)

def meet_check(gateway: MeetGateway, host: str) -> list[str]:
    """Create a space as ``host``, read it back, end it; the problems found (empty: all is well).

    The test space stays behind (the API cannot delete spaces); nobody knows its address.
    Since the token asks for every scope at once, a successful create also proves the
    Calendar scope is delegated.
    """
    try:
        space = gateway.create_space(host=host)  # RESTRICTED, the strictest setting
    except MeetError as exc:
        return [f"creating a Meet space as {host} failed: {exc}"]
    problems = []
    try:
        resource = gateway.get_space(space.name, host=host)
    except MeetError as exc:
        problems.append(f"reading back {space.name} as {host} failed: {exc}")
    else:
        problems += [f"{space.name}: {difference} (does {host}'s Workspace edition support it?)"
                     for difference in config_differences(resource.get("config") or {},
                                                          space_body("RESTRICTED")["config"])]
    try:
        gateway.end_active_conference(space.name, host=host)
    except MeetError as exc:
        problems.append(f"ending the conference in {space.name} as {host} failed: {exc}")
    return problems
