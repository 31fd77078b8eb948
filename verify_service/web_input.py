"""Page input checks: one boundary for the characters every browser page accepts.

The API validates its input with its schemas (their patterns refuse NUL); the pages read form fields,
query parameters and URL parts by hand, and passed them on as they came. A NUL there was a 500 on
PostgreSQL (``text`` cannot hold one) with the failed statement in the log; SQLite stored it. So every
request outside ``/api/``, ``/webhooks/`` (own boundaries) and ``/sandbox/google/`` (an emulated Google
API that answers in Google's own error format) is checked here once, before any view runs:

- no C0 control character (U+0000 to U+001F) and no DEL (U+007F) in the URL path, the query string,
  a form field, its name or a file name, or a key or string of a JSON body; tab, line feed and carriage
  return are allowed in the fields that are multi-line: those a template renders as a ``<textarea>``
  (found in the templates when the app starts, so a new page's text area is multi-line without being
  listed anywhere);
- no unpaired surrogate (only JSON's ``\\ud800`` escapes can make one: Werkzeug decodes the rest);
- the path, the query string and a URL-encoded form body are valid UTF-8 (Werkzeug would otherwise
  turn a stray byte into U+FFFD and store that in its place).

A refusal is a 400 naming the field: the HTML error page, or problem+json for a page script that
asked for JSON (``errors.prefers_json``). Nothing has run yet, so nothing is changed.

A JSON body that cannot be read at all (not JSON, absurdly deep) is left to the view that reads it:
that view decides whether unreadable input is refused or ignored.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Flask, current_app, request
from werkzeug.routing import IntegerConverter, Map

from verify_service.errors import DomainError, FieldError

# Requests that have their own boundary and error format.
SKIPPED_PREFIXES = ("/api/", "/webhooks/", "/sandbox/google/")
# What no field may hold; multi-line fields may also hold tab, line feed and carriage return.
_SINGLE_LINE_REFUSED = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_MULTI_LINE_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# A text area's field name, as templates write it (a name computed by Jinja is not found: write it out).
_TEXTAREA_NAME = re.compile(r"<textarea\b[^>]*?\bname=[\"']([^\"'{}]+)[\"']", re.IGNORECASE)
_SHOWN_NAME_MAX = 60
EXTENSION_KEY = "verify_service.multi_line_fields"


class UnacceptableCharacters(DomainError):
    """A page's input holds a control character or is not valid UTF-8 (refused before any view runs)."""

    status = 400
    code = "invalid_characters"
    title = "Some of what was sent cannot be accepted"


# What an ``Integer`` id column holds (PostgreSQL's ``integer``: 32 bits, signed).
ID_MAX = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:...>`` in the URL map: an id, so at most :data:`ID_MAX`.

    A bigger number names nothing, so the rule does not match (a 404). Werkzeug's own converter took
    any number of digits, and PostgreSQL refuses to compare one past 32 bits with an ``integer`` column
    (it was a 500). A route over a ``BigInteger`` id would need a converter of its own.
    """

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,  # noqa: A002  (Werkzeug's names)
                 max: int | None = ID_MAX, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register_page_input_checks(app: Flask) -> None:
    """Check every page request's path, query string and body before its view (and its CSRF check) runs.

    Call before the blueprints are registered: their rules take the ``int`` converter of the map as it is then.
    """
    app.url_map.converters["int"] = IdConverter
    app.before_request(check_page_input)


def multi_line_fields(app: Flask) -> frozenset[str]:
    """The names of the form fields the app's templates render as text areas (read once, on first use)."""
    found: frozenset[str] | None = app.extensions.get(EXTENSION_KEY)
    if found is None:
        found = app.extensions[EXTENSION_KEY] = _textarea_names(app)
    return found


def _textarea_names(app: Flask) -> frozenset[str]:
    env = app.jinja_env
    names: set[str] = set()
    for template in env.list_templates(extensions=["html"]):
        source, _filename, _uptodate = env.loader.get_source(env, template)  # type: ignore[union-attr]
        names.update(_TEXTAREA_NAME.findall(source))
    return frozenset(names)


def check_page_input() -> None:
    """``before_request`` of the app. Raises: UnacceptableCharacters."""
    if request.path.startswith(SKIPPED_PREFIXES):
        return
    multi_line = multi_line_fields(current_app)
    _check_path()
    _check_query()
    _check_form(multi_line)
    _check_json(multi_line)


