"""The Calendar v3 emulator's state: events on calendars, with Google's checks and answers.

As Google: a client-chosen ``id`` must be base32hex (``a-v``, ``0-9``, 5–1024
characters) and unique on the calendar, even after the event is deleted
(409 ``duplicate``); a deleted event stays readable with ``status:
"cancelled"`` and deleting it again answers 410 ``deleted``. Notifications
are not sent: each one Google would send is recorded in :attr:`notifications`.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

from integrations.sandbox_google.discovery import find_problem
from integrations.sandbox_google.errors import CalendarApiError
from integrations.sandbox_google.times import event_time

EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
SEND_UPDATES = ("all", "externalOnly", "none")
# Fields a client may set; Google ignores the rest (server-owned fields, unknown names).
WRITABLE = ("summary", "description", "location", "start", "end", "attendees", "reminders", "status",
            "transparency", "visibility", "colorId", "anyoneCanAddSelf", "guestsCanInviteOthers",
            "guestsCanModify", "guestsCanSeeOtherGuests", "extendedProperties", "source")
ATTENDEE_FIELDS = ("email", "displayName", "optional", "responseStatus", "comment", "additionalGuests")
MAX_OVERRIDES = 5
MAX_REMINDER_MINUTES = 40320  # four weeks


@dataclasses.dataclass(frozen=True)
class Notification:
    """An email Google would have sent (``send_updates`` as asked; ``none`` means nobody)."""

    calendar_id: str
    event_id: str
    action: str                     # "created", "updated" or "cancelled"
    send_updates: str
    attendees: tuple[str, ...]


@dataclasses.dataclass
class _Event:
    calendar_id: str
    id: str
    fields: dict[str, Any]          # what the client set (WRITABLE only), normalised
    created: dt.datetime
    updated: dt.datetime
    html_link: str
    sequence: int = 0
    version: int = 0


def _error(code: int, reason: str, message: str) -> CalendarApiError:
    return CalendarApiError(code, reason, message)


def _ms(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def send_updates_value(send_updates: str | None, send_notifications: str | None) -> str:
    """The ``sendUpdates`` query parameter (or legacy ``sendNotifications``); Google's default is ``none``.

    Raises:
        CalendarApiError: 400 ``invalidParameter`` for a value Google does not accept.
    """
    if send_updates is None:
        return "all" if (send_notifications or "").lower() == "true" else "none"
    if send_updates not in SEND_UPDATES:
        raise _error(400, "invalidParameter", f"Invalid value '{send_updates}' for sendUpdates: "
                                              f"must be one of {', '.join(SEND_UPDATES)}.")
    return send_updates


class SandboxCalendar:
    """Calendar events in memory; every method is safe to call from any thread."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], _Event] = {}
        self._notifications: list[Notification] = []

    # ------------------------------------------------------------ the API

    def insert(self, calendar_id: str, body: dict[str, Any], send_updates: str,
               event_page: str) -> dict[str, Any]:
        """``events.insert``; ``event_page`` is the sandbox page ``htmlLink`` points to."""
        event_id = body.get("id") or uuid.uuid4().hex  # hex digits are base32hex too
        if not isinstance(event_id, str) or not EVENT_ID.match(event_id):
            raise _error(400, "invalid", "Invalid resource id value.")
        fields = _writable(body)
        fields.setdefault("status", "confirmed")
        _validate(fields)
        with self._lock:
            if (calendar_id, event_id) in self._events:
                raise _error(409, "duplicate", "The requested identifier already exists.")
            now = self._clock()
            eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
            event = _Event(calendar_id, event_id, fields, now, now, f"{event_page}?eid={eid}")
            self._events[(calendar_id, event_id)] = event
            self._notify(event, "created", send_updates)
            return _event_json(event)

    def get(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """``events.get``: a deleted event is still returned, ``status: "cancelled"``."""
        with self._lock:
            return _event_json(self._event(calendar_id, event_id))

    def patch(self, calendar_id: str, event_id: str, body: dict[str, Any], send_updates: str) -> dict[str, Any]:
        """``events.patch``: given fields replace, nested objects (``start``, ``reminders``) merge."""
        changes = _writable(body)
        with self._lock:
            event = self._event(calendar_id, event_id)
            fields = copy.deepcopy(event.fields)
            for key, value in changes.items():
                if isinstance(value, dict) and isinstance(fields.get(key), dict) and key not in ("start", "end"):
                    fields[key] = {**fields[key], **value}
                else:
                    fields[key] = value
            _validate(fields)
            if fields.get("start") != event.fields.get("start") or fields.get("end") != event.fields.get("end"):
                event.sequence += 1
            event.fields, event.updated, event.version = fields, self._clock(), event.version + 1
            self._notify(event, "updated", send_updates)
            return _event_json(event)

    def delete(self, calendar_id: str, event_id: str, send_updates: str) -> None:
        """``events.delete``. Raises: 404 ``notFound`` (never existed), 410 ``deleted`` (already deleted)."""
        with self._lock:
            event = self._event(calendar_id, event_id)
            if event.fields.get("status") == "cancelled":
                raise _error(410, "deleted", "Resource has been deleted")
            event.fields["status"] = "cancelled"
            event.updated, event.version = self._clock(), event.version + 1
            self._notify(event, "cancelled", send_updates)

    # ------------------------------------------------------------ for tests and the event page

    @property
    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)

    def events(self, calendar_id: str | None = None) -> list[dict[str, Any]]:
        """Every event (deleted ones included), optionally of one calendar, in insertion order."""
        with self._lock:
            return [_event_json(e) for e in self._events.values() if calendar_id in (None, e.calendar_id)]

    def find_by_eid(self, eid: str) -> dict[str, Any] | None:
        """The event an ``htmlLink``'s ``eid`` names, or ``None``."""
        try:
            event_id, _, calendar_id = base64.urlsafe_b64decode(eid + "=" * (-len(eid) % 4)).decode().partition(" ")
        except ValueError:
            return None
        with self._lock:
            event = self._events.get((calendar_id, event_id))
            return _event_json(event) if event else None

    def _event(self, calendar_id: str, event_id: str) -> _Event:
        event = self._events.get((calendar_id, event_id))
        if event is None:
            raise _error(404, "notFound", "Not Found")
        return event

    def _notify(self, event: _Event, action: str, send_updates: str) -> None:
        attendees = tuple(a["email"] for a in event.fields.get("attendees", ()))
        self._notifications.append(Notification(event.calendar_id, event.id, action, send_updates, attendees))


