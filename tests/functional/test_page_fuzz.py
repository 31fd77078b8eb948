"""The page fuzzer: every browser page and form, as every role, with hostile input, on both backends.

The URL map is walked when this module is imported, so a page added to the app is fuzzed without
being listed here: every rule outside ``/api/``, ``/webhooks/`` and ``/static/`` (the sandbox's
pages and emulated APIs included) is one test per backend. Each example picks a role (anonymous,
a freelancer signed in through a launch link, a reviewer, a lead, an admin), a method (GET, POST
and the rule's own), values for the URL's variables (real ids of a small world, or odd text),
a query string, and a body (a form with or without a valid CSRF token, a multipart form, JSON, raw
bytes), full of NUL and other control characters, invalid UTF-8, unpaired surrogates, 100 kB values
and deep nesting. The form fields and values it tries first are the ones the templates name.

Half the examples are "clean" (no value the input check refuses), so that odd values reach the
views. Next to the random draws, each rule also gets every attack once on its own, as the role whose
pages they are, with a valid CSRF token (``test_every_page_survives_each_attack_alone``).

Checked: never a 5xx, never an ERROR log record with a traceback, and a request refused for its
characters changes nothing. One world a backend, built once and changed by the fuzzing as real use
would. Deterministic (``derandomize``) and bounded (``EXAMPLES`` a rule): about 20 s a backend.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import logging
import os
import re
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule

from tests.conftest import PG_SKIP_REASON, PG_URL, Api, FakeClock, _truncate, make_settings
from tests.functional.test_freelancer_journey import Freelancer
from tests.functional.test_launch_links import launch_url, path_of
from tests.functional.test_staff_sign_in import form_token
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import record_with_evidence, waiting
from tests.support.staff import csrf_token, signed_in, staff_member
from verify_service import create_app
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallSession
from verify_service.calls.state import Outcome
from verify_service.db import Base, make_engine, unit_of_work
from verify_service.leads import shifts
from verify_service.registry import KEY, Registry
from verify_service.review import decisions
from verify_service.staff.models import Reviewer, Role, StaffSession

pytestmark = pytest.mark.slow  # a fuzzer: many examples for each page or operation

# A rule, a backend; VERIFY_PAGE_FUZZ_EXAMPLES asks for a longer hunt (the seed stays fixed).
EXAMPLES = int(os.environ.get("VERIFY_PAGE_FUZZ_EXAMPLES", "12"))
# Answers in the 5xx range that a rule gives on purpose: the readiness probe says "not ready" (here the
# scheduler never ran) with a 503, so that the load balancer holds traffic back.
DESIGNED = {"health.readyz": 503}
NOT_PAGES = ("/api/", "/webhooks/", "/static/")
ROLES = ("anonymous", "freelancer", Role.REVIEWER.value, Role.LEAD.value, Role.ADMIN.value)
STATE = (Account, Hold, VerificationRequest, CallSession, AuditEntry, Reviewer, StaffSession)
_VARIABLE = re.compile(r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_FORM = re.compile(r"""<form\b[^>]*?\baction=["']\{\{\s*url_for\(\s*['"]([^'"]+)['"].*?</form>""",
                   re.IGNORECASE | re.DOTALL)
_INCLUDE = re.compile(r"""\{%\s*include\s+["']([^"']+)["']""")
_FIELD_NAME = re.compile(r"""<(?:input|select|textarea|button)\b[^>]*?\bname=["']([^"'{}]+)["']""", re.IGNORECASE)
_FIELD_VALUE = re.compile(r"""<(?:input|option|button)\b[^>]*?\bvalue=["']([^"'{}]*)["']""", re.IGNORECASE)
# Query parameters the views read that no template's form names.
QUERY_NAMES = ("q", "day", "tz", "next", "reschedule", "eid", "filter", "pageSize", "pageToken", "updateMask",
               "sendUpdates", "sendNotifications", "error", "code", "state")
# Values a person would type into the forms, next to those the templates offer (options, buttons).
TYPED = ("Chargeback", "nia@example.com", "Nia Lima", "reviewer", "lead", "admin", "Europe/Lisbon", "UTC", "10:00",
         "18:00", "1", "0", "2026-11-23T10:00", "2026-11-23T10:00:00+00:00", "passport", "PT", "2030-01-31",
         "P1234567", "123456", "correct-horse-battery", "withdraw_earnings", "id_mismatch", "confirm", "overturn",
         "passed", "failed", "/review", "https://evil.example/", "rita@example.com")


@dataclasses.dataclass(frozen=True)
class Walk:
    rules: list[Rule]
    fields: dict[str, tuple[str, ...]]  # by endpoint: the fields of the templates' forms that post to it
    names: tuple[str, ...]  # every field name the templates use
    values: tuple[str, ...]  # every value the templates offer, and typed ones


def _form_fields(env: Any, source: str, seen: set[str]) -> Iterator[tuple[str, set[str], set[str]]]:
    for form in _FORM.finditer(source):
        block = form.group(0)
        for included in _INCLUDE.findall(block):  # a form's shared fields (the shift form's)
            if included not in seen:
                seen.add(included)
                block += env.loader.get_source(env, included)[0]
        yield form.group(1), set(_FIELD_NAME.findall(block)), set(_FIELD_VALUE.findall(block))


def _walk() -> Walk:
    with tempfile.TemporaryDirectory() as tmp:
        # The map depends on the code and the settings, not on the data: a throwaway SQLite app.
        app = create_app(make_settings("sqlite://", Path(tmp), env="development"))
        try:
            rules = sorted((rule for rule in app.url_map.iter_rules() if not rule.rule.startswith(NOT_PAGES)),
                           key=lambda rule: (rule.rule, rule.endpoint))
            fields: dict[str, set[str]] = {}
            names, values = set(QUERY_NAMES), set(TYPED)
            env = app.jinja_env
            for template in env.list_templates(extensions=["html"]):
                source = env.loader.get_source(env, template)[0]
                names.update(_FIELD_NAME.findall(source))
                values.update(_FIELD_VALUE.findall(source))
                for endpoint, form_names, form_values in _form_fields(env, source, set()):
                    fields.setdefault(endpoint, set()).update(form_names - {"csrf_token"})
                    values.update(form_values)
            return Walk(rules, {endpoint: tuple(sorted(found)) for endpoint, found in fields.items()},
                        tuple(sorted(names)), tuple(sorted(values)))
        finally:
            app.extensions[KEY].engine.dispose()


WALK = _walk()
RULES = WALK.rules

# ---------------------------------------------------------------- what is sent

CONTROL = st.sampled_from(["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\t", "\n", "\r"])
# Odd but printable: these pass the input check and reach the views.
EDGE = st.sampled_from(["", " ", "x" * 100_000, "é" * 50_000, "😀" * 30_000, "../../etc/passwd",
                        "<script>alert(1)</script>", "%00", "null", "0", "-1", "2147483648", "99999999999999999999",
                        "1e309", "NaN", "\u202eevil", "\ufeff", "2026-02-30T25:61", "9999-12-31T23:59",
                        "0001-01-01T00:00", "Mars/Olympus", "localtime", "a@b.c", "a@b.test", " " * 5000 + "x",
                        "reviewer@example.com"])
PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=40)
ODD = st.one_of(EDGE, PRINTABLE)
# Refused by the input check: control characters, and bytes that are not UTF-8.
REFUSED = st.one_of(st.builds(lambda left, char, right: left + char + right, PRINTABLE, CONTROL, PRINTABLE),
                    st.binary(min_size=1, max_size=20))
