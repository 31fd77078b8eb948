"""The Meet emulator's records and the JSON Google would render for them.

Google writes proto3 JSON: fields that are unset (and lists that are empty)
are left out, not sent as ``null`` or ``[]``; so does the emulator.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
from typing import Any

from integrations.sandbox_google.errors import invalid
from integrations.sandbox_google.listing import timestamp

# What Google fills in for a field left unset (or *_UNSPECIFIED) on create.
DEFAULT_CONFIG: dict[str, Any] = {
    "accessType": "TRUSTED",
    "entryPointAccess": "ALL",
    "moderation": "OFF",
    "moderationRestrictions": {"chatRestriction": "NO_RESTRICTION", "reactionRestriction": "NO_RESTRICTION",
                               "presentRestriction": "NO_RESTRICTION", "defaultJoinAsViewerType": "OFF"},
    "attendanceReportGenerationType": "DO_NOT_GENERATE",
    "artifactConfig": {"recordingConfig": {"autoRecordingGeneration": "OFF"},
                       "transcriptionConfig": {"autoTranscriptionGeneration": "OFF"},
                       "smartNotesConfig": {"autoSmartNotesGeneration": "OFF"}},
}
RECORD_RETENTION = dt.timedelta(days=30)  # Google deletes a record 30 days after the conference ends


@dataclasses.dataclass
class Member:
    id: str
    email: str
    role: str | None  # "COHOST" or None


@dataclasses.dataclass
class Space:
    id: str
    code: str
    uri: str
    config: dict[str, Any]
    members: dict[str, Member] = dataclasses.field(default_factory=dict)
    active: str | None = None  # id of the live conference record
    owner: str | None = None   # the host user (email) who created it; unknown for an anonymous create


@dataclasses.dataclass
class Session:
    id: str
    start: dt.datetime
    end: dt.datetime | None = None


@dataclasses.dataclass
class Participant:
    id: str
    key: str                 # "user:{email}" or "anonymous:{display name}": who counts as the same person
    display_name: str
    email: str | None        # signed-in participants only
    label: str | None        # "freelancer" / "reviewer", for the room page
    sessions: list[Session] = dataclasses.field(default_factory=list)

    @property
    def connected(self) -> bool:
        return any(s.end is None for s in self.sessions)

    @property
    def earliest_start(self) -> dt.datetime:
        return min(s.start for s in self.sessions)

    @property
    def latest_end(self) -> dt.datetime | None:
        """Unset while connected, as Google leaves it."""
        return None if self.connected else max(s.end for s in self.sessions if s.end)


@dataclasses.dataclass
class Record:
    id: str
    space: Space
    start: dt.datetime
    end: dt.datetime | None = None
    participants: dict[str, Participant] = dataclasses.field(default_factory=dict)


def user_id(email: str) -> str:
    """A stable ``users/{id}`` for an email: Google's ids are opaque decimal numbers."""
    digest = hashlib.sha256(email.strip().casefold().encode()).hexdigest()
    return f"users/1{int(digest[:15], 16):020d}"


# ---------------------------------------------------------------- space config