# ---------------------------------------------------------------- checks and JSON

def _writable(body: dict[str, Any]) -> dict[str, Any]:
    problem = find_problem("calendar.v3", "Event", body, "event", allow_unknown=True)
    if problem:
        raise _error(400, "invalid", f"Invalid value for: {problem.path}")
    fields = {key: copy.deepcopy(body[key]) for key in WRITABLE if body.get(key) is not None}
    if "attendees" in fields:
        fields["attendees"] = [{k: a[k] for k in ATTENDEE_FIELDS if k in a} for a in fields["attendees"]]
        if any(not a.get("email") for a in fields["attendees"]):
            raise _error(400, "required", "Missing attendee email.")
    return fields


def _validate(fields: dict[str, Any]) -> None:
    """Raises: CalendarApiError 400 where Google refuses the event (times, reminders, status)."""
    start = event_time(fields.get("start"), "start")
    end = event_time(fields.get("end"), "end")
    fields["start"], fields["end"] = start.json, end.json
    if end.instant < start.instant:
        raise _error(400, "timeRangeEmpty", "The specified time range is empty.")
    if fields["status"] not in ("confirmed", "tentative", "cancelled"):
        raise _error(400, "invalid", "Invalid value for: status")
    reminders = fields.get("reminders") or {}
    overrides = reminders.get("overrides") or []
    if reminders.get("useDefault") and overrides:
        raise _error(400, "cannotUseDefaultRemindersAndSpecifyOverride",
                     "Cannot specify both default reminders and overrides at the same time.")
    if len(overrides) > MAX_OVERRIDES:
        raise _error(400, "invalid", f"Cannot specify more than {MAX_OVERRIDES} override reminders.")
    for reminder in overrides:
        if reminder.get("method") not in ("email", "popup"):
            raise _error(400, "invalid", "Invalid reminder method.")
        if not isinstance(reminder.get("minutes"), int) or not 0 <= reminder["minutes"] <= MAX_REMINDER_MINUTES:
            raise _error(400, "invalid", "Invalid reminder minutes value.")


def _event_json(event: _Event) -> dict[str, Any]:
    owner = event.calendar_id if "@" in event.calendar_id else f"{event.calendar_id}@sandbox.invalid"
    fields = copy.deepcopy(event.fields)
    if "attendees" in fields:
        fields["attendees"] = [{"responseStatus": "needsAction", **a} for a in fields["attendees"]]
    reminders = fields.pop("reminders", None) or {"useDefault": True}
    reminders.setdefault("useDefault", False)
    return {
        "kind": "calendar#event",
        "etag": f'"{int(event.updated.timestamp() * 1000)}{event.version:04d}"',
        "id": event.id,
        "htmlLink": event.html_link,
        "created": _ms(event.created),
        "updated": _ms(event.updated),
        "creator": {"email": owner, "self": True},
        "organizer": {"email": owner, "self": True},
        "iCalUID": f"{event.id}@google.com",
        "sequence": event.sequence,
        "eventType": "default",
        "reminders": reminders,
        **fields,
    }
