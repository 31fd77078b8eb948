"""Calendar ``EventDateTime`` values: checked and written back as Google writes them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.sandbox_google.errors import CalendarApiError


@dataclasses.dataclass(frozen=True)
class EventTime:
    instant: dt.datetime     # comparable: aware for timed events, midnight UTC for all-day ones
    json: dict[str, Any]     # the EventDateTime Google would return


def _zone(name: str, which: str) -> dt.tzinfo:
    if name in ("UTC", "Etc/UTC", "GMT"):
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarApiError(400, "invalid", f"Invalid time zone definition for {which} time.") from None


def event_time(value: Any, which: str) -> EventTime:
    """Check one of an event's ``start``/``end``.

    A ``dateTime`` needs an offset or a ``timeZone``; with a ``timeZone`` it is
    written back in that zone's offset (``Z`` for UTC), as Google does.

    Raises:
        CalendarApiError: 400 ``required`` when missing, ``invalid`` when unreadable.
    """
    if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
        raise CalendarApiError(400, "required", f"Missing {which} time.")
    zone_name = value.get("timeZone")
    zone = _zone(zone_name, which) if zone_name else None
    if value.get("date") and not value.get("dateTime"):
        try:
            day = dt.date.fromisoformat(value["date"])
        except (TypeError, ValueError):
            raise CalendarApiError(400, "invalid", f"Invalid {which} time.") from None
        return EventTime(dt.datetime.combine(day, dt.time(), dt.timezone.utc), dict(value))
    try:
        instant = dt.datetime.fromisoformat(str(value["dateTime"]))
    except ValueError:
        raise CalendarApiError(400, "invalid", f"Invalid {which} time.") from None
    if instant.tzinfo is None:
        if zone is None:
            raise CalendarApiError(400, "required", f"Missing time zone definition for {which} time.")
        instant = instant.replace(tzinfo=zone)
    shown = instant.astimezone(zone) if zone else instant
    text = shown.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    written = {"dateTime": text, **({"timeZone": zone_name} if zone_name else {})}
    return EventTime(instant, written)
