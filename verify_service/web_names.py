"""User-supplied names on pages: isolated, and with hidden direction controls made visible.

``person`` puts a name in ``<bdi>`` so a right-to-left name cannot reorder the
text around it, and shows every invisible direction control as a badge
(``⟨U+202E⟩``), so that two names that look alike but are not can be told
apart; ``person_text`` is the same for plain text (a page title, an
aria-label). Templates use them as the ``|person`` and ``|person_text``
filters (``labels.register``); views that put a name into a flashed sentence
call ``person`` themselves (a ``Markup`` message survives the session).
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# Invisible characters that change the direction (or the joining) of the text around them.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _codepoint(match: re.Match[str]) -> str:
    return f"⟨U+{ord(match.group()):04X}⟩"


def person_text(value: object, missing: str = "(no name)") -> str:
    """A user-supplied name as plain text, every direction control shown as ``⟨U+202E⟩``."""
    text = str(value) if value else missing
    return BIDI_CONTROLS.sub(_codepoint, text)


def person(value: object, missing: str = "(no name)") -> Markup:
    """A user-supplied name as isolated HTML: ``<bdi>``, long words wrap, direction controls shown as badges."""
    text = str(value) if value else missing
    parts, last = [], 0
    for match in BIDI_CONTROLS.finditer(text):
        parts.append(escape(text[last:match.start()]))
        parts.append(Markup('<span class="bidi-mark" title="A hidden character that changes the text direction">'
                            '{}</span>').format(_codepoint(match)))
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup('<bdi class="person">{}</bdi>').format(Markup("").join(parts))
