"""Time zone names as a person or a browser gives them, read into one canonical IANA spelling.

The IANA database keeps old names as links to the current ones (Asia/Calcutta
is Asia/Kolkata), and browsers still report many old names. :mod:`zoneinfo`
resolves a link but does not say where it points, so the links are read from
the database's own source form, ``tzdata.zi``, which every tzdata release
installs next to the compiled zones on ``zoneinfo.TZPATH``. A link that
``zone.tab`` lists for a country stays as it is (where the database was built
without its old data, Europe/Oslo is a link to Europe/Berlin, yet it is the
name Norwegians know), and the UTC aliases stay short ("UTC", not "Etc/UTC").
Without those files a name is kept as given: still a valid zone, only not renamed.
"""

from __future__ import annotations

import functools
import zoneinfo
from pathlib import Path

from verify_service.errors import InvalidInput

MAX_LENGTH = 64
UTC = zoneinfo.ZoneInfo("UTC")
# Every zone name the database has, but the host's own (localtime) and the placeholder (Factory).
NAMES = frozenset(zoneinfo.available_timezones() - {"localtime", "Factory"})


def _data_file(name: str) -> Path | None:
    for root in zoneinfo.TZPATH:
        path = Path(root) / name
        if path.is_file():
            return path
    return None


@functools.cache
def links() -> dict[str, str]:
    """Old name -> current name, from ``tzdata.zi`` (its ``L TARGET NAME`` lines), minus the kept ones."""
    source, table = _data_file("tzdata.zi"), _data_file("zone.tab")
    if source is None:
        return {}
    listed = set()
    if table is not None:
        for line in table.read_text(encoding="utf-8").splitlines():
            fields = line.split("\t")
            if len(fields) >= 3 and not line.startswith("#"):
                listed.add(fields[2])
    found = {}
    for line in source.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "L" and fields[2] not in listed and not fields[1].startswith("Etc/"):
            found[fields[2]] = fields[1]
    return found


def canonical_name(name: str) -> str:
    """``name`` (surrounding spaces aside) in its current IANA spelling.

    Raises:
        InvalidInput: not a time zone name this system knows (field ``tz``).
    """
    name = name.strip()
    if name not in NAMES:
        shown = "".join(c if c.isprintable() else "?" for c in name[:MAX_LENGTH])
        shown += "…" if len(name) > MAX_LENGTH else ""
        raise InvalidInput.for_field("tz", f"“{shown}” is not a time zone we know; time zones are named "
                                           "like Europe/Berlin or Asia/Kolkata")
    return links().get(name, name)


def canonical_zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone ``name`` names, under its canonical name. Raises: InvalidInput (see :func:`canonical_name`)."""
    return zoneinfo.ZoneInfo(canonical_name(name))


def known_zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The canonical zone for ``name``, or None when it is missing or no zone (a stored or remembered value)."""
    if not name:
        return None
    try:
        return canonical_zone(name)
    except InvalidInput:
        return None
