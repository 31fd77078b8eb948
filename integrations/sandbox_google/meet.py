"""The Meet REST v2 emulator's state: spaces, members, conference records, participants, sessions.

Behaves as Google documents it: a conference record starts when the first
person joins a space with no live conference and ends when the last one
leaves or the host calls ``endActiveConference``; a signed-in person who
rejoins is the same participant with a new session. Every method returns the
JSON body Google would and raises :class:`MeetApiError` as Google would.

What happens in a space (a conference starts or ends, a participant session begins
or ends) is told to ``on_event`` as a :class:`Happened`, in order, with the lock
held: the Workspace Events emulator (:mod:`.events`) turns it into the events the
space owner's subscription delivers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import string
import threading
import uuid
from collections.abc import Callable
from typing import Any

from integrations.meet_events import CONFERENCE_ENDED, CONFERENCE_STARTED, PARTICIPANT_JOINED, PARTICIPANT_LEFT
from integrations.sandbox_google import shapes
from integrations.sandbox_google.discovery import BodyProblem, find_problem
from integrations.sandbox_google.errors import MeetApiError, invalid, not_found
from integrations.sandbox_google.listing import apply_filter, page
from integrations.sandbox_google.shapes import Member, Participant, Record, Session, Space

Clock = Callable[[], dt.datetime]


@dataclasses.dataclass(frozen=True)
class Happened:
    """A Meet event in a space: its type, the data Google's event carries, and when."""

    owner: str | None              # the space owner's email (None: created anonymously)
    type: str                      # integrations.meet_events.CONFERENCE_STARTED…
    data: dict[str, Any]           # {"conferenceRecord": {"name": …}} or {"participantSession": {"name": …}}
    time: dt.datetime

RECORD_FILTER = {
    "space.name": (lambda r: f"spaces/{r.space.id}", False),
    "space.meeting_code": (lambda r: r.space.code, False),
    "start_time": (lambda r: r.start, True),
    "end_time": (lambda r: r.end, True),
}
PARTICIPANT_FILTER = {
    "earliest_start_time": (lambda p: p.earliest_start, True),
    "latest_end_time": (lambda p: p.latest_end, True),
}
SESSION_FILTER = {"start_time": (lambda s: s.start, True), "end_time": (lambda s: s.end, True)}


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _meeting_code() -> str:
    letters = string.ascii_lowercase
    return f"{_random(letters, 3)}-{_random(letters, 4)}-{_random(letters, 3)}"


def _body_error(problem: BodyProblem, package: str) -> MeetApiError:
    if problem.kind == "unknown":
        return invalid(f'Invalid JSON payload received. Unknown name "{problem.value}" at '
                       f"'{problem.path}': Cannot find field.")
    shown = json.dumps(problem.value) if isinstance(problem.value, (str, int, float, bool)) else "a JSON value"
    expected = problem.type_name
    if not expected.startswith("TYPE_"):
        expected = f"type.googleapis.com/{package}.{expected}"
    return invalid(f"Invalid value at '{problem.path}' ({expected}), {shown}")


def check_body(schema: str, body: Any, root: str, *, api: str = "meet.v2",
               package: str = "google.apps.meet.v2") -> None:
    """Raises: MeetApiError INVALID_ARGUMENT where Google's JSON parser would refuse ``body``.

    ``api`` names the discovery document, ``package`` the proto package its messages are in.
    """
    problem = find_problem(api, schema, body, root)
    if problem:
        raise _body_error(problem, package)


