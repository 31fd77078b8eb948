"""The one time zone every freelancer page shows times in, and the words for those times.

The zone is learned from the browser: the booking page's script
(``static/timezone.js``) reloads it with ``?tz=`` set to the browser's zone,
and a zone given that way is remembered in a cookie, so the status page, the
call page and its poll show the same local time. Before that, the account's
profile zone is used, else UTC. Names are canonical (``accounts/zones.py``:
Asia/Calcutta is shown as Asia/Kolkata). A ``tz`` that names no zone is
refused with a message the page shows; the times then stay in the zone
known before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Mapping

from flask import Response, after_this_request, request

from verify_service.accounts import zones
from verify_service.errors import InvalidInput
from verify_service.freelancer.auth import secure

COOKIE = "verify_tz"
REMEMBER = dt.timedelta(days=30)


@dataclasses.dataclass(frozen=True)
class PageZone:
    zone: zoneinfo.ZoneInfo
    chosen: bool          # given with this request (the page's script need not look for the browser's)
    problem: str | None   # the ``tz`` given is no time zone: what to tell the freelancer

    @property
    def name(self) -> str:
        return str(self.zone)


def _remember(zone: zoneinfo.ZoneInfo) -> None:
    @after_this_request
    def set_cookie(response: Response) -> Response:
        response.set_cookie(COOKIE, str(zone), max_age=int(REMEMBER.total_seconds()), httponly=True,
                            samesite="Lax", secure=secure(), path="/verify")
        return response


def page_zone(values: Mapping[str, str], account_tz: str | None) -> PageZone:
    """The zone for this request: ``values["tz"]`` (remembered), else the remembered one, the profile's, UTC."""
    given, problem = values.get("tz", ""), None
    if given:
        try:
            zone = zones.canonical_zone(given)
        except InvalidInput as exc:
            problem = f"{exc.errors[0].message[:1].upper()}{exc.errors[0].message[1:]}."
        else:
            if request.cookies.get(COOKIE) != str(zone):
                _remember(zone)
            return PageZone(zone, True, None)
    remembered = zones.known_zone(request.cookies.get(COOKIE))
    if remembered is not None:
        return PageZone(remembered, False, problem)
    return PageZone(zones.known_zone(account_tz) or zones.UTC, False, problem)


def moment(value: dt.datetime, zone: zoneinfo.ZoneInfo, *, now: dt.datetime) -> str:
    """``value`` in words, in ``zone``: "today at 18:00", "tomorrow at 09:00", "Wednesday 25 November at 22:00"."""
    local, today = value.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        day = "today"
    elif local.date() == today + dt.timedelta(days=1):
        day = "tomorrow"
    else:
        day = f"{local:%A} {local.day} {local:%B}"
    return f"{day} at {local:%H:%M}"


def full_date(value: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """E.g. "Wednesday 25 November 2026 at 14:00 (Asia/Kolkata)": a date on its own, with its zone."""
    local = value.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M} ({zone})"