def _check_path() -> None:
    if not _is_utf8(_raw_path()):
        raise _refusal("The address", "path", "is not valid UTF-8")
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str):
            _check_text("The address part", name, value, multi_line=False)
    _check_text("The address", "path", request.path, multi_line=False)


def _raw_path() -> bytes:
    """The path as the client sent it: Werkzeug's own servers and its test client decode PATH_INFO with
    replacement characters, so the request line (``RAW_URI``: gunicorn and Werkzeug) is read where there is one."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return urllib.parse.unquote_to_bytes(_wsgi_bytes(raw).split(b"?", 1)[0])
    return _wsgi_bytes(request.environ.get("PATH_INFO", ""))


def _check_query() -> None:
    raw = request.query_string
    if not raw:
        return
    if not _is_utf8(urllib.parse.unquote_to_bytes(raw.replace(b"+", b" "))):
        raise _refusal("The query string", "query", "is not valid UTF-8")
    _check_pairs("The query parameter", request.args.items(multi=True), frozenset())


def _check_form(multi_line: frozenset[str]) -> None:
    if request.mimetype == "application/x-www-form-urlencoded":
        raw = request.get_data(cache=True)  # the form is parsed from this cached copy afterwards
        if not _is_utf8(urllib.parse.unquote_to_bytes(raw.replace(b"+", b" "))):
            raise _refusal("The form", "form", "is not valid UTF-8")
    elif request.mimetype != "multipart/form-data":
        return
    _check_pairs("The form field", request.form.items(multi=True), multi_line)
    for name, upload in request.files.items(multi=True):
        _check_text("The form field", name or "", name or "", multi_line=False)
        _check_text("The file name of the form field", name or "", upload.filename or "", multi_line=False)


def _check_json(multi_line: frozenset[str]) -> None:
    if not request.is_json:
        return
    raw = request.get_data(cache=True)
    if not raw:
        return
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return  # unreadable: the view that reads the body refuses or ignores it
    for name, value in _json_strings(body):
        _check_text("The JSON field", name, value, multi_line=name.rsplit(".", 1)[-1] in multi_line)


def _json_strings(body: Any) -> Iterator[tuple[str, str]]:
    """Every key and string value of ``body`` with its dotted path (iteratively: nesting may be deep)."""
    stack: list[tuple[str, Any]] = [("body", body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield path, key  # a key is checked as part of the object that holds it
                stack.append((f"{path}.{key}" if path != "body" else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))


def _check_pairs(where: str, pairs: Iterable[tuple[str | None, str]], multi_line: frozenset[str]) -> None:
    for name, value in pairs:
        name = name or ""  # a multipart part whose name Werkzeug could not read has none
        _check_text(where, name, name, multi_line=False)
        _check_text(where, name, value, multi_line=name in multi_line)


def _check_text(where: str, field: str, value: str, *, multi_line: bool) -> None:
    found = (_MULTI_LINE_REFUSED if multi_line else _SINGLE_LINE_REFUSED).search(value)
    if found is None:
        return
    char = found.group()
    kind = "an unpaired surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    raise _refusal(where, field, f"contains {kind} (U+{ord(char):04X}), which is not allowed")


def _refusal(where: str, field: str, problem: str) -> UnacceptableCharacters:
    shown = _shown(field)
    return UnacceptableCharacters(
        f"{where} “{shown}” {problem}. Remove it (it can come from copying and pasting) and try again; "
        "nothing was changed.", errors=[FieldError(shown, problem)])


def _shown(name: str) -> str:
    """``name`` safe to show and log: refused characters written as escapes, and not too long."""
    shown = _SINGLE_LINE_REFUSED.sub(lambda m: f"\\u{ord(m.group()):04x}", name)
    return shown if len(shown) <= _SHOWN_NAME_MAX else shown[:_SHOWN_NAME_MAX] + "…"


def _wsgi_bytes(text: str) -> bytes:
    """The bytes of a WSGI environ string (one latin-1 character a byte, per PEP 3333)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # a server that handed over text already: it was decodable
        return text.encode("utf-8", "surrogatepass")  # a lone surrogate then fails the UTF-8 check


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