class SandboxMeet:
    """Meet spaces and conferences in memory; every method is safe to call from any thread."""

    def __init__(self, clock: Clock, on_event: Callable[[Happened], None] | None = None) -> None:
        self._clock = clock
        self._on_event = on_event
        self._lock = threading.RLock()
        self._spaces: dict[str, Space] = {}
        self._records: dict[str, Record] = {}

    def _now(self) -> dt.datetime:
        return self._clock().astimezone(dt.timezone.utc)

    # ------------------------------------------------------------ spaces

    def create_space(self, body: dict[str, Any], room_url: str, *, owner: str | None = None) -> dict[str, Any]:
        """``spaces.create`` as ``owner`` (a host's email, or ``None``); the meeting URI is ``room_url`` + the code."""
        check_body("Space", body, "space")
        with self._lock:
            space_id = _random(string.ascii_letters + string.digits, 12)
            code = _meeting_code()
            while self._find_code(code):
                code = _meeting_code()
            space = Space(space_id, code, room_url + code, shapes.fill_config(body.get("config") or {}), owner=owner)
            self._spaces[space_id] = space
            return shapes.space_json(space)

    def get_space(self, space_id: str) -> dict[str, Any]:
        """``spaces.get``: by id, or by meeting code (Google's alias, case-insensitive)."""
        with self._lock:
            space = self._spaces.get(space_id) or self._find_code(space_id)
            if space is None:
                raise not_found(f"spaces/{space_id}")
            return shapes.space_json(space)

    def patch_space(self, space_id: str, body: dict[str, Any], update_mask: str | None) -> dict[str, Any]:
        """``spaces.patch``: only ``config`` is mutable; no mask updates every field given."""
        check_body("Space", body, "space")
        with self._lock:
            space = self._space(space_id)
            requested = body.get("config") or {}
            if not update_mask:
                space.config = shapes.merge_config(space.config, requested)
                return shapes.space_json(space)
            for path in update_mask.split(","):
                space.config = shapes.apply_mask(space.config, requested, path.strip())
            return shapes.space_json(space)

    def end_active_conference(self, space_id: str) -> dict[str, Any]:
        """``spaces.endActiveConference``: ends the live conference, disconnecting everyone.

        Raises:
            MeetApiError: NOT_FOUND for an unknown space; FAILED_PRECONDITION when nothing is live.
        """
        with self._lock:
            space = self._space(space_id)
            if space.active is None:
                raise MeetApiError("FAILED_PRECONDITION", "There is no active conference in the space.")
            self._end(self._records[space.active])
            return {}

    # ------------------------------------------------------------ members

    def create_member(self, space_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``spaces.members.create``. Raises: ALREADY_EXISTS for an email already a member."""
        check_body("Member", body, "member")
        email = (body.get("email") or "").strip()
        if not email:
            raise invalid("Invalid member: email is required.")
        role = body.get("role") if body.get("role") != "ROLE_UNSPECIFIED" else None
        with self._lock:
            space = self._space(space_id)
            if any(m.email.casefold() == email.casefold() for m in space.members.values()):
                raise MeetApiError("ALREADY_EXISTS", f"Member {email} already exists in spaces/{space_id}.")
            member = Member(_random(string.ascii_letters + string.digits, 16), email, role)
            space.members[member.id] = member
            return shapes.member_json(space, member)

    def list_members(self, space_id: str, page_size: str | None, token: str | None) -> dict[str, Any]:
        with self._lock:
            space = self._space(space_id)
            items, next_token = page(list(space.members.values()), page_size, token, default=250, maximum=500)
            return shapes.listing("members", [shapes.member_json(space, m) for m in items], next_token)

    def get_member(self, space_id: str, member_id: str) -> dict[str, Any]:
        with self._lock:
            space = self._space(space_id)
            return shapes.member_json(space, self._member(space, member_id))

    def delete_member(self, space_id: str, member_id: str) -> dict[str, Any]:
        with self._lock:
            space = self._space(space_id)
            del space.members[self._member(space, member_id).id]
            return {}

    # ------------------------------------------------------------ conference records

    def list_records(self, filter_text: str | None, page_size: str | None, token: str | None) -> dict[str, Any]:
        """``conferenceRecords.list``, newest first. Raises: INVALID_ARGUMENT for a bad filter."""
        with self._lock:
            records = sorted(self._records.values(), key=lambda r: r.start, reverse=True)
            chosen = apply_filter(records, filter_text, RECORD_FILTER)
            items, next_token = page(chosen, page_size, token, default=25, maximum=100)
            return shapes.listing("conferenceRecords", [shapes.record_json(r) for r in items], next_token)

    def get_record(self, record_id: str) -> dict[str, Any]:
        with self._lock:
            return shapes.record_json(self._record(record_id))

    def list_participants(self, record_id: str, filter_text: str | None, page_size: str | None,
                          token: str | None) -> dict[str, Any]:
        """``participants.list``, latest joiner first."""
        with self._lock:
            record = self._record(record_id)
            people = sorted(record.participants.values(), key=lambda p: p.earliest_start, reverse=True)
            chosen = apply_filter(people, filter_text, PARTICIPANT_FILTER)
            items, next_token = page(chosen, page_size, token, default=100, maximum=250)
            return shapes.listing("participants", [shapes.participant_json(record, p) for p in items], next_token)

    def get_participant(self, record_id: str, participant_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._record(record_id)
            return shapes.participant_json(record, self._participant(record, participant_id))

    def list_sessions(self, record_id: str, participant_id: str, filter_text: str | None,
                      page_size: str | None, token: str | None) -> dict[str, Any]:
        """``participantSessions.list``, latest first."""
        with self._lock:
            record = self._record(record_id)
            person = self._participant(record, participant_id)
            sessions = sorted(person.sessions, key=lambda s: s.start, reverse=True)
            chosen = apply_filter(sessions, filter_text, SESSION_FILTER)
            items, next_token = page(chosen, page_size, token, default=100, maximum=250)
            body = [shapes.session_json(record, person, s) for s in items]
            return shapes.listing("participantSessions", body, next_token)

    def get_session(self, record_id: str, participant_id: str, session_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._record(record_id)
            person = self._participant(record, participant_id)
            session = next((s for s in person.sessions if s.id == session_id), None)
            if session is None:
                raise not_found(f"{shapes.participant_name(record, person)}/participantSessions/{session_id}")
            return shapes.session_json(record, person, session)

    # ------------------------------------------------------------ people in the room

    def join(self, meeting_code: str, *, email: str | None = None, display_name: str,
             signed_in: bool = True, label: str | None = None) -> str:
        """Someone joins the meeting: a new session (and conference, if none is live).

        ``label`` ("freelancer", "reviewer") is shown on the room page only; Meet has no such notion.
        Returns the participant's name (``conferenceRecords/{c}/participants/{p}``).

        Raises:
            MeetApiError: NOT_FOUND for an unknown meeting code.
            ValueError: no display name, or a signed-in join without an email.
        """
        display_name, email = display_name.strip(), (email or "").strip() or None
        if not display_name or (signed_in and not email):
            raise ValueError("a display name is needed, and an email to join signed in")
        with self._lock:
            space = self._find_code(meeting_code)
            if space is None:
                raise not_found(f"meeting {meeting_code}")
            now = self._now()
            record = self._records[space.active] if space.active else self._start(space, now)
            key = f"user:{email.casefold()}" if signed_in and email else f"anonymous:{display_name}"
            person = next((p for p in record.participants.values() if p.key == key), None)
            if person is None:
                person = Participant(str(uuid.uuid4().int)[:19], key, display_name,
                                     email if signed_in else None, label)
                record.participants[person.id] = person
            session = Session(uuid.uuid4().hex, now)
            person.sessions.append(session)
            self._happened(space, PARTICIPANT_JOINED, record, person, session)
            return shapes.participant_name(record, person)

    def leave(self, participant_name: str) -> None:
        """Close the participant's open sessions; the conference ends when nobody is left.

        Raises:
            MeetApiError: NOT_FOUND for an unknown participant.
        """
        parts = participant_name.split("/")
        if len(parts) != 4 or parts[0] != "conferenceRecords" or parts[2] != "participants":
            raise not_found(participant_name)
        with self._lock:
            record = self._record(parts[1])
            person = self._participant(record, parts[3])
            self._close_sessions(record, person, self._now())
            if record.end is None and not any(p.connected for p in record.participants.values()):
                self._end(record)

    def room(self, meeting_code: str) -> shapes.RoomView | None:
        """What the sandbox meeting room page shows, or ``None`` for an unknown code."""
        with self._lock:
            space = self._find_code(meeting_code)
            if space is None:
                return None
            records = sorted((r for r in self._records.values() if r.space is space), key=lambda r: r.start)
            return shapes.room_view(space, records)

    # ------------------------------------------------------------ internals (lock held)

    def _start(self, space: Space, now: dt.datetime) -> Record:
        record = Record(str(uuid.uuid4()), space, now)
        self._records[record.id] = record
        space.active = record.id
        self._happened(space, CONFERENCE_STARTED, record)
        return record

    def _end(self, record: Record) -> None:
        now = self._now()
        for person in record.participants.values():
            self._close_sessions(record, person, now)
        record.end = now
        record.space.active = None
        self._happened(record.space, CONFERENCE_ENDED, record)

    def _close_sessions(self, record: Record, person: Participant, now: dt.datetime) -> None:
        for session in person.sessions:
            if session.end is None:
                session.end = now
                self._happened(record.space, PARTICIPANT_LEFT, record, person, session)

    def _happened(self, space: Space, kind: str, record: Record, person: Participant | None = None,
                  session: Session | None = None) -> None:
        if self._on_event is None:
            return
        if person is not None and session is not None:
            name = f"{shapes.participant_name(record, person)}/participantSessions/{session.id}"
            data, time = {"participantSession": {"name": name}}, session.end or session.start
        else:
            data, time = {"conferenceRecord": {"name": f"conferenceRecords/{record.id}"}}, record.end or record.start
        self._on_event(Happened(space.owner, kind, data, time))

    def _find_code(self, code: str) -> Space | None:
        return next((s for s in self._spaces.values() if s.code == code.strip().lower()), None)

    def _space(self, space_id: str) -> Space:
        if space_id not in self._spaces:
            raise not_found(f"spaces/{space_id}")
        return self._spaces[space_id]

    def _member(self, space: Space, member_id: str) -> Member:
        if member_id not in space.members:
            raise not_found(f"spaces/{space.id}/members/{member_id}")
        return space.members[member_id]

    def _record(self, record_id: str) -> Record:
        if record_id not in self._records:
            raise not_found(f"conferenceRecords/{record_id}")
        return self._records[record_id]

    def _participant(self, record: Record, participant_id: str) -> Participant:
        if participant_id not in record.participants:
            raise not_found(f"conferenceRecords/{record.id}/participants/{participant_id}")
        return record.participants[participant_id]