PLAIN = st.sampled_from(WALK.values)
# A value as the wire carries it: what a form would send, or odd; in a "dirty" request also refused ones
# (half the examples: the others' values reach the views).
CLEAN, DIRTY = st.one_of(PLAIN, PLAIN, ODD), st.one_of(PLAIN, ODD, REFUSED)
NAME = st.one_of(st.sampled_from(WALK.names), st.sampled_from(WALK.names), ODD.filter(lambda text: len(text) < 200))
def _json(*, dirty: bool) -> st.SearchStrategy[Any]:
    text = st.one_of(PLAIN, ODD.filter(lambda text: len(text) < 200),
                     *([REFUSED.filter(lambda value: isinstance(value, str))] if dirty else []))
    # The keys the page scripts post (the system check's client hints), and the forms' names.
    key = st.one_of(st.sampled_from(("client_hints", "brands", "fullVersionList", "brand", "version", "mobile",
                                     "platform", "platformVersion", "touchMac") + WALK.names), text)
    return st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                        lambda children: st.lists(children, max_size=4) | st.dictionaries(key, children, max_size=4),
                        max_leaves=10)


JSON_VALUES = {dirty: _json(dirty=dirty) for dirty in (False, True)}
DEEP = st.sampled_from([b"[" * 100_000 + b"]" * 100_000, b'{"client_hints": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                        b'{"a": ' * 30_000 + b"1" + b"}" * 30_000])
# JSON text with escapes no encoder writes: unpaired surrogates and NUL.
ESCAPED = st.sampled_from([b'{"client_hints": {"platform": "\\ud800"}}', b'{"notes": "a\\u0000b"}',
                           b'["\\udfff", "\\u0000"]', b'{"\\ud800": 1}'])


@functools.cache
def _form(endpoint: str, *, dirty: bool) -> st.SearchStrategy[list[tuple[str, str | bytes]]]:
    """The fields the endpoint's forms have (some left out), each with a value, and a few more."""
    known = WALK.fields.get(endpoint, ())
    value = DIRTY if dirty else CLEAN
    own = st.lists(st.sampled_from(known), unique=True, min_size=len(known) // 2, max_size=len(known)) \
        if known else st.just([])
    return st.builds(lambda names, values, extra: [*zip(names, values), *extra],
                     own, st.lists(value, min_size=len(known), max_size=len(known)),
                     st.lists(st.tuples(NAME, value), max_size=2))


@dataclasses.dataclass(frozen=True)
class Body:
    kind: str  # none, form, multipart, json, raw
    pairs: tuple[tuple[str, str | bytes], ...] = ()
    raw: bytes = b""
    content_type: str | None = None
    filename: str = ""  # of the file a multipart form carries


@functools.cache
def _body(endpoint: str, *, deep: bool, dirty: bool) -> st.SearchStrategy[Body]:
    json_bodies = st.one_of(*([DEEP] if deep else []), *([ESCAPED] if dirty else [])) if deep or dirty \
        else st.just(b"{}")
    form = _form(endpoint, dirty=dirty)
    return st.one_of(
        st.just(Body("none")),
        form.map(lambda pairs: Body("form", tuple(pairs))),
        form.map(lambda pairs: Body("form", tuple(pairs))),
        form.map(lambda pairs: Body("form", tuple(pairs))),
        form.map(lambda pairs: Body("multipart", tuple(pairs), filename="name\x00.txt" if dirty else "id.png")),
        JSON_VALUES[dirty].map(lambda value: Body("json", raw=json.dumps(value).encode(),
                                                  content_type="application/json")),
        json_bodies.map(lambda raw: Body("json", raw=raw, content_type="application/json")),
        st.builds(lambda raw, content_type: Body("raw", raw=raw, content_type=content_type), st.binary(max_size=300),
                  st.sampled_from(["application/json", "application/x-www-form-urlencoded", "multipart/form-data",
                                   "text/plain", "application/json; charset=latin-1", ""])),
    )




@dataclasses.dataclass
class World:
    """A small world whose ids the URL variables can take, shared by the rules' tests of one backend."""

    app: Flask
    api: Api
    registry: Registry
    ids: dict[str, list[str]]


def _world_ids(app: Flask, api: Api, registry: Registry) -> dict[str, list[str]]:
    gateway = registry.meet = FakeMeetGateway()
    rita = staff_member(registry, email="rita@example.com")
    target = staff_member(registry, email="target@example.com", name="Tess")
    call_1 = waiting(api, registry, gateway, "acc-1")
    call_2 = waiting(api, registry, gateway, "acc-2")
    with unit_of_work(registry.sessions) as session:
        decisions.claim_session(session, call_2, reviewer_id=rita.id, now=registry.now())
    outcome = record_with_evidence(registry.sessions, call_2, rita.id, Outcome.FAILED, registry.now())
    api.put_account("acc-3")
    with unit_of_work(registry.sessions) as session:
        hold = session.scalar(sa.select(Hold.id).where(Hold.account_id == "acc-1"))
        shift = shifts.add_recurring_shift(session, shifts.parse_plan(str(target.id), "2", "09:00", "17:00", "UTC"),
                                           actor="test", now=registry.now())
    ids = {"account_id": ["acc-1", "acc-2", "acc-3"], "call_id": [call_1, call_2], "hold_id": [hold],
           "outcome_id": [outcome.id], "reviewer_id": [str(target.id), str(rita.id)], "shift_id": [str(shift.id)],
           "token": [path_of(launch_url(api, "acc-3")).rsplit("/", 1)[1]]}
    sandbox = app.extensions.get("sandbox_google")
    if sandbox is not None:
        space = sandbox.meet.create_space({}, "http://localhost/sandbox/meet/")
        ids.update(space=[space["name"].split("/", 1)[1]], meeting_code=[space["meetingCode"]])
    return ids


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database a backend for the whole module: the world is built once, and the fuzzing builds on it."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip(PG_SKIP_REASON)
        engine = request.getfixturevalue("pg_engine")
        try:
            yield PG_URL
        finally:
            _truncate(engine)
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('page-fuzz') / 'fuzz.sqlite3'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url


@pytest.fixture(scope="module")
def world(fuzzed_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The app in development (the sandbox's pages served), rate limits out of the way of the handlers,
    and cheap password hashing (the suite's ``cheap_password_hashing``: sign-in is fuzzed)."""
    app = create_app(make_settings(fuzzed_database, tmp_path_factory.mktemp("instance"), env="development",
                                   client_check_rate_limit="100000/second",
                                   launch_link_rate_limit="100000/second"))
    registry = app.extensions[KEY]
    registry.clock = FakeClock()
    api = Api(app.test_client())
    try:
        yield World(app, api, registry, _world_ids(app, api, registry))
    finally:
        registry.engine.dispose()


@pytest.fixture
def browsers(world: World) -> dict[str, tuple[FlaskClient, str]]:
    """A browser and its CSRF token for each role, signed in afresh for each rule (the fuzzing may sign out)."""
    anonymous = world.app.test_client()
    freelancer = Freelancer(world.api, "acc-1")
    found = {"anonymous": (anonymous, form_token(anonymous)), "freelancer": (freelancer.client, freelancer.token)}
    for role in (Role.REVIEWER, Role.LEAD, Role.ADMIN):
        client = world.app.test_client()
        signed_in(client, world.registry, role=role)
        found[role.value] = (client, csrf_token(client, "/review/mine"))
    return found


def _path(rule: Rule, draw: Any, ids: dict[str, list[str]], *, dirty: bool) -> str:
    def value(match: re.Match[str]) -> str:
        name, converter = match.group("name"), match.group("converter")
        if converter == "int":
            odd = st.one_of(st.integers(0, 10**25).map(str), st.sampled_from(["0", "2147483647", "2147483648"]))
        else:
            odd = st.one_of(ODD.filter(lambda text: len(text) < 5000), REFUSED) if dirty else \
                ODD.filter(lambda text: len(text) < 5000)
        real = ids.get(name, [])
        chosen = draw(st.one_of(*[st.sampled_from(real)] * 3, odd) if real else odd)
        return urllib.parse.quote(chosen, safe="") or "x"

    return _VARIABLE.sub(value, rule.rule)


def _open(client: FlaskClient, method: str, path: str, query: list[tuple[str, str | bytes]], body: Body,
          token: str | None, accept: str | None) -> Any:
    url = path + ("?" + urllib.parse.urlencode(query) if query else "")
    headers = {"Accept": accept} if accept else {}
    pairs = list(body.pairs) + ([("csrf_token", token)] if token else [])
    if body.kind == "form":
        return client.open(url, method=method, data=urllib.parse.urlencode(pairs),
                           content_type="application/x-www-form-urlencoded", headers=headers)
    if body.kind == "multipart":
        data: dict[str, Any] = {}
        for name, value in pairs:
            data.setdefault(name, []).append(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)
        data["attachment"] = (io.BytesIO(b"\x00\xff"), body.filename)
        return client.open(url, method=method, data=data, headers=headers)
    if token:
        headers["X-CSRFToken"] = token
    if body.kind == "none":
        return client.open(url, method=method, headers=headers)
    return client.open(url, method=method, data=body.raw, content_type=body.content_type, headers=headers)


def _state(registry: Registry) -> dict[str, int]:
    with registry.sessions() as session:
        return {model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
                for model in STATE}


# Whose pages a rule's are, by path: the fuzzer signs in as that role more often than as the others.
OWNERS = (("/verify", "freelancer"), ("/review/sign-in", "anonymous"), ("/review/setup", "anonymous"),
          ("/review/lead", Role.LEAD.value), ("/review", Role.REVIEWER.value))


def owner(rule: Rule) -> str:
    return next((role for prefix, role in OWNERS if rule.rule.startswith(prefix)), "anonymous")


def _assert_no_failure(world: World, rule: Rule, caplog: pytest.LogCaptureFixture, response: Any,
                       before: dict[str, int], what: object) -> None:
    if response.status_code != DESIGNED.get(rule.endpoint):
        assert response.status_code < 500, (what, response.get_data(as_text=True)[:800])
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR and record.exc_info]
    assert not failures, (what, [record.getMessage() for record in failures])
    if response.status_code == 400 and b"invalid_characters" in response.get_data():
        assert _state(world.registry) == before, what  # refused before the view ran


@pytest.mark.parametrize("rule", RULES, ids=[rule.endpoint for rule in RULES])
# No shrinking: a failure is reported as found (shrinking a 100 kB body takes minutes).
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_page_fails_whatever_it_is_sent(world: World, browsers: dict[str, tuple[FlaskClient, str]],
                                          caplog: pytest.LogCaptureFixture, rule: Rule, data: st.DataObject) -> None:
    role = data.draw(st.one_of(st.just(owner(rule)), st.sampled_from(ROLES)), label="role")
    own = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    method = data.draw(st.one_of(st.sampled_from(own), st.sampled_from(own), st.sampled_from(own),
                                 st.sampled_from(["GET", "POST"])), label="method")
    dirty = data.draw(st.booleans(), label="dirty")
    path = _path(rule, data.draw, world.ids, dirty=dirty)
    query = data.draw(st.one_of(st.just([]), st.just([]), st.lists(
        st.tuples(st.one_of(st.sampled_from(QUERY_NAMES), NAME), DIRTY if dirty else CLEAN), min_size=1, max_size=3)),
        label="query")
    body = data.draw(_body(rule.endpoint, deep=True, dirty=dirty),
                     label="body")
    with_token = data.draw(st.sampled_from([True, True, True, False]), label="csrf token")
    accept = data.draw(st.sampled_from([None, "application/json", "text/html"]), label="accept")
    caplog.clear()
    before = _state(world.registry)

    client, token = browsers[role]
    response = _open(client, method, path, query, body, token if with_token else None, accept)

    _assert_no_failure(world, rule, caplog, response, before, (role, method, path[:200]))


def _sweep(rule: Rule, ids: dict[str, list[str]]) -> Iterator[tuple[str, str, list[tuple[str, str]], Body]]:
    """The attacks every rule gets, each alone in an otherwise ordinary request: (what, path, query, body)."""
    def path(odd: dict[str, str]) -> str:
        return _VARIABLE.sub(lambda m: odd.get(m.group("name")) or urllib.parse.quote(
            (ids.get(m.group("name")) or ["1"])[0], safe=""), rule.rule)

    fields = WALK.fields.get(rule.endpoint, ())
    ordinary = [(name, "1") for name in fields]
    named = fields or ("q", "email", "notes")  # a page without a form of its own: fields it might read anyway
    yield "deeply nested JSON", path({}), [], Body("json", raw=b"[" * 100_000 + b"]" * 100_000,
                                                   content_type="application/json")
    yield "NUL in every field", path({}), [], Body("form", tuple((name, "a\x00b") for name in named))
    yield "invalid UTF-8 in every field", path({}), [], Body("form", tuple((name, b"a\xff") for name in named))
    yield "a NUL in a query parameter", path({}), [("q", "a\x00"), ("day", "\x00")], Body("none")
    for name in fields:
        long = [(other, "x" * 100_000 if other == name else value) for other, value in ordinary]
        yield f"100 kB in {name}", path({}), [], Body("form", tuple(long))
    for match in _VARIABLE.finditer(rule.rule):
        name = match.group("name")
        odd = ["2147483648", "1" + "0" * 25] if match.group("converter") == "int" else \
            ["a%00b", "%FF%FE", "x" * 5000, "%F0%9F%98%80" * 100, "..%2F..", "%E2%80%AE"]
        for value in odd:
            yield f"{value[:20]} as {name}", path({name: value}), [], Body("form", tuple(ordinary))


@pytest.mark.parametrize("rule", RULES, ids=[rule.endpoint for rule in RULES])
def test_every_page_survives_each_attack_alone(world: World, browsers: dict[str, tuple[FlaskClient, str]],
                                              caplog: pytest.LogCaptureFixture, rule: Rule) -> None:
    """The fuzzer's attacks, each on its own, as the role whose pages these are, with a valid CSRF token:
    what a random draw may miss for a rule is sent to it once for sure."""
    client, token = browsers[owner(rule)]
    methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    for what, path, query, body in _sweep(rule, world.ids):
        for method in methods:
            caplog.clear()
            before = _state(world.registry)
            response = _open(client, method, path, query, body, token, "application/json"
                             if body.kind == "json" else None)
            _assert_no_failure(world, rule, caplog, response, before, (what, method, path[:200]))


def test_the_walk_finds_the_pages_and_their_fields() -> None:
    endpoints = {rule.endpoint for rule in RULES}
    # The pages of each area, and the sandbox's (in development).
    assert {"web.index", "freelancer.check", "staff.sign_in", "review.session", "leads.place_hold",
            "sandbox_google.meeting_room"} <= endpoints
    assert not any(rule.rule.startswith(NOT_PAGES) for rule in RULES)
    assert {"email", "password", "reason", "notes", "display_name", "csrf_token"} <= set(WALK.names)
    assert {"blocks", "reason"} <= set(WALK.fields["leads.place_hold"])
    assert {"weekday", "start", "end", "time_zone"} <= set(WALK.fields["leads.change_shift"])  # an included part