def _merge(base: dict[str, Any], requested: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in requested.items():
        if isinstance(value, dict):
            merged[key] = _merge(merged.get(key, {}), value, defaults.get(key, {}))
        elif isinstance(value, str) and value.endswith("_UNSPECIFIED"):
            merged.pop(key, None)  # "never returned": the default takes its place
            if key in defaults:
                merged[key] = copy.deepcopy(defaults[key])
        else:
            merged[key] = value
    return merged


def fill_config(requested: dict[str, Any]) -> dict[str, Any]:
    """``requested`` with Google's defaults for everything it leaves unset."""
    return _merge(DEFAULT_CONFIG, requested, DEFAULT_CONFIG)


def merge_config(current: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """A patch without an update mask: every field given replaces the current one."""
    return _merge(current, requested, DEFAULT_CONFIG)


def _camel(segment: str) -> str:
    head, *rest = segment.split("_")
    return head + "".join(word.capitalize() for word in rest)


def apply_mask(config: dict[str, Any], requested: dict[str, Any], path: str) -> dict[str, Any]:
    """Apply one update-mask path (``config.accessType`` or ``config.access_type``).

    A masked field missing from the request goes back to its default, as Google does.

    Raises:
        MeetApiError: INVALID_ARGUMENT for a path that is not a field of ``config``.
    """
    segments = [_camel(s) for s in path.split(".")]
    if segments in (["*"], ["config"]):
        return fill_config(requested)
    defaults: Any = DEFAULT_CONFIG
    for segment in segments[1:]:
        if not isinstance(defaults, dict) or segment not in defaults:
            raise invalid(f"Invalid update mask path: {path!r}")
        defaults = defaults[segment]
    if segments[0] != "config" or len(segments) < 2:
        raise invalid(f"Invalid update mask path: {path!r}")
    value: Any = requested
    for segment in segments[1:]:
        value = value.get(segment) if isinstance(value, dict) else None
    if value is None or (isinstance(value, str) and value.endswith("_UNSPECIFIED")):
        value = copy.deepcopy(defaults)
    elif isinstance(value, dict):
        value = _merge(defaults, value, defaults)
    updated = copy.deepcopy(config)
    target = updated
    for segment in segments[1:-1]:
        target = target.setdefault(segment, {})
    target[segments[-1]] = value
    return updated


# ---------------------------------------------------------------- JSON

def listing(key: str, items: list[dict[str, Any]], next_token: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {key: items} if items else {}
    if next_token:
        body["nextPageToken"] = next_token
    return body


def space_json(space: Space) -> dict[str, Any]:
    body = {"name": f"spaces/{space.id}", "meetingUri": space.uri, "meetingCode": space.code,
            "config": copy.deepcopy(space.config)}
    if space.active:
        body["activeConference"] = {"conferenceRecord": f"conferenceRecords/{space.active}"}
    return body


def member_json(space: Space, member: Member) -> dict[str, Any]:
    body = {"name": f"spaces/{space.id}/members/{member.id}", "email": member.email}
    if member.role:
        body["role"] = member.role
    return body


def record_json(record: Record) -> dict[str, Any]:
    body = {"name": f"conferenceRecords/{record.id}", "startTime": timestamp(record.start),
            "space": f"spaces/{record.space.id}"}
    if record.end:
        body["endTime"] = timestamp(record.end)
        body["expireTime"] = timestamp(record.end + RECORD_RETENTION)
    return body


def participant_name(record: Record, person: Participant) -> str:
    return f"conferenceRecords/{record.id}/participants/{person.id}"


def participant_json(record: Record, person: Participant) -> dict[str, Any]:
    body: dict[str, Any] = {"name": participant_name(record, person),
                            "earliestStartTime": timestamp(person.earliest_start)}
    if person.latest_end:
        body["latestEndTime"] = timestamp(person.latest_end)
    if person.email:
        body["signedinUser"] = {"user": user_id(person.email), "displayName": person.display_name}
    else:
        body["anonymousUser"] = {"displayName": person.display_name}
    return body


def session_json(record: Record, person: Participant, session: Session) -> dict[str, Any]:
    body = {"name": f"{participant_name(record, person)}/participantSessions/{session.id}",
            "startTime": timestamp(session.start)}
    if session.end:
        body["endTime"] = timestamp(session.end)
    return body


# ---------------------------------------------------------------- the room page

@dataclasses.dataclass(frozen=True)
class RoomPerson:
    participant: str
    display_name: str
    email: str | None
    label: str | None
    membership: str          # "co-host", "member" or "not a member"
    since: dt.datetime


@dataclasses.dataclass(frozen=True)
class PastConference:
    record: str
    start: dt.datetime
    end: dt.datetime | None
    people: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RoomView:
    meeting_code: str
    space: str
    access_type: str
    members: tuple[Member, ...]
    conference: str | None   # the live conference record, if any
    present: tuple[RoomPerson, ...]
    conferences: tuple[PastConference, ...]


def _membership(space: Space, email: str | None) -> str:
    member = next((m for m in space.members.values() if email and m.email.casefold() == email.casefold()), None)
    if member is None:
        return "not a member"
    return "co-host" if member.role == "COHOST" else "member"


def room_view(space: Space, records: list[Record]) -> RoomView:
    live = next((r for r in records if r.id == space.active), None)
    present = tuple(
        RoomPerson(participant_name(live, p), p.display_name, p.email, p.label, _membership(space, p.email),
                   max(s.start for s in p.sessions if s.end is None))
        for p in (live.participants.values() if live else ()) if p.connected)
    conferences = tuple(PastConference(f"conferenceRecords/{r.id}", r.start, r.end,
                                       tuple(p.display_name for p in r.participants.values()))
                        for r in records)
    return RoomView(space.code, f"spaces/{space.id}", space.config.get("accessType", ""),
                    tuple(copy.copy(m) for m in space.members.values()),
                    f"conferenceRecords/{live.id}" if live else None, present, conferences)
